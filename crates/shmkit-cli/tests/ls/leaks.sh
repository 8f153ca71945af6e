#!/bin/bash
# Leaked objects of every kind, and a live user, inside private IPC and mount
# namespaces (a private tmpfs on /dev/shm and a private mqueue file system), so nothing
# outside is seen or touched. Checks what `shmkit ls`, `info` and `rm --orphaned
# --dry-run` report. Prints "leaks: N passed, N failed"; exits 1 on any failure.
set -u
S=${SHMKIT:?}
HERE=$(cd "$(dirname "$0")" && pwd)
mount -t tmpfs -o size=64m tmpfs /dev/shm || { echo "cannot mount a private /dev/shm"; exit 1; }
mkdir -p /dev/mqueue && mount -t mqueue mqueue /dev/mqueue || { echo "cannot mount mqueue"; exit 1; }
pass=0
fail=0
check() { # description, then a command that must succeed
    local what=$1; shift
    if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $what"; fi
}
json_check() { # python expression over `objs` (the ls --json objects) that must be true
    python3 -c "import json,sys; objs=json.load(open('$1'))['objects']; sys.exit(0 if ($2) else 1)"
}

# Leaks: each creator exits (is gone) and leaves its object behind.
ipcmk -M 4096 >/dev/null                    # shm id 0
ipcmk -S 2 >/dev/null                       # sem id 0
ipcmk -Q >/dev/null                         # msg id 0
"$S" create /leaked_shm --size 4096 >/dev/null
( python3 -c "
import ctypes, os
libc = ctypes.CDLL(None)
libc.sem_open.restype = ctypes.c_void_p
libc.sem_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_uint]
assert libc.sem_open(b'/leaked_sem', os.O_CREAT, 0o600, 1)
libc.mq_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p]
assert libc.mq_open(b'/leaked_mq', os.O_CREAT | os.O_RDONLY, 0o600, None) >= 0
os.kill(os.getpid(), 9)
"; true ) 2>/dev/null
# A creator killed while its segment is attached by nobody else.
( python3 -c "
import ctypes, os
libc = ctypes.CDLL(None)
assert libc.shmget(0x5348ffff, 8192, 0o1600) >= 0
os.kill(os.getpid(), 9)
"; true ) 2>/dev/null
# In use: a live peer attaches shm id 2, maps /used_shm, holds a memfd and /used_mq.
ipcmk -M 4096 >/dev/null                    # shm id 2
"$S" create /used_shm --size 4096 >/dev/null
python3 -c "
import ctypes, os
libc = ctypes.CDLL(None)
libc.mq_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p]
assert libc.mq_open(b'/used_mq', os.O_CREAT | os.O_RDONLY, 0o600, None) >= 0
"
coproc PEER { python3 "$HERE/peer.py" 2 used_shm used_mq; }
read -r -t 20 word peer <&"${PEER[0]}"
if [ "${word:-}" != ready ]; then echo "peer did not start"; exit 1; fi

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$S" ls --json >"$T/ls.json"
check "ls --json exits 0" test $? = 0
for kind in shm sem msg posix-shm posix-sem mqueue; do
    check "a leaked $kind is orphaned" json_check "$T/ls.json" \
        "any(o['kind']=='$kind' and o['status']['orphaned'] for o in objs)"
done
check "the killed creator's segment: creator gone, orphaned" json_check "$T/ls.json" \
    "any(o['key_hex']=='0x5348ffff' and o['creator_alive'] is False and o['status']['orphaned'] for o in objs)"
check "the attached segment names its user" json_check "$T/ls.json" \
    "any(o['kind']=='shm' and o['id']==2 and not o['status']['orphaned'] and any(u['pid']==$peer and u['how']=='map' for u in o['users']) for o in objs)"
check "the mapped POSIX object names its user" json_check "$T/ls.json" \
    "any(o['name']=='/used_shm' and not o['status']['orphaned'] and any(u['pid']==$peer for u in o['users']) for o in objs)"
check "the held memfd is listed with its holder" json_check "$T/ls.json" \
    "any(o['kind']=='memfd' and o['name'].startswith('shmkit_test_memfd') and o['size']==8192 and any(u['pid']==$peer and u['how']=='fd' for u in o['users']) for o in objs)"
check "the open message queue names its holder" json_check "$T/ls.json" \
    "any(o['name']=='/used_mq' and not o['status']['orphaned'] and any(u['pid']==$peer for u in o['users']) for o in objs)"
