//! Synchronisation across processes: the robust mutex under SIGKILL, exact counts from
//! many processes, System V and POSIX semaphores (SEM_UNDO, timeouts, bad input, other
//! users), and the mailbox with a C peer on either side.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use shmkit::posix::sem::NamedSemaphore;
use shmkit::sync::lock_object::LockData;
use shmkit::sync::{LockObject, Locked, MailboxObject};
use shmkit::sysv::sem::{Create, SemOp, SemSet, SEMVMX, SEM_UNDO};
use shmkit::ErrorKind;

use crate::support::{
    assert_success, is_child, run_child, spawn_child, unique_key, unique_name, wait_output,
    wait_timeout, Cleanup, PosixGuard,
};

const DEADLINE: Duration = Duration::from_secs(60);

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} not set"))
}

#[test]
fn processes_increment_exactly_n_times_m() {
    let name = unique_name("count");
    let _g = PosixGuard(name.clone());
    let lock = LockObject::open_or_create(&name, 0o600).unwrap();
    assert!(lock.created());
    const N: usize = 4;
    const M: usize = 2000;
    let children: Vec<_> = (0..N)
        .map(|_| {
            spawn_child(
                "sync::child_increment",
                &[("SYNC_NAME", &name), ("SYNC_M", &M.to_string())],
            )
        })
        .collect();
    for c in children {
        let out = wait_output(c, DEADLINE, "incrementing child");
        assert_success(&out, "incrementing child");
    }
    let m = lock.mutex().unwrap();
    let g = m.lock().unwrap().into_guard();
    assert_eq!(g.get().unwrap().acquisitions, (N * M) as u64);
}

#[test]
#[ignore]
fn child_increment() {
    if !is_child() {
        return;
    }
    let lock = LockObject::open(&env("SYNC_NAME")).unwrap();
    let m = lock.mutex().unwrap();
    for _ in 0..env("SYNC_M").parse::<usize>().unwrap() {
        let g = m.lock().unwrap().into_guard();
        g.update(|d| d.acquisitions += 1).unwrap();
    }
}

#[test]
fn sigkilled_holder_leaves_owner_died_never_a_hang() {
    let name = unique_name("kill");
    let _g = PosixGuard(name.clone());
    let lock = LockObject::open_or_create(&name, 0o600).unwrap();
    let m = lock.mutex().unwrap();
    let mut owner_died = 0;
    let mut seed = std::process::id() as u64 | 1;
    for round in 0..12 {
        let mut child = spawn_child("sync::child_hold_forever", &[("SYNC_NAME", &name)]);
        // A random point in the child's work: wait until it made `target` more updates.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let start = {
            let mut g = m
                .lock_timeout(DEADLINE)
                .expect("lock before kill")
                .into_guard();
            g.mark_consistent();
            g.get().unwrap().acquisitions
        };
        let target = start + 1 + seed % 500;
        let t0 = Instant::now();
        loop {
            let mut g = m
                .lock_timeout(DEADLINE)
                .expect("lock while child runs")
                .into_guard();
            g.mark_consistent();
            if g.get().unwrap().acquisitions >= target {
                break;
            }
            drop(g);
            assert!(t0.elapsed() < DEADLINE, "the child made no progress");
            std::thread::yield_now();
        }
        // The guard is gone: let the child take the lock again before the kill, or a
        // loaded machine kills it while it still sleeps on the futex every time. Then
        // freeze it and kill it: whether it held the lock at that point is known, and
        // decides what the next locker must see.
        let t1 = Instant::now();
        while m.holder().is_none() && t1.elapsed() < DEADLINE {
            std::thread::yield_now();
        }
        let pid = child.id() as libc::pid_t;
        // SAFETY: pid is our child, not yet reaped; waitid with WNOWAIT only observes
        // that it stopped, into a zeroed siginfo_t.
        unsafe {
            assert_eq!(libc::kill(pid, libc::SIGSTOP), 0);
            let mut info: libc::siginfo_t = std::mem::zeroed();
            assert_eq!(
                libc::waitid(
                    libc::P_PID,
                    pid as libc::id_t,
                    &mut info,
                    libc::WSTOPPED | libc::WNOWAIT
                ),
                0,
                "waitid"
            );
        }
        let held = m.holder().is_some();
        child.kill().unwrap();
        wait_timeout(&mut child, DEADLINE).expect("killed child exits");
        let t0 = Instant::now();
        let locked = m.lock_timeout(Duration::from_secs(20));
        assert_eq!(
            matches!(locked, Ok(Locked::OwnerDied(_))),
            held,
            "round {round}: OwnerDied exactly when the child was killed holding the lock"
        );
        match locked {
            Ok(Locked::OwnerDied(mut g)) => {
                owner_died += 1;
                // Repair: the child writes acquisitions, then reserved = acquisitions.
                g.update(|d| d.reserved = d.acquisitions).unwrap();
                g.update(|d| d.owner_deaths += 1).unwrap();
                g.mark_consistent();
            }
            Ok(Locked::Clean(g)) => {
                let d = g.get().unwrap();
                assert_eq!(d.reserved, d.acquisitions, "round {round}: consistent data");
            }
            Err(e) => panic!("round {round}: {e}"),
        }
        assert!(t0.elapsed() < Duration::from_secs(20));
    }
    assert!(
        owner_died > 0,
        "no kill landed while the child held the lock"
    );
    let g = m.lock().unwrap().into_guard();
    assert_eq!(g.get().unwrap().owner_deaths, owner_died);
}

