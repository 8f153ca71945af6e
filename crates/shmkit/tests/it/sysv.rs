//! System V shared memory across processes: a re-executed test binary, forked children
//! (async-signal-safe work only, reporting by exit code or signal), C peers, and bad
//! input. Every segment has a key in the test range or is private, and a guard removes
//! it even when the test panics.

use std::io::{BufRead, BufReader};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use shmkit::sysv::{Key, Segment};
use shmkit::{ErrorKind, Region, RegionExt};

use crate::support::{self, exit_code, term_signal, Cleanup};

const DEADLINE: Duration = Duration::from_secs(20);

/// Removes the segment on drop (ignoring "already gone").
struct SegGuard(i32);

impl Drop for SegGuard {
    fn drop(&mut self) {
        if let Ok(seg) = Segment::from_id(self.0) {
            let _ = seg.remove();
        }
    }
}

/// Asserts that the segment has `n` attachments. Callers hold the fork lock
/// ([`support::fork_lock`]) and have reaped their children, so no forked child (of this
/// test or another) holds an inherited copy of the attachment: the count is exact.
fn expect_nattch(seg: &Segment, n: u64) {
    assert_eq!(seg.info().unwrap().nattch, n, "nattch");
}

/// Asserts that the segment is destroyed (under the fork lock, as [`expect_nattch`]).
fn expect_gone(seg: &Segment) {
    let r = seg.info();
    assert!(
        matches!(&r, Err(e) if e.kind() == ErrorKind::NotFound),
        "the segment still exists: {r:?}"
    );
}

fn create_guarded(key: Key, size: usize) -> (Segment, SegGuard) {
    let seg = Segment::create(key, size).expect("create segment");
    let g = SegGuard(seg.id());
    (seg, g)
}

/// Waits on the futex word at offset 0 until it equals `want`, with the deadline. The
/// C peer wakes the word (FUTEX_WAKE, shared) after each store, so nothing polls.
fn wait_word(a: &impl Region, want: u32) {
    use shmkit::sys::futex;
    let word = a.atomic_u32(0).unwrap();
    let end = Instant::now() + DEADLINE;
    loop {
        // SYNC: Acquire pairs with the peer's release store of the word after it wrote
        // its message.
        let now = word.load(Ordering::Acquire);
        if now == want {
            return;
        }
        let left = end.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "timed out waiting for the word to be {want}, it is {now}"
        );
        futex::wait(word, now, Some(left));
    }
}

/// Stores `v` in the word at offset 0 with Release and wakes the peer waiting on it.
fn set_word(a: &impl Region, v: u32) {
    let word = a.atomic_u32(0).unwrap();
    // SYNC: Release publishes the message written before; pairs with the C peer's
    // acquire load after its FUTEX_WAIT.
    word.store(v, Ordering::Release);
    shmkit::sys::futex::wake_all(word);
}

#[test]
fn create_write_then_reexecuted_child_reads_and_answers() {
    let _lock = support::fork_lock();
    let key = Key::new(support::unique_key());
    let (seg, _g) = create_guarded(key, 4096);
    let a = seg.attach().unwrap();
    a.write_at(0, b"from parent\0").unwrap();
    a.write(128, &0xfeed_f00d_u64).unwrap();
    let raw = format!("{}", key.raw());
    let child = support::spawn_child(
        "sysv::child_open_by_key",
        &[("SHMKIT_TEST_KEY", raw.as_str())],
    );
    let child_pid = child.id() as i32;
    let out = support::wait_output(child, DEADLINE, "child_open_by_key");
    support::assert_success(&out, "child_open_by_key");
    assert_eq!(a.read_vec(64, 11).unwrap(), b"from child\0");
    assert_eq!(a.read::<u64>(136).unwrap(), 0xfeed_f00d_u64 + 1);
    expect_nattch(&seg, 1); // the child detached at exit
    let info = seg.info().unwrap();
    assert_eq!(info.lpid, child_pid, "the child attached and detached last");
    assert_eq!(info.cpid, std::process::id() as i32);
    assert!(info.atime > 0 && info.dtime > 0);
}

