#!/bin/bash
# Byte-for-byte comparison of util-linux's ipcs/ipcrm/ipcmk with shmkit's drop-ins.
# Run inside a private IPC namespace (unshare --ipc): it creates and removes objects
# freely there, and nothing outside is touched. Usage: compare.sh BINDIR, where BINDIR
# holds ipcs, ipcrm and ipcmk symlinks to the shmkit binary. Prints one line per case
# and a closing "N passed, N failed" line; exits 1 if any case differs.
set -u
BIN=$1
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
SYS=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
pass=0
fail=0

run_one() { # dir cmd args...
    local d=$1; shift
    "$@" >"$d.out" 2>"$d.err"
    echo $? >"$d.rc"
}

same() { # name: compares $T/a.* with $T/b.*
    local ok=1
    for x in out err rc; do
        cmp -s "$T/a.$x" "$T/b.$x" || ok=0
    done
    if [ $ok = 1 ]; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "DIFF: $1"
        for x in out err rc; do
            diff <(cat -A "$T/a.$x") <(cat -A "$T/b.$x") | head -20
        done
    fi
}

# Read-only views: both tools on the same objects, one after the other.
view() {
    local tool=$1; shift
    run_one "$T/a" env PATH="$SYS" "$tool" "$@"
    run_one "$T/b" env PATH="$BIN:$SYS" "$tool" "$@"
    # Times are printed to the second: retry once if the clock ticked in between.
    if ! cmp -s "$T/a.out" "$T/b.out"; then
        run_one "$T/a" env PATH="$SYS" "$tool" "$@"
        run_one "$T/b" env PATH="$BIN:$SYS" "$tool" "$@"
    fi
    same "$tool $*"
}

VIEWS=("" -m -q -s -a -t -p -c -l -u -b --human "-m -t" "-q -t" "-s -t" "-m -p" "-q -p"
    "-s -p" "-m -c" "-q -c" "-s -c" "-m -l" "-q -l" "-s -l" "-m -u" "-s -u" "-q -u"
    "-m -b" "-l -b" "-l --human" "-u -b" "-u --human" "-m --human" "-q --human" "-a -c"
    "-m -t -p" "-mt" "--shmems --time" "--hum -m" "-i" "-x" "--foo" "foo" "-i 0"
    "-m -i 0" "-m -i 1" "-q -i 0" "-s -i 0" "-m -i 99" "-q -i 99" "-s -i 99" "-m -i abc"
    "-m -i 0x0" "-m -i 0 --human" "-m -i 0 -b" "-q -i 0 --human" "-s -i 1" "--id=0 -m"
    "-m -i 99999999999" "-h" "--help" "-lu" "-ctp" "--s" "--human=x" "--id" "-mi0"
    "--i 0 -m" "-- -m" "-m -- foo" "--all=3" "-s -i 0 -i 1" "-q -i -1")

views_all() {
    for v in "${VIEWS[@]}"; do
        # shellcheck disable=SC2086
        view ipcs $v
    done
}

# 1. Empty namespace.
views_all

# 2. Objects of every kind, made by the real ipcmk.
ipcmk -M 4096 >/dev/null
ipcmk -M 100000 -p 600 >/dev/null
ipcmk -Q >/dev/null
ipcmk -S 3 -p 640 >/dev/null
ipcmk -M 1000 -p 0644 >/dev/null
ipcmk -M 5000000 >/dev/null
ipcmk -S 2 >/dev/null
ipcmk -Q -p 600 >/dev/null
# An owner without a passwd entry is shown by number.
setpriv --reuid=54321 --regid=54321 --clear-groups ipcmk -M 300 -Q -S 1 -p 666 >/dev/null
# ... and by shmkit's.
"$BIN/ipcmk" -M 8K -Q -S 1 -p 660 >/dev/null
views_all

# 3. Attached, removed-but-attached (dest), queued messages, operated semaphores.
coproc HOLD { python3 "$HERE/holder.py" 0,1 5 0 0; }
read -r -t 20 line <&"${HOLD[0]}"
if [ "${line:-}" != ready ]; then
    echo "holder did not start"
    exit 1
fi
views_all
for l in 4096 100000; do echo $l > /proc/sys/kernel/shmall; view ipcs -m -l; view ipcs -l -b; view ipcs -l --human; done
echo 4503599627370497 > /proc/sys/kernel/shmall
view ipcs -m -l; view ipcs -l -b
eval "exec ${HOLD[1]}>&-"
wait "$HOLD_PID" 2>/dev/null