#[test]
#[ignore]
fn child_hold_forever() {
    if !is_child() {
        return;
    }
    let lock = LockObject::open(&env("SYNC_NAME")).unwrap();
    let m = lock.mutex().unwrap();
    let t0 = Instant::now();
    // Runs until killed (bounded, so that a lost parent cannot leave it forever).
    while t0.elapsed() < DEADLINE {
        let mut g = m.lock().unwrap().into_guard();
        g.mark_consistent();
        g.update(|d| d.acquisitions += 1).unwrap();
        g.update(|d: &mut LockData| d.reserved = d.acquisitions)
            .unwrap();
    }
}

#[test]
fn not_recoverable_after_unrepaired_owner_death() {
    let name = unique_name("unrec");
    let _g = PosixGuard(name.clone());
    let lock = LockObject::open_or_create(&name, 0o600).unwrap();
    let m = lock.mutex().unwrap();
    let out = run_child(
        "sync::child_lock_and_exit",
        &[("SYNC_NAME", &name)],
        DEADLINE,
    );
    assert_success(&out, "child that exits holding the lock");
    let g = m.lock_timeout(Duration::from_secs(20)).unwrap();
    assert!(g.owner_died());
    drop(g);
    assert_eq!(
        m.lock().unwrap_err(),
        shmkit::sync::LockError::NotRecoverable
    );
}

#[test]
#[ignore]
fn child_lock_and_exit() {
    if !is_child() {
        return;
    }
    let lock = LockObject::open(&env("SYNC_NAME")).unwrap();
    let m = lock.mutex().unwrap();
    std::mem::forget(m.lock().unwrap());
    std::process::exit(0);
}

struct SemGuard(SemSet);
impl Drop for SemGuard {
    fn drop(&mut self) {
        let _ = self.0.remove();
    }
}

#[test]
fn sem_undo_restores_after_kill() {
    let key = unique_key();
    let set = SemGuard(SemSet::get(key, 2, Create::Exclusive, 0o600).unwrap());
    set.0.set_value(0, 1).unwrap();
    let mut child = spawn_child(
        "sync::child_take_with_undo",
        &[("SYNC_KEY", &key.to_string())],
    );
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let took = lines.any(|l| l.map(|l| l.contains("taken")).unwrap_or(false));
    assert!(took, "the child did not take the semaphore");
    assert_eq!(set.0.value(0).unwrap(), 0);
    assert_eq!(set.0.last_pid(0).unwrap(), child.id() as i32);
    // The child now blocks on semaphore 1: GETNCNT sees it (a bounded poll on the
    // kernel's count; the child gives no other signal once it sleeps).
    let t0 = Instant::now();
    while set.0.waiting_for_increase(1).unwrap() != 1 {
        assert!(
            t0.elapsed() < DEADLINE,
            "the child never waited on semaphore 1"
        );
        std::thread::yield_now();
    }
    assert_eq!(set.0.waiting_for_zero(1).unwrap(), 0);
    child.kill().unwrap();
    wait_timeout(&mut child, DEADLINE).expect("killed child exits");
    assert_eq!(set.0.value(0).unwrap(), 1, "SEM_UNDO gave the unit back");
}