#[test]
#[ignore = "child of create_write_then_reexecuted_child_reads_and_answers"]
fn child_open_by_key() {
    if !support::is_child() {
        return;
    }
    let raw: i32 = std::env::var("SHMKIT_TEST_KEY").unwrap().parse().unwrap();
    let seg = Segment::open_checked(Key::new(raw), 4096).unwrap();
    let a = seg.attach().unwrap();
    assert_eq!(a.read_vec(0, 12).unwrap(), b"from parent\0");
    assert!(seg.info().unwrap().nattch >= 2);
    a.write_at(64, b"from child\0").unwrap();
    let v: u64 = a.read(128).unwrap();
    a.write(136, &(v + 1)).unwrap();
}

#[test]
fn forked_child_inherits_the_attachment() {
    let lock = support::fork_lock();
    let (seg, _g) = create_guarded(Key::PRIVATE, 4096);
    let a = seg.attach().unwrap();
    a.write(0, &7u32).unwrap();
    let p = a.as_ptr();
    let status = support::fork_child(&lock, || {
        // SAFETY: the inherited attachment is mapped at the same address in the child.
        unsafe {
            if std::ptr::read_volatile(p.cast::<u32>()) != 7 {
                return 3;
            }
            std::ptr::write_volatile(p.add(4).cast::<u32>(), 99);
            let mut ds: libc::shmid_ds = std::mem::zeroed();
            if libc::shmctl(seg.id(), libc::IPC_STAT, &mut ds) != 0 || ds.shm_nattch < 2 {
                return 4;
            }
        }
        0
    });
    assert_eq!(exit_code(status), Some(0), "child status {status:#x}");
    assert_eq!(a.read::<u32>(4).unwrap(), 99);
    expect_nattch(&seg, 1); // the child's exit detached its copy
}

#[test]
fn read_only_attachment_refuses_writes_and_a_raw_store_faults() {
    let lock = support::fork_lock();
    let (seg, _g) = create_guarded(Key::PRIVATE, 4096);
    seg.attach().unwrap().write_at(0, b"kept").unwrap();
    let ro = seg.attach_read_only().unwrap();
    assert!(!ro.is_writable());
    let e = ro.write_at(0, b"x").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ReadOnly);
    assert!(e.to_string().contains(&format!("id {}", seg.id())), "{e}");
    assert_eq!(ro.atomic_u32(0).unwrap_err().kind(), ErrorKind::ReadOnly);
    let p = ro.as_ptr();
    let status = support::fork_child(&lock, || {
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: setrlimit is a system call; the store to a read-only page faults,
        // which is exactly what this child checks.
        unsafe {
            libc::setrlimit(libc::RLIMIT_CORE, &no_core);
            std::ptr::write_volatile(p, b'X');
        }
        0
    });
    assert_eq!(
        term_signal(status),
        Some(libc::SIGSEGV),
        "status {status:#x}"
    );
    assert_eq!(ro.read_vec(0, 4).unwrap(), b"kept");
}