# 4. Mutating commands: each case runs in two fresh nested namespaces with the same
#    objects (ids are allocated the same way), one per tool; output must match.
mutate() {
    local setup=$1; shift
    local tool=$1; shift
    unshare --ipc bash -c "$setup >/dev/null; \"\$@\" >$T/a.out 2>$T/a.err; echo \$? >$T/a.rc; ipcs -a | cut -c12- >>$T/a.out" _ env PATH="$SYS" "$tool" "$@"
    unshare --ipc bash -c "$setup >/dev/null; \"\$@\" >$T/b.out 2>$T/b.err; echo \$? >$T/b.rc; ipcs -a | cut -c12- >>$T/b.out" _ env PATH="$BIN:$SYS" "$tool" "$@"
    same "[$setup] $tool $*"
}
SETUP="ipcmk -M 4096 -Q -S 2; ipcmk -M 100 -Q -S 1"
KEY='$(ipcs -m | awk "/^0x/{print \$1; exit}")'
mutate "$SETUP" ipcrm
mutate "$SETUP" ipcrm -m 0
mutate "$SETUP" ipcrm -m 0 -m 1
mutate "$SETUP" ipcrm -v -m 0 -q 1 -s 0
mutate "$SETUP" ipcrm -m 99
mutate "$SETUP" ipcrm -q 99 -s 98
mutate "$SETUP" ipcrm -m abc
mutate "$SETUP" ipcrm -M 0x1234
mutate "$SETUP" ipcrm -M 0
mutate "$SETUP" ipcrm -M zz
mutate "$SETUP" ipcrm -Q 0x0000007b
mutate "$SETUP" ipcrm -a
mutate "$SETUP" ipcrm -v -a
mutate "$SETUP" ipcrm -ashm
mutate "$SETUP" ipcrm -v --all=sem
mutate "$SETUP" ipcrm -v -amsg
mutate "$SETUP" ipcrm -a=bogus
mutate "$SETUP" ipcrm shm 0
mutate "$SETUP" ipcrm shm 0 1
mutate "$SETUP" ipcrm msg 5
mutate "$SETUP" ipcrm sem 0 9 x
mutate "$SETUP" ipcrm sem
mutate "$SETUP" ipcrm foo 5
mutate "$SETUP" ipcrm -m 0 foo
mutate "$SETUP" ipcrm -x
mutate "$SETUP" ipcrm -m
# ipcrm --help: util-linux's text, then a paragraph on the deliberate difference.
env PATH="$SYS" ipcrm --help >"$T/a.out"
env PATH="$BIN:$SYS" ipcrm --help >"$T/b.out"
if [ "$(head -c "$(stat -c %s "$T/a.out")" "$T/b.out" | cmp - "$T/a.out" && echo same)" = same ] \
    && grep -q "Deliberate difference" "$T/b.out"; then
    pass=$((pass + 1))
else
    fail=$((fail + 1)); echo "DIFF: ipcrm --help is not util-linux's text plus the note"
fi
mutate "$SETUP" ipcrm --verbose --shmem-id 1
# Removal by key needs the key of the namespace's own object.
unshare --ipc bash -c "$SETUP >/dev/null; k=$KEY; /usr/bin/ipcrm -v -M \$k >$T/a.out 2>$T/a.err; echo \$? >$T/a.rc; ipcs -m | tail -n +2 | cut -c12- >>$T/a.out"
unshare --ipc bash -c "$SETUP >/dev/null; k=$KEY; $BIN/ipcrm -v -M \$k >$T/b.out 2>$T/b.err; echo \$? >$T/b.rc; ipcs -m | tail -n +2 | cut -c12- >>$T/b.out"
same "ipcrm -v -M KEY"

# ipcmk: ids and messages (keys are random, so compare the listing without them).
mk() {
    unshare --ipc bash -c "env PATH=$SYS ipcmk \"\$@\" >$T/a.out 2>$T/a.err; echo \$? >$T/a.rc; ipcs -a | cut -c12- >>$T/a.out" _ "$@"
    unshare --ipc bash -c "env PATH=$BIN:$SYS ipcmk \"\$@\" >$T/b.out 2>$T/b.err; echo \$? >$T/b.rc; ipcs -a | cut -c12- >>$T/b.out" _ "$@"
    same "ipcmk $*"
}
mk
mk -M 4096
mk -M 1K
mk -M 1KiB -p 700
mk -M 2MB -p 0600
mk -Q
mk -Q -p 640
mk -S 3
mk -M 10 -Q -S 2
mk -M 0
mk -S 0
mk -S 70000
mk -Q -p 9999
mk -Q -p abc
mk -M
mk -M x
mk -S x
mk foo
mk -x
mk --help
mk --shmem 100 --queue --semaphore 1 --mode 600

echo "compat: $pass passed, $fail failed"
[ $fail = 0 ]