#[test]
#[ignore]
fn child_take_with_undo() {
    if !is_child() {
        return;
    }
    let key: i32 = env("SYNC_KEY").parse().unwrap();
    let set = SemSet::get(key, 0, Create::Open, 0).unwrap();
    set.add(0, -1, SEM_UNDO, Some(DEADLINE)).unwrap();
    println!("taken");
    // Wait (bounded) on semaphore 1, which nobody posts: the parent kills us here.
    let _ = set.add(1, -1, 0, Some(DEADLINE));
}

#[test]
fn sysv_ops_are_atomic_and_time_out() {
    let set = SemGuard(SemSet::private(3, 0o600).unwrap());
    let s = &set.0;
    s.set_values(&[1, 0, 5]).unwrap();
    assert_eq!(s.values().unwrap(), vec![1, 0, 5]);
    // Two operations at once: the second cannot proceed, so neither happens.
    let e = s
        .op(
            &[
                SemOp {
                    num: 0,
                    op: -1,
                    flags: 0,
                },
                SemOp {
                    num: 1,
                    op: -1,
                    flags: shmkit::sysv::sem::IPC_NOWAIT,
                },
            ],
            None,
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
    assert_eq!(s.values().unwrap(), vec![1, 0, 5]);
    let t0 = Instant::now();
    let e = s
        .add(1, -1, 0, Some(Duration::from_millis(50)))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    assert!(t0.elapsed() >= Duration::from_millis(50));
    assert!(t0.elapsed() < Duration::from_secs(10));
    s.op(
        &[
            SemOp {
                num: 0,
                op: -1,
                flags: 0,
            },
            SemOp {
                num: 2,
                op: 2,
                flags: 0,
            },
        ],
        None,
    )
    .unwrap();
    assert_eq!(s.values().unwrap(), vec![0, 0, 7]);
    assert_eq!(s.waiting_for_increase(1).unwrap(), 0);
    assert_eq!(s.waiting_for_zero(0).unwrap(), 0);
    let st = s.stat().unwrap();
    assert_eq!(st.nsems, 3);
    assert_eq!(st.mode & 0o777, 0o600);
    s.set_owner_and_mode(st.uid, st.gid, 0o640).unwrap();
    assert_eq!(s.stat().unwrap().mode & 0o777, 0o640);
}

#[test]
fn sysv_bad_input_gives_clear_errors() {
    let key = unique_key();
    let e = SemSet::get(key, 0, Create::Open, 0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(
        e.to_string().contains(&format!("{:#010x}", key as u32)),
        "{e}"
    );
    let set = SemGuard(SemSet::get(key, 2, Create::Exclusive, 0o600).unwrap());
    let e = SemSet::get(key, 5, Create::Open, 0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("nsems"), "{e}");
    assert_eq!(
        SemSet::get(key, 2, Create::Exclusive, 0o600)
            .unwrap_err()
            .kind(),
        ErrorKind::AlreadyExists
    );
    let e = set.0.set_value(0, SEMVMX + 1).unwrap_err();
    assert!(e.to_string().contains("32767"), "{e}");
    assert!(set.0.set_value(0, -1).is_err());
    let e = set.0.set_values(&[1, 2, 3]).unwrap_err();
    assert!(e.to_string().contains("needs 2 values"), "{e}");
    let e = set.0.add(7, 1, 0, None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    set.0.set_value(1, SEMVMX).unwrap();
    let e = set.0.add(1, 1, 0, None).unwrap_err();
    assert!(e.to_string().contains("SEMVMX"), "{e}");
    assert!(SemSet::get(key, -1, Create::Open, 0).is_err());
}

#[test]
fn other_users_are_refused() {
    let key = unique_key();
    let set = SemGuard(SemSet::get(key, 1, Create::Exclusive, 0o600).unwrap());
    let name = unique_name("psem");
    let _g = Cleanup(|| {
        let _ = NamedSemaphore::unlink(&name);
    });
    let _s = NamedSemaphore::create(&name, 0o600, 0, true).unwrap();
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        eprintln!("not root: cannot start a child as another user; skipped");
        return;
    }
    let out = run_child(
        "sync::child_as_nobody",
        &[("SYNC_KEY", &key.to_string()), ("SYNC_NAME", &name)],
        DEADLINE,
    );
    assert_success(&out, "child running as nobody");
    let _ = set;
}

#[test]
#[ignore]
fn child_as_nobody() {
    if !is_child() {
        return;
    }
    // SAFETY: setgid/setuid have no memory-safety preconditions.
    unsafe {
        assert_eq!(libc::setgid(65534), 0);
        assert_eq!(libc::setuid(65534), 0);
    }
    let key: i32 = env("SYNC_KEY").parse().unwrap();
    // Asking for read-write access at open is refused by semget ...
    let e = SemSet::get(key, 0, Create::Open, 0o600).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(e.to_string().contains("semget"), "{e}");
    // ... and without asking, by the first operation.
    let set = SemSet::get(key, 0, Create::Open, 0).unwrap();
    let e = set.value(0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(e.to_string().contains("semctl"), "{e}");
    let e = set.add(0, 1, 0, None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    let e = NamedSemaphore::open(&env("SYNC_NAME")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
}

#[test]
fn named_semaphore_across_processes_and_timeouts() {
    let name = unique_name("nsem");
    let _g = Cleanup(|| {
        let _ = NamedSemaphore::unlink(&name);
    });
    let s = NamedSemaphore::create(&name, 0o666, 0, true).unwrap();
    {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(format!("/dev/shm/sem.{name}")).unwrap();
        assert_eq!(
            m.mode() & 0o777,
            0o666,
            "the mode is exact, whatever the umask"
        );
    }
    assert_eq!(
        NamedSemaphore::create(&name, 0o600, 0, true)
            .unwrap_err()
            .kind(),
        ErrorKind::AlreadyExists
    );
    assert!(!s.try_wait().unwrap());
    let t0 = Instant::now();
    assert!(!s.wait_timeout(Duration::from_millis(50)).unwrap());
    assert!(t0.elapsed() >= Duration::from_millis(50));
    let out = run_child("sync::child_post_twice", &[("SYNC_NAME", &name)], DEADLINE);
    assert_success(&out, "posting child");
    assert_eq!(s.value().unwrap(), 2);
    s.wait().unwrap();
    assert!(s.wait_timeout(Duration::from_secs(5)).unwrap());
    assert_eq!(
        NamedSemaphore::open("/no/such").unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert!(NamedSemaphore::create(&name, 0o600, u32::MAX, false).is_err());
}

#[test]
#[ignore]
fn child_post_twice() {
    if !is_child() {
        return;
    }
    let s = NamedSemaphore::open(&env("SYNC_NAME")).unwrap();
    s.post().unwrap();
    s.post().unwrap();
}

const C_PEER: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/futex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The mailbox layout documented in shmkit::sync::mailbox. */
#define STATE 64
#define CAPACITY 68
#define LEN 72
#define WRITER_PID 76
#define READER_PID 80
#define DELIVERED 84
#define PAYLOAD 96

static void wait_while(uint32_t *w, uint32_t v) {
    while (__atomic_load_n(w, __ATOMIC_ACQUIRE) == v)
        syscall(SYS_futex, w, FUTEX_WAIT, v, NULL, NULL, 0);
}

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    char path[300];
    snprintf(path, sizeof path, "/dev/shm/%s", argv[1]);
    int fd = open(path, O_RDWR | O_NOFOLLOW);
    if (fd < 0) { perror("open"); return 3; }
    struct stat st;
    fstat(fd, &st);
    unsigned char *p = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 3; }
    if (memcmp(p, "SHMKIT\0\x01", 8) != 0 || *(uint16_t *)(p + 8) != 17 ||
        *(uint16_t *)(p + 10) != 1) { fprintf(stderr, "not a mailbox\n"); return 4; }
    uint32_t *ready = (uint32_t *)(p + 28);
    if (__atomic_load_n(ready, __ATOMIC_ACQUIRE) != 0x59444552u) return 4;
    uint32_t *state = (uint32_t *)(p + STATE);
    uint32_t cap = *(uint32_t *)(p + CAPACITY);
    int n = atoi(argv[3]);
    if (strcmp(argv[2], "write") == 0) {
        __atomic_store_n((uint32_t *)(p + WRITER_PID), (uint32_t)getpid(), __ATOMIC_RELAXED);
        for (int i = 0; i < n; i++) {
            wait_while(state, 1);
            int len = snprintf((char *)p + PAYLOAD, cap, "from C %d", i);
            __atomic_store_n((uint32_t *)(p + LEN), (uint32_t)len, __ATOMIC_RELAXED);
            __atomic_store_n(state, 1, __ATOMIC_RELEASE);
            syscall(SYS_futex, state, FUTEX_WAKE, 0x7fffffff, NULL, NULL, 0);
            wait_while(state, 1);
        }
    } else {
        __atomic_store_n((uint32_t *)(p + READER_PID), (uint32_t)getpid(), __ATOMIC_RELAXED);
        for (int i = 0; i < n; i++) {
            wait_while(state, 0);
            uint32_t len = __atomic_load_n((uint32_t *)(p + LEN), __ATOMIC_RELAXED);
            if (len > cap) return 5;
            char buf[512];
            if (len >= sizeof buf) return 5;
            memcpy(buf, p + PAYLOAD, len);
            buf[len] = 0;
            printf("%s\n", buf);
            fflush(stdout);
            __atomic_fetch_add((uint32_t *)(p + DELIVERED), 1, __ATOMIC_RELAXED);
            __atomic_store_n(state, 0, __ATOMIC_RELEASE);
            syscall(SYS_futex, state, FUTEX_WAKE, 0x7fffffff, NULL, NULL, 0);
        }
    }
    return 0;
}
"#;

#[test]
fn mailbox_with_a_c_peer_both_ways() {
    let exe = crate::support::compile_c("sync_mailbox_peer", C_PEER, &[]);
    let name = unique_name("mbox");
    let _g = PosixGuard(name.clone());
    let obj = MailboxObject::create(&name, 256, 0o600).unwrap();
    let mb = obj.mailbox().unwrap();

    // C writes, Rust reads.
    let c = std::process::Command::new(&exe)
        .args([&name, "write", "5"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for i in 0..5 {
        let m = mb.recv(Some(DEADLINE)).unwrap();
        assert_eq!(m, format!("from C {i}").as_bytes());
    }
    let out = wait_output(c, DEADLINE, "C writer");
    assert_success(&out, "C writer");

    // Rust writes, C reads.
    let c = std::process::Command::new(&exe)
        .args([&name, "read", "5"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for i in 0..5 {
        mb.send(format!("from Rust {i}").as_bytes(), Some(DEADLINE))
            .unwrap();
    }
    let out = wait_output(c, DEADLINE, "C reader");
    assert_success(&out, "C reader");
    let text = String::from_utf8(out.stdout).unwrap();
    let expected: Vec<String> = (0..5).map(|i| format!("from Rust {i}")).collect();
    assert_eq!(text.lines().collect::<Vec<_>>(), expected);
    assert_eq!(mb.delivered(), 10);
}

#[test]
fn mailbox_notices_a_dead_reader() {
    let name = unique_name("mboxdead");
    let _g = PosixGuard(name.clone());
    let obj = MailboxObject::create(&name, 64, 0o600).unwrap();
    let mb = obj.mailbox().unwrap();
    // The child registers as the reader, takes one message, and exits.
    let child = spawn_child("sync::child_read_one", &[("SYNC_NAME", &name)]);
    mb.send(b"one", Some(DEADLINE)).unwrap();
    let out = wait_output(child, DEADLINE, "reading child");
    assert_success(&out, "reading child");
    // Nobody will take the second one: the writer learns that the reader died.
    let t0 = Instant::now();
    match mb.send(b"two", Some(DEADLINE)) {
        Err(shmkit::sync::MailboxError::PeerDied(_)) => {}
        other => panic!("expected PeerDied, got {other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(30));
}

#[test]
#[ignore]
fn child_read_one() {
    if !is_child() {
        return;
    }
    let obj = MailboxObject::open(&env("SYNC_NAME")).unwrap();
    let m = obj.mailbox().unwrap().recv(Some(DEADLINE)).unwrap();
    assert_eq!(m, b"one");
}

/// Offsets of the primitives in the region shared by `primitives_across_processes`.
const MUTEX_AT: usize = 0;
const CONDVAR_AT: usize = 64;
const SEM_AT: usize = 128;
const EVENT_AT: usize = 192;
const RWLOCK_AT: usize = 256;

#[test]
fn primitives_across_processes() {
    use shmkit::posix::{PosixShm, ShmName};
    use shmkit::sync::{Condvar, Event, Mutex, Reset, RwLock, Semaphore};
    let name = unique_name("prims");
    let _g = PosixGuard(name.clone());
    let shm = PosixShm::create(&ShmName::new(&format!("/{name}")).unwrap(), 4096).unwrap();
    let map = shm.map().unwrap();
    let m = Mutex::<u32>::init(&map, MUTEX_AT, 0).unwrap();
    let cv = Condvar::init(&map, CONDVAR_AT).unwrap();
    let sem = Semaphore::init(&map, SEM_AT, 0).unwrap();
    let ev = Event::init(&map, EVENT_AT, Reset::Manual).unwrap();
    let rw = RwLock::init(&map, RWLOCK_AT).unwrap();
    let writing = rw.write();
    let child = spawn_child("sync::child_primitives", &[("SYNC_NAME", &name)]);
    // The child posts three units, then waits for the event.
    for _ in 0..3 {
        assert!(sem.wait_timeout(DEADLINE), "no unit from the child");
    }
    // It is blocked on the rwlock we hold for writing; release it.
    drop(writing);
    ev.set();
    // Then it sets the value under the mutex and notifies the condvar.
    let mut g = m.lock_timeout(DEADLINE).unwrap().into_guard();
    let t0 = Instant::now();
    while g.get().unwrap() != 42 {
        assert!(t0.elapsed() < DEADLINE, "no notification from the child");
        g = cv
            .wait_timeout(g, Duration::from_secs(1))
            .unwrap()
            .into_guard();
    }
    drop(g);
    let out = wait_output(child, DEADLINE, "child using the primitives");
    assert_success(&out, "child using the primitives");
}

#[test]
#[ignore]
fn child_primitives() {
    use shmkit::posix::{Access, PosixShm, ShmName};
    use shmkit::sync::{Condvar, Event, Mutex, RwLock, Semaphore};
    if !is_child() {
        return;
    }
    let shm = PosixShm::open(
        &ShmName::new(&format!("/{}", env("SYNC_NAME"))).unwrap(),
        Access::ReadWrite,
    )
    .unwrap();
    let map = shm.map().unwrap();
    let m = Mutex::<u32>::attach(&map, MUTEX_AT).unwrap();
    let cv = Condvar::attach(&map, CONDVAR_AT).unwrap();
    let sem = Semaphore::attach(&map, SEM_AT).unwrap();
    let ev = Event::attach(&map, EVENT_AT).unwrap();
    let rw = RwLock::attach(&map, RWLOCK_AT).unwrap();
    for _ in 0..3 {
        sem.post().unwrap();
    }
    assert!(
        rw.read_timeout(DEADLINE).is_some(),
        "the rwlock stayed held"
    );
    assert!(ev.wait_timeout(DEADLINE), "the event was never set");
    let g = m.lock_timeout(DEADLINE).unwrap().into_guard();
    g.set(42).unwrap();
    drop(g);
    cv.notify_all();
}

#[test]
fn mutex_in_a_sysv_segment() {
    use shmkit::sync::Mutex;
    use shmkit::sysv::{Key, Segment};
    let seg = Segment::create(Key::PRIVATE, 4096).unwrap();
    let _g = Cleanup(|| {
        let _ = seg.remove();
    });
    let a = seg.attach().unwrap();
    let m = Mutex::<u64>::init(&a, 1024, 0).unwrap();
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                for _ in 0..1000 {
                    let g = m.lock_timeout(DEADLINE).unwrap().into_guard();
                    g.update(|v| *v += 1).unwrap();
                }
            });
        }
    });
    assert_eq!(m.try_lock().unwrap().into_guard().get().unwrap(), 3000);
    assert!(Mutex::<u64>::attach(&a, 4096 - 8).is_err());
}