#[test]
fn attach_at_an_address_with_and_without_rounding() {
    let (seg, _g) = create_guarded(Key::PRIVATE, 4096);
    let first = seg.attach().unwrap();
    first.write_at(0, b"same bytes").unwrap();
    let addr = first.addr();
    // Occupied: the kernel refuses instead of replacing the mapping.
    let e = seg.attach_at(addr, true, false).unwrap_err();
    assert_eq!(e.errno(), Some(libc::EINVAL), "{e}");
    assert_eq!(first.read_vec(0, 10).unwrap(), b"same bytes", "left intact");
    drop(first);
    // Unaligned without SHM_RND: refused whether or not the range is free.
    assert_eq!(
        seg.attach_at(addr + 3, true, false).unwrap_err().errno(),
        Some(libc::EINVAL)
    );
    // Re-attach where an attachment just was. Other tests' threads map memory too and
    // may take a freed range first (EINVAL, as an occupied range must give): then try
    // again with a freshly freed one.
    let mut tries = 0;
    let (b, c) = loop {
        tries += 1;
        assert!(tries <= 100, "no freed range stayed free for a re-attach");
        let probe = seg.attach().unwrap();
        let addr = probe.addr();
        drop(probe);
        let b = match seg.attach_at(addr + 3, false, true) {
            Ok(b) => b,
            Err(e) if e.errno() == Some(libc::EINVAL) => continue,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(b.addr(), addr, "SHM_RND rounds down to the page");
        drop(b);
        match seg.attach_at(addr, true, false) {
            Ok(c) => break (addr, c),
            Err(e) if e.errno() == Some(libc::EINVAL) => continue,
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(c.addr(), b);
    assert_eq!(c.read_vec(0, 10).unwrap(), b"same bytes");
    assert!(seg.attach_at(0, true, false).is_err());
}

#[test]
fn remove_while_attached_marks_dest_and_frees_at_last_detach() {
    let lock = support::fork_lock();
    let key = Key::new(support::unique_key());
    let (seg, _g) = create_guarded(key, 4096);
    let a = seg.attach().unwrap();
    // A forked child keeps the segment attached; it writes after the parent removed it.
    let mut go = [0i32; 2];
    // SAFETY: a valid array for the two descriptors.
    assert_eq!(unsafe { libc::pipe(go.as_mut_ptr()) }, 0);
    let _close = Cleanup(move || {
        // SAFETY: closing our own pipe descriptors once.
        unsafe {
            libc::close(go[0]);
            libc::close(go[1]);
        }
    });
    let p = a.as_ptr();
    // SAFETY: the child only reads a pipe and stores through its inherited attachment
    // (async-signal-safe), then _exits.
    let pid = unsafe { support::fork(&lock) };
    if pid == 0 {
        let mut b = 0u8;
        // SAFETY: read and _exit are async-signal-safe; p is mapped in the child too.
        unsafe {
            if libc::read(go[0], (&mut b as *mut u8).cast(), 1) != 1 {
                libc::_exit(3);
            }
            std::ptr::write_volatile(p.add(8).cast::<u32>(), 0xabcd);
            libc::_exit(0);
        }
    }
    seg.remove().unwrap();
    let info = seg.info().unwrap();
    assert!(info.dest, "removed while attached: dest");
    assert!(info.key.is_private(), "the key became 0, got {}", info.key);
    assert!(info.nattch >= 2);
    assert_eq!(
        Segment::open(key).unwrap_err().kind(),
        ErrorKind::NotFound,
        "the key no longer finds it"
    );
    // SAFETY: writing one byte from a valid buffer to our pipe.
    assert_eq!(unsafe { libc::write(go[1], b"g".as_ptr().cast(), 1) }, 1);
    assert_eq!(exit_code(support::wait_forked(pid, DEADLINE)), Some(0));
    assert_eq!(
        a.read::<u32>(8).unwrap(),
        0xabcd,
        "attached processes keep using it"
    );
    a.write_at(0, b"still here").unwrap();
    expect_nattch(&seg, 1);
    // Linux (unlike POSIX) still lets a process attach a dest segment by id.
    let late = seg.attach_read_only().unwrap();
    assert_eq!(late.read_vec(0, 10).unwrap(), b"still here");
    drop(late);
    drop(a);
    expect_gone(&seg); // destroyed at the last detach
}

#[test]
fn remove_without_attachments_is_immediate() {
    let key = Key::new(support::unique_key());
    let (seg, _g) = create_guarded(key, 100);
    seg.remove().unwrap();
    assert_eq!(Segment::open(key).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(seg.attach().unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(seg.remove().unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn stat_and_set_mode_owner_lock() {
    let key = Key::new(support::unique_key());
    let seg = Segment::options().mode(0o640).create(key, 5000).unwrap();
    let _g = SegGuard(seg.id());
    let i = seg.info().unwrap();
    assert_eq!((i.key, i.id, i.size, i.mode), (key, seg.id(), 5000, 0o640));
    assert_eq!(
        (i.dest, i.locked, i.nattch, i.atime, i.dtime),
        (false, false, 0, 0, 0)
    );
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    assert_eq!((i.uid, i.gid, i.cuid, i.cgid), (uid, gid, uid, gid));
    assert!(i.ctime > 0);
    seg.set_mode(0o604).unwrap();
    assert_eq!(seg.info().unwrap().mode, 0o604);
    assert_eq!(
        seg.set_mode(0o1777).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    if uid == 0 {
        seg.set_owner(65534, 65534).unwrap();
        let i = seg.info().unwrap();
        assert_eq!(
            (i.uid, i.gid, i.cuid),
            (65534, 65534, 0),
            "creator unchanged"
        );
        seg.lock().unwrap();
        assert!(seg.info().unwrap().locked);
        seg.unlock().unwrap();
        assert!(!seg.info().unwrap().locked);
    } else {
        eprintln!("skipping set_owner and lock: not root");
    }
    // Opening by key and by id finds the same segment.
    assert_eq!(Segment::open(key).unwrap().id(), seg.id());
    assert_eq!(Segment::from_id(seg.id()).unwrap().key(), key);
}

#[test]
fn bad_input_gives_clear_errors_and_changes_nothing() {
    let key = Key::new(support::unique_key());
    // Missing key and id.
    let e = Segment::open(key).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains(&format!("key {key}")), "{e}");
    let e = Segment::from_id(i32::MAX).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(Segment::from_id(-1).is_err());
    assert!(Segment::open(Key::PRIVATE).is_err());
    // Size 0 and above SHMMAX.
    assert_eq!(
        Segment::create(key, 0).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let (limits, _) = shmkit::sys::sysv::limits().unwrap();
    let above_shmmax = usize::try_from(limits.shmmax).unwrap().saturating_add(1);
    let e = Segment::create(key, above_shmmax).unwrap_err();
    assert_eq!(e.errno(), Some(libc::EINVAL), "{e}");
    assert!(e.to_string().contains("outside SHMMIN..SHMMAX"), "{e}");
    assert_eq!(
        Segment::open(key).unwrap_err().kind(),
        ErrorKind::NotFound,
        "nothing created"
    );
    // Exists already; larger than the existing one.
    let (seg, _g) = create_guarded(key, 100);
    assert_eq!(
        Segment::create(key, 100).unwrap_err().kind(),
        ErrorKind::AlreadyExists
    );
    let e = Segment::open_checked(key, 101).unwrap_err();
    assert_eq!(e.errno(), Some(libc::EINVAL));
    assert!(
        e.to_string().contains("larger than the existing segment"),
        "{e}"
    );
    let same = Segment::options().exclusive(false).create(key, 50).unwrap();
    assert_eq!(same.id(), seg.id());
    assert_eq!(seg.info().unwrap().size, 100, "unchanged");
    // Offsets and lengths outside the segment.
    let a = seg.attach().unwrap();
    for (off, len) in [(100, 1), (96, 8), (usize::MAX, 2), (0, 101)] {
        let e = a.read_vec(off, len).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::OutOfBounds, "{off}+{len}");
        assert_eq!(
            a.write_at(off, &vec![1; len.min(200)]).unwrap_err().kind(),
            ErrorKind::OutOfBounds
        );
    }
    assert_eq!(
        a.read_vec(0, 100).unwrap(),
        vec![0u8; 100],
        "nothing written"
    );
}

#[test]
fn no_permission_for_an_unprivileged_user() {
    let lock = support::fork_lock();
    // SAFETY: getuid cannot fail.
    if unsafe { libc::getuid() } != 0 {
        eprintln!("skipping: dropping to user nobody needs root");
        return;
    }
    let (seg, _g) = create_guarded(Key::PRIVATE, 4096);
    let id = seg.id();
    let status = support::fork_child(&lock, || {
        // SAFETY: setgroups/setgid/setuid/shmat/shmctl are plain system calls, safe in a
        // forked child; errno is read through its thread-local location.
        unsafe {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(65534) != 0
                || libc::setuid(65534) != 0
            {
                return 10;
            }
            let p = libc::shmat(id, std::ptr::null(), 0);
            if p as isize != -1 || *libc::__errno_location() != libc::EACCES {
                return 11;
            }
            let p = libc::shmat(id, std::ptr::null(), libc::SHM_RDONLY);
            if p as isize != -1 || *libc::__errno_location() != libc::EACCES {
                return 12;
            }
            if libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) != -1
                || *libc::__errno_location() != libc::EPERM
            {
                return 13;
            }
        }
        0
    });
    assert_eq!(exit_code(status), Some(0), "status {status:#x}");
    assert_eq!(seg.info().unwrap().nattch, 0, "the child changed nothing");
}

#[test]
fn no_permission_error_from_the_library_in_a_reexecuted_child() {
    // SAFETY: getuid cannot fail.
    if unsafe { libc::getuid() } != 0 {
        eprintln!("skipping: running the child as nobody needs root");
        return;
    }
    let (seg, _g) = create_guarded(Key::PRIVATE, 4096);
    let id = seg.id().to_string();
    let out = support::run_child(
        "sysv::child_denied",
        &[("SHMKIT_TEST_ID", id.as_str())],
        DEADLINE,
    );
    support::assert_success(&out, "child_denied");
}

#[test]
#[ignore = "child of no_permission_error_from_the_library_in_a_reexecuted_child"]
fn child_denied() {
    if !support::is_child() {
        return;
    }
    // This process is single-threaded for the test (--test-threads=1): drop privileges.
    // SAFETY: plain system calls.
    unsafe {
        assert_eq!(libc::setgroups(0, std::ptr::null()), 0);
        assert_eq!(libc::setgid(65534), 0);
        assert_eq!(libc::setuid(65534), 0);
    }
    let id: i32 = std::env::var("SHMKIT_TEST_ID").unwrap().parse().unwrap();
    let seg = Segment::from_id(id).unwrap();
    let e = seg.attach().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    assert!(
        e.to_string()
            .contains("the mode bits do not give this user that access"),
        "{e}"
    );
    assert_eq!(seg.info().unwrap_err().kind(), ErrorKind::PermissionDenied);
    assert_eq!(seg.remove().unwrap_err().kind(), ErrorKind::NotPermitted);
}

fn c_peer() -> std::path::PathBuf {
    support::compile_c("sysv_peer", include_str!("c/sysv_peer.c"), &[])
}

#[test]
fn c_peer_meets_the_library_through_an_ftok_key() {
    let _lock = support::fork_lock();
    let peer = c_peer();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let file = dir.join(support::unique_name("ftok"));
    std::fs::write(&file, b"ftok anchor").unwrap();
    let _rm_file = Cleanup({
        let f = file.clone();
        move || {
            let _ = std::fs::remove_file(&f);
        }
    });
    // Another program may own the key this file gives: try a few projects.
    let (seg, proj, _g) = (1..=40)
        .find_map(|proj| {
            let key = Key::ftok(&file, proj).unwrap();
            Segment::create(key, 4096)
                .ok()
                .map(|s| (s, proj, SegGuard(s.id())))
        })
        .expect("a free ftok key");
    let a = seg.attach().unwrap();
    let child = std::process::Command::new(&peer)
        .args(["ftok", file.to_str().unwrap(), &proj.to_string(), "rust"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    a.write_at(8, b"from rust\0").unwrap();
    set_word(&a, 1);
    wait_word(&a, 2);
    assert_eq!(a.read_vec(64, 7).unwrap(), b"from c\0");
    let out = support::wait_output(child, DEADLINE, "sysv_peer ftok");
    support::assert_success(&out, "sysv_peer ftok");
}

#[test]
fn c_peer_creates_a_private_segment_the_library_opens_by_id() {
    let _lock = support::fork_lock();
    let peer = c_peer();
    let mut child = std::process::Command::new(&peer)
        .args(["private", "rust"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let id: i32 = line.trim().parse().expect("the peer prints the id");
    let _g = SegGuard(id);
    let seg = Segment::from_id(id).unwrap();
    assert!(seg.key().is_private());
    let a = seg.attach().unwrap();
    wait_word(&a, 1);
    assert_eq!(a.read_vec(8, 13).unwrap(), b"hello from c\0");
    a.write_at(64, b"reply from rust\0").unwrap();
    set_word(&a, 2);
    let out = support::wait_output(child, DEADLINE, "sysv_peer private");
    support::assert_success(&out, "sysv_peer private");
    // The peer removed it; our attachment keeps it alive until we drop it.
    assert!(seg.info().unwrap().dest);
}