check "times are ISO 8601 plus epoch" json_check "$T/ls.json" \
    "all(o['ctime'] is None or (o['ctime']['iso'].endswith('Z') and isinstance(o['ctime']['epoch'], int)) for o in objs)"
check "users is always a list" json_check "$T/ls.json" "all(isinstance(o['users'], list) for o in objs)"

"$S" ls --orphaned -o kind,object,status >"$T/ls.txt"
check "ls --orphaned shows only orphans" bash -c "! grep -v -e '^ *KIND' -e orphaned '$T/ls.txt' | grep -q ."
check "ls --orphaned lists the leaked POSIX object" grep -q '/leaked_shm' "$T/ls.txt"
check "ls --kind filters" bash -c "\"$S\" ls -n -k sem -o kind | grep -qv sem; test \$? = 1"

"$S" info id:0 sem:0 msg:0 psem:/leaked_sem mq:/leaked_mq >"$T/info.txt" 2>&1
check "info on every kind exits 0" test $? = 0
check "info shows orphaned for each" test "$(grep -c orphaned "$T/info.txt")" -ge 5
"$S" info id:2 >"$T/info2.txt"
check "info shows who maps the segment, where" grep -qE "^    $peer python3 maps 0x[0-9a-f]+-0x[0-9a-f]+ rw-s" "$T/info2.txt"
"$S" info sem:9 >/dev/null 2>"$T/err.txt"
check "info on a missing object exits 1" test $? = 1
check "and names it" grep -q "shmkit: info: sem:9: no such object" "$T/err.txt"

before=$(ls /dev/shm | wc -l)
"$S" rm --orphaned --dry-run >"$T/dry.txt"
check "rm --orphaned --dry-run exits 0" test $? = 0
check "the dry run lists the leaks" grep -q "would remove" "$T/dry.txt"
check "the dry run lists the POSIX leak" grep -q "/leaked_shm" "$T/dry.txt"
check "the dry run lists the semaphore leak" grep -q "psem:/leaked_sem" "$T/dry.txt"
check "the dry run does not list objects in use" bash -c "! grep -q -e used_shm -e used_mq -e 'id:2 ' '$T/dry.txt'"
check "the dry run removes nothing (POSIX)" test "$(ls /dev/shm | wc -l)" = "$before"
check "the dry run removes nothing (System V)" test "$(ipcs -m | grep -c '^0x')" = 3
"$S" rm --orphaned </dev/null >"$T/no.txt" 2>&1
check "without --yes and no answer nothing is removed" test "$(ipcs -m | grep -c '^0x')" = 3
"$S" rm --orphaned --kind shm --yes >"$T/yes.txt"
check "rm --orphaned --kind shm --yes removes the orphaned segments" test "$(ipcs -m | grep -c '^0x')" = 1
check "and leaves the attached one" bash -c "ipcs -m | grep -q '^0x.* 2 .* 1 '"
"$S" rm --kind posix-shm --yes >"$T/used.txt"
check "bulk rm skips objects in use without --force" test -e /dev/shm/used_shm
check "and says so" grep -q "skipping /used_shm" "$T/used.txt"
# Another user's objects: a clear refusal, nothing removed.
if setpriv --reuid=54321 --regid=54321 --clear-groups "$S" --version >/dev/null 2>&1; then
    setpriv --reuid=54321 --regid=54321 --clear-groups "$S" rm sem:0 msg:0 2>"$T/perm.txt"
    check "removing root's objects as another user exits 1" test $? = 1
    check "and says why" grep -q "sem:0: .*only the owner" "$T/perm.txt"
    check "and removes nothing" test "$(ipcs -s | grep -c '^0x')" = 1
else
    echo "note: uid 54321 cannot run $S; permission check skipped"
fi
"$S" rm sem:0 msg:0 psem:/leaked_sem mq:/leaked_mq
check "rm by name for every kind" test $? = 0
check "the named semaphore is gone" test ! -e /dev/shm/sem.leaked_sem
check "the queue is gone" test ! -e /dev/mqueue/leaked_mq
"$S" rm sem:0 2>"$T/gone.txt"
check "removing a vanished object exits 1" test $? = 1
check "with a clear message" grep -q "sem:0: no such object" "$T/gone.txt"

eval "exec ${PEER[1]}>&-"
wait "$PEER_PID" 2>/dev/null
echo "leaks: $pass passed, $fail failed"
[ $fail = 0 ]
