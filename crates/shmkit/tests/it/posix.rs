//! POSIX objects and memfds across processes: C programs and Python's
//! `multiprocessing.shared_memory` on the other end in both directions, memfd seals and
//! descriptor passing, resizing, and bad input (names, missing objects, a symlink at
//! the name, a full /dev/shm).

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use shmkit::posix::{Access, CreateOptions, Memfd, PosixShm, Seals, ShmInfo, ShmName};
use shmkit::{ErrorKind, Region, RegionExt};

use crate::support::{self, assert_success, unique_name, PosixGuard};

const DEADLINE: Duration = Duration::from_secs(60);

/// A C peer using nothing but shm_open, ftruncate, mmap and munmap; its commands are
/// listed at the top of the file (also used by the CLI's tests).
const C_PEER: &str = include_str!("c/posix_peer.c");

/// The Python peer: the same commands through `multiprocessing.shared_memory`, run
/// with `python3 -c` (also used by the CLI's tests).
pub const PY_PEER: &str = include_str!("py/posix_peer.py");

fn c_peer() -> PathBuf {
    support::compile_c("posix_peer", C_PEER, &["-lrt"])
}

/// python3 with a working `multiprocessing.shared_memory`, or `None` (with the reason
/// printed) to skip.
pub fn python() -> Option<&'static str> {
    match Command::new("python3")
        .args(["-c", "import multiprocessing.shared_memory"])
        .output()
    {
        Ok(o) if o.status.success() => Some("python3"),
        Ok(o) => {
            eprintln!(
                "skipped: python3 lacks multiprocessing.shared_memory: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            None
        }
        Err(e) => {
            eprintln!("skipped: python3 is not available: {e}");
            None
        }
    }
}

fn run(cmd: &mut Command, what: &str) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    support::wait_output(child, DEADLINE, what)
}

fn name_of(tag: &str) -> (ShmName, PosixGuard) {
    let n = unique_name(tag);
    (ShmName::new(&n).unwrap(), PosixGuard(n))
}

#[test]
fn c_creates_rust_reads_and_answers() {
    let peer = c_peer();
    let (name, _guard) = name_of("c2rust");
    let out = run(
        Command::new(&peer).args(["create", &name.with_slash(), "hello from C"]),
        "C peer create",
    );
    assert_success(&out, "C peer create");

    let shm = PosixShm::open(&name, Access::ReadWrite).unwrap();
    assert_eq!(shm.info().unwrap().size, 4096);
    assert_eq!(shm.info().unwrap().mode, 0o600);
    let map = shm.map().unwrap();
    assert_eq!(map.read_vec(0, 12).unwrap(), b"hello from C");
    map.write_at(0, b"rust says hi\0").unwrap();

    let out = run(
        Command::new(&peer).args(["read", &name.with_slash(), "64"]),
        "C peer read",
    );
    assert_success(&out, "C peer read");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "rust says hi");
}

#[test]
fn rust_creates_c_reads_and_answers() {
    let peer = c_peer();
    let (name, _guard) = name_of("rust2c");
    let shm = PosixShm::create(&name, 4096).unwrap();
    let owner = shm.unlink_on_drop().unwrap();
    let map = shm.map().unwrap();
    map.write_at(0, b"made by rust\0").unwrap();

    let out = run(
        Command::new(&peer).args(["read", &name.with_slash(), "100"]),
        "C peer read",
    );
    assert_success(&out, "C peer read");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "made by rust");

    let out = run(
        Command::new(&peer).args(["write", &name.with_slash(), "C wrote"]),
        "C peer write",
    );
    assert_success(&out, "C peer write");
    assert_eq!(map.read_vec(0, 7).unwrap(), b"C wrote");

    owner.unlink_now().unwrap();
    assert_eq!(ShmInfo::of(&name).unwrap_err().kind(), ErrorKind::NotFound);
    // The mapping outlives the name.
    assert_eq!(map.read_vec(0, 7).unwrap(), b"C wrote");
}

#[test]
fn python_creates_rust_reads_and_answers() {
    let Some(py) = python() else { return };
    let (name, _guard) = name_of("py2rust");
    let out = run(
        Command::new(py).args(["-c", PY_PEER, "create", name.bare(), "hello from python"]),
        "python create",
    );
    assert_success(&out, "python create");
    // The resource tracker did not unlink it behind our back.
    let shm = PosixShm::open(&name, Access::ReadWrite).unwrap();
    let map = shm.map().unwrap();
    assert_eq!(map.read_vec(0, 17).unwrap(), b"hello from python");
    map.write_at(0, b"rust answers\0").unwrap();

    let out = run(
        Command::new(py).args(["-c", PY_PEER, "read", name.bare(), "64"]),
        "python read",
    );
    assert_success(&out, "python read");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "rust answers");
    assert!(
        ShmInfo::of(&name).is_ok(),
        "python's exit removed the object"
    );
}

#[test]
fn rust_creates_python_reads_and_answers() {
    let Some(py) = python() else { return };
    let (name, _guard) = name_of("rust2py");
    let shm = PosixShm::create(&name, 4096).unwrap();
    let _owner = shm.unlink_on_drop().unwrap();
    let map = shm.map().unwrap();
    map.write_at(0, b"rust to python\0").unwrap();

    let out = run(
        Command::new(py).args(["-c", PY_PEER, "read", name.bare(), "64"]),
        "python read",
    );
    assert_success(&out, "python read");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "rust to python");

    let out = run(
        Command::new(py).args(["-c", PY_PEER, "write", name.bare(), "python to rust"]),
        "python write",
    );
    assert_success(&out, "python write");
    assert_eq!(map.read_vec(0, 14).unwrap(), b"python to rust");
    assert!(
        ShmInfo::of(&name).is_ok(),
        "python's exit removed the object"
    );
}

#[test]
fn create_applies_exact_mode_and_options() {
    let (name, _guard) = name_of("mode");
    // 0666 would come out as 0644 under the usual umask without the fchmod.
    let opts = CreateOptions::new().mode(0o666);
    let shm = PosixShm::create_with(&name, 1000, &opts).unwrap();
    assert!(shm.created());
    let info = shm.info().unwrap();
    assert_eq!(info.mode, 0o666);
    assert_eq!(info.size, 1000);
    assert_eq!(info.uid, rustix::process::geteuid().as_raw());
    assert_eq!(ShmInfo::of(&name).unwrap().inode, info.inode);

    // Exclusive creation of an existing name fails and leaves the object alone.
    let e = PosixShm::create(&name, 10).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    assert!(e.to_string().contains(&name.to_string()), "{e}");
    assert_eq!(shm.size().unwrap(), 1000);

    // Open-or-create opens it, keeps its mode, and grows it to the asked size.
    let opts2 = CreateOptions::new().mode(0o600).exclusive(false);
    let again = PosixShm::create_with(&name, 5000, &opts2).unwrap();
    assert!(!again.created());
    assert_eq!(again.info().unwrap().mode, 0o666);
    assert_eq!(shm.size().unwrap(), 5000);

    shm.chmod(0o640).unwrap();
    assert_eq!(ShmInfo::of(&name).unwrap().mode, 0o640);
    let me = rustix::process::geteuid().as_raw();
    shm.chown(Some(me), None).unwrap();
}

#[test]
fn read_only_open_refuses_writes() {
    let (name, _guard) = name_of("ro");
    let shm = PosixShm::create(&name, 4096).unwrap();
    shm.map().unwrap().write_at(0, b"abc").unwrap();
    let ro = PosixShm::open(&name, Access::ReadOnly).unwrap();
    assert!(!ro.is_writable());
    let map = ro.map().unwrap();
    assert!(!map.is_writable());
    assert_eq!(map.read_vec(0, 3).unwrap(), b"abc");
    assert_eq!(
        map.write_at(0, b"x").unwrap_err().kind(),
        ErrorKind::ReadOnly
    );
    assert_eq!(
        shm.map_read_only()
            .unwrap()
            .write(0, &1u32)
            .unwrap_err()
            .kind(),
        ErrorKind::ReadOnly
    );
    // Resizing needs write access.
    assert!(ro.resize(8192).is_err());
}

#[test]
fn dropping_handles_never_unlinks_but_the_owner_guard_does() {
    let (name, _guard) = name_of("owner");
    {
        let shm = PosixShm::create(&name, 4096).unwrap();
        let _map = shm.map().unwrap();
        let other = PosixShm::open(&name, Access::ReadWrite).unwrap();
        let _map2 = other.map().unwrap();
    }
    assert!(ShmInfo::of(&name).is_ok(), "a drop removed the object");

    let shm = PosixShm::open(&name, Access::ReadWrite).unwrap();
    let owner = shm.unlink_on_drop().unwrap();
    assert_eq!(owner.name(), Some(&name));
    drop(owner);
    assert_eq!(ShmInfo::of(&name).unwrap_err().kind(), ErrorKind::NotFound);

    // The guard leaves a newer object under the same name alone.
    let old = PosixShm::create(&name, 10).unwrap();
    let owner = old.unlink_on_drop().unwrap();
    PosixShm::unlink(&name).unwrap();
    let newer = PosixShm::create(&name, 20).unwrap();
    drop(owner);
    assert_eq!(
        ShmInfo::of(&name).unwrap().inode,
        newer.info().unwrap().inode
    );

    // A disarmed guard leaves the object.
    let owner = newer.unlink_on_drop().unwrap();
    assert_eq!(owner.disarm(), Some(name.clone()));
    assert!(ShmInfo::of(&name).is_ok());
}

#[test]
fn resize_semantics_for_existing_mappings() {
    let page = shmkit::sys::page_size();
    let (name, _guard) = name_of("resize");
    let shm = PosixShm::create(&name, 2 * page as u64).unwrap();
    let old = shm.map().unwrap();
    old.write_at(page, b"second").unwrap();

    // Growth: the old mapping keeps its length; a new one sees the new bytes.
    shm.resize(4 * page as u64).unwrap();
    assert_eq!(old.len(), 2 * page);
    assert_eq!(
        old.read_vec(2 * page, 1).unwrap_err().kind(),
        ErrorKind::OutOfBounds
    );
    let new = shm.map().unwrap();
    assert_eq!(new.len(), 4 * page);
    new.write_at(3 * page, b"fourth").unwrap();
    assert_eq!(new.read_vec(page, 6).unwrap(), b"second");

    // Shrinking: bytes past the new end are refused, not faulted on, in both mappings.
    shm.resize(page as u64).unwrap();
    for m in [&old, &new] {
        let e = m.read_vec(page, 6).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::OutOfBounds);
        assert!(e.to_string().contains("shrank"), "{e}");
        assert_eq!(
            m.write_at(page, b"x").unwrap_err().kind(),
            ErrorKind::OutOfBounds
        );
        assert_eq!(
            m.atomic_u32(page).unwrap_err().kind(),
            ErrorKind::OutOfBounds
        );
        m.write_at(0, b"first").unwrap();
    }
    // Growing back gives zeroed pages: the old contents are gone.
    shm.resize(2 * page as u64).unwrap();
    assert_eq!(old.read_vec(page, 6).unwrap(), [0u8; 6]);
    assert_eq!(old.read_vec(0, 5).unwrap(), b"first");
}

#[test]
fn shrink_by_another_process_is_an_error_not_sigbus() {
    let peer = c_peer();
    let page = shmkit::sys::page_size();
    let (name, _guard) = name_of("shrink");
    let shm = PosixShm::create(&name, 4 * page as u64).unwrap();
    let map = shm.map().unwrap();
    let window = shm.map_window(2 * page as u64, page).unwrap();
    map.fill(0, 4 * page, 0xab).unwrap();

    let out = run(
        Command::new(&peer).args(["truncate", &name.with_slash(), "100"]),
        "C peer truncate",
    );
    assert_success(&out, "C peer truncate");

    assert_eq!(map.read_vec(0, 100).unwrap(), vec![0xab; 100]);
    let e = map.read_vec(0, 101).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OutOfBounds);
    assert!(e.to_string().contains("current size 100"), "{e}");
    assert_eq!(
        map.read::<u64>(3 * page).unwrap_err().kind(),
        ErrorKind::OutOfBounds
    );
    let e = window.read_vec(0, 1).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OutOfBounds);
}

#[test]
fn map_window_checks_offset_and_bounds() {
    let page = shmkit::sys::page_size();
    let (name, _guard) = name_of("window");
    let shm = PosixShm::create(&name, 3 * page as u64).unwrap();
    let w = shm.map_window(page as u64, page).unwrap();
    assert_eq!(w.offset(), page as u64);
    w.write_at(0, b"middle").unwrap();
    assert_eq!(shm.map().unwrap().read_vec(page, 6).unwrap(), b"middle");
    assert_eq!(
        shm.map_window(1, 10).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        shm.map_window(2 * page as u64, page + 1)
            .unwrap_err()
            .kind(),
        ErrorKind::OutOfBounds
    );
    assert_eq!(
        shm.map_window(u64::MAX, 10).unwrap_err().kind(),
        ErrorKind::OutOfBounds
    );
    // An empty object cannot be mapped, with a reason.
    let (empty, _g2) = name_of("empty");
    let e = PosixShm::create(&empty, 0).unwrap().map().unwrap_err();
    assert!(e.to_string().contains("empty"), "{e}");
}

#[test]
fn bad_names_and_missing_objects_give_clear_errors() {
    for (bad, why) in [
        ("/a/b", "no '/'"),
        ("", "empty"),
        ("/", "empty"),
        ("/x\0y", "NUL"),
    ] {
        let e = ShmName::new(bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains(why), "{bad:?}: {e}");
    }
    let long = format!("/{}", "n".repeat(256));
    let e = ShmName::new(&long).unwrap_err();
    assert!(e.to_string().contains("limit is 255"), "{e}");

    let (name, _guard) = name_of("missing");
    let e = PosixShm::open(&name, Access::ReadOnly).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(
        e.to_string(),
        format!(
            "shm_open on {name} failed: No such file or directory (os error 2) \
             (no object has this name)"
        )
    );
    assert_eq!(
        PosixShm::unlink(&name).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn symlink_at_the_name_is_not_followed() {
    let (name, _guard) = name_of("symlink");
    let dir = tempdir();
    let target = dir.join("victim");
    std::fs::write(&target, b"precious").unwrap();
    std::os::unix::fs::symlink(&target, name.path()).unwrap();

    for access in [Access::ReadOnly, Access::ReadWrite] {
        let e = PosixShm::open(&name, access).unwrap_err();
        assert_eq!(e.errno(), Some(libc::ELOOP), "{e}");
        assert!(e.to_string().contains("symbolic link"), "{e}");
    }
    let opts = CreateOptions::new().exclusive(false);
    let e = PosixShm::create_with(&name, 4096, &opts).unwrap_err();
    assert_eq!(e.errno(), Some(libc::ELOOP), "{e}");
    let e = PosixShm::create(&name, 4096).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    let e = ShmInfo::of(&name).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");

    assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    let meta = std::fs::metadata(&target).unwrap();
    assert_eq!(meta.len(), 8);
    assert!(std::fs::symlink_metadata(name.path())
        .unwrap()
        .file_type()
        .is_symlink());
    std::fs::remove_dir_all(&dir).unwrap();
}

fn tempdir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(unique_name("dir"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---- memfd -----------------------------------------------------------------------

/// Starts the ignored child test `name` with one end of a socket pair as its stdin.
fn spawn_with_socket(name: &str, env: &[(&str, &str)]) -> (std::process::Child, UnixStream) {
    let (mine, theirs) = UnixStream::pair().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(support::CHILD_ENV, "1")
    .stdin(Stdio::from(OwnedFd::from(theirs)))
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    (cmd.spawn().unwrap(), mine)
}

/// The socket a parent passed as stdin.
fn stdin_socket() -> UnixStream {
    let fd = std::io::stdin().as_fd().try_clone_to_owned().unwrap();
    UnixStream::from(fd)
}

#[test]
fn memfd_passed_over_socket_maps_the_same_bytes() {
    let m = Memfd::create("shmkit-test-pass", 4096).unwrap();
    let map = m.map().unwrap();
    map.write_at(0, b"parent wrote this").unwrap();
    let (child, sock) = spawn_with_socket("posix::memfd_pass_child", &[]);
    m.send(&sock).unwrap();
    // The child answers with one byte once it has written its reply.
    let mut ack = [0u8; 1];
    let mut s = &sock;
    sock.set_read_timeout(Some(DEADLINE)).unwrap();
    let got = s.read(&mut ack);
    let out = support::wait_output(child, DEADLINE, "memfd child");
    assert_success(&out, "memfd child");
    assert_eq!(got.unwrap(), 1);
    assert_eq!(map.read_vec(100, 16).unwrap(), b"child wrote this");
}

#[test]
#[ignore = "child of memfd_passed_over_socket_maps_the_same_bytes"]
fn memfd_pass_child() {
    if !support::is_child() {
        return;
    }
    use std::io::Write;
    let sock = stdin_socket();
    let m = Memfd::recv(&sock).unwrap();
    assert_eq!(m.name(), "memfd:shmkit-test-pass");
    let map = m.map().unwrap();
    assert!(map.is_writable());
    assert_eq!(map.read_vec(0, 17).unwrap(), b"parent wrote this");
    map.write_at(100, b"child wrote this").unwrap();
    (&sock).write_all(b"k").unwrap();
}

#[test]
fn memfd_seals_are_enforced_in_the_receiver() {
    let m = Memfd::create("shmkit-test-seals", 8192).unwrap();
    {
        let map = m.map().unwrap();
        map.write_at(0, b"sealed contents").unwrap();
        // A writable mapping blocks the write seal.
        let e = m.add_seals(Seals::WRITE).unwrap_err();
        assert_eq!(e.errno(), Some(libc::EBUSY), "{e}");
        assert!(e.to_string().contains("writable mapping"), "{e}");
    }
    m.add_seals(Seals::WRITE | Seals::SHRINK | Seals::GROW | Seals::SEAL)
        .unwrap();
    let seals = m.seals().unwrap();
    assert!(seals.contains(Seals::WRITE | Seals::SHRINK | Seals::GROW | Seals::SEAL));
    assert_eq!(
        m.add_seals(Seals::FUTURE_WRITE).unwrap_err().errno(),
        Some(libc::EPERM)
    );

    let (child, sock) = spawn_with_socket("posix::memfd_seals_child", &[]);
    m.send(&sock).unwrap();
    let out = support::wait_output(child, DEADLINE, "memfd seals child");
    assert_success(&out, "memfd seals child");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("seals held"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Nothing changed.
    assert_eq!(m.size().unwrap(), 8192);
    assert_eq!(
        m.map().unwrap().read_vec(0, 15).unwrap(),
        b"sealed contents"
    );
}

#[test]
#[ignore = "child of memfd_seals_are_enforced_in_the_receiver"]
fn memfd_seals_child() {
    if !support::is_child() {
        return;
    }
    let sock = stdin_socket();
    let m = Memfd::recv(&sock).unwrap();
    let seals = m.seals().unwrap();
    assert!(seals.contains(Seals::WRITE | Seals::SHRINK | Seals::GROW | Seals::SEAL));
    // map() falls back to read-only; the library refuses writes.
    let map = m.map().unwrap();
    assert!(!map.is_writable());
    assert_eq!(map.read_vec(0, 15).unwrap(), b"sealed contents");
    assert_eq!(
        map.write_at(0, b"x").unwrap_err().kind(),
        ErrorKind::ReadOnly
    );
    // The kernel refuses a writable shared mapping, resizing both ways, new seals.
    // SAFETY: a fresh mapping at a kernel-chosen address; it is unmapped if it succeeds.
    let r = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            8192,
            rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
            rustix::mm::MapFlags::SHARED,
            m.as_fd(),
            0,
        )
    };
    assert_eq!(r.err(), Some(rustix::io::Errno::PERM));
    let e = m.resize(4096).unwrap_err();
    assert_eq!(e.errno(), Some(libc::EPERM), "{e}");
    assert!(e.to_string().contains("sealed"), "{e}");
    assert_eq!(m.resize(16384).unwrap_err().errno(), Some(libc::EPERM));
    assert_eq!(
        m.add_seals(Seals::FUTURE_WRITE).unwrap_err().errno(),
        Some(libc::EPERM)
    );
    // write(2) is refused too.
    let e = rustix::io::pwrite(m.as_fd(), b"x", 0).unwrap_err();
    assert_eq!(e, rustix::io::Errno::PERM);
    println!("seals held");
}

#[test]
fn memfd_future_write_lets_the_creator_write_and_receivers_only_read() {
    let m = Memfd::create("shmkit-test-future", 4096).unwrap();
    let writer = m.map().unwrap();
    m.add_seals(Seals::FUTURE_WRITE | Seals::SHRINK).unwrap();
    writer.write_at(0, b"still writable").unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    m.send(&a).unwrap();
    let got = Memfd::recv(&b).unwrap();
    let reader = got.map().unwrap();
    assert!(!reader.is_writable());
    assert_eq!(reader.read_vec(0, 14).unwrap(), b"still writable");
    writer.write_at(0, b"STILL").unwrap();
    assert_eq!(reader.read_vec(0, 5).unwrap(), b"STILL");
}

#[test]
fn recv_fd_reports_a_closed_peer_and_a_missing_descriptor() {
    let (a, b) = UnixStream::pair().unwrap();
    {
        use std::io::Write;
        (&a).write_all(b"no fd").unwrap();
    }
    let e = Memfd::recv(&b).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("no descriptor"), "{e}");
    drop(a);
    let e = Memfd::recv(&b).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("closed"), "{e}");

    // A descriptor that is not a memfd is refused.
    let (a, b) = UnixStream::pair().unwrap();
    let f = std::fs::File::open("/dev/null").unwrap();
    shmkit::posix::send_fd(&a, f.as_fd(), b"").unwrap();
    let e = Memfd::recv(&b).unwrap_err();
    assert!(e.to_string().contains("not a memfd"), "{e}");
}

// ---- a full /dev/shm ---------------------------------------------------------------

#[test]
fn full_dev_shm_gives_enospc_and_leaves_nothing_behind() {
    // A child in a private mount namespace with a 64 KiB tmpfs over /dev/shm.
    let exe = std::env::current_exe().unwrap();
    let script = r#"mount -t tmpfs -o size=64k shmkit-test /dev/shm && exec "$0" posix::full_dev_shm_child --exact --ignored --nocapture --test-threads=1"#;
    let mut attempts: Vec<Vec<&str>> = Vec::new();
    if rustix::process::geteuid().is_root() {
        attempts.push(vec!["--mount", "--propagation", "private"]);
    }
    attempts.push(vec!["--user", "--map-root-user", "--mount"]);
    let mut reasons = Vec::new();
    for args in attempts {
        let out = run(
            Command::new("unshare")
                .args(&args)
                .args(["sh", "-c", script])
                .arg(&exe)
                .env(support::CHILD_ENV, "1"),
            "unshare child",
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        if out.status.success() && stdout.contains("full-shm checks passed") {
            return;
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stdout.contains("running 1 test") {
            // The child ran and failed: that is a real failure.
            panic!("full /dev/shm child failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
        }
        reasons.push(format!("unshare {}: {}", args.join(" "), stderr.trim()));
    }
    eprintln!(
        "skipped: cannot mount a private tmpfs over /dev/shm: {}",
        reasons.join("; ")
    );
}

#[test]
#[ignore = "child of full_dev_shm_gives_enospc_and_leaves_nothing_behind"]
fn full_dev_shm_child() {
    if !support::is_child() {
        return;
    }
    let name = ShmName::new("shmkit_test_full").unwrap();
    let e = PosixShm::create(&name, 1 << 20).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoSpace, "{e}");
    assert!(e.to_string().contains("/shmkit_test_full"), "{e}");
    assert!(e.to_string().contains("is full"), "{e}");
    assert_eq!(ShmInfo::of(&name).unwrap_err().kind(), ErrorKind::NotFound);

    // A small object fits; growing it past the limit fails the same way and leaves it.
    let shm = PosixShm::create(&name, 4096).unwrap();
    let e = shm.resize(1 << 20).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoSpace, "{e}");
    assert!(shm.size().unwrap() <= 64 * 1024);
    PosixShm::unlink(&name).unwrap();
    assert_eq!(std::fs::read_dir("/dev/shm").unwrap().count(), 0);
    println!("full-shm checks passed");
}

// ---- what the size check protects against -----------------------------------------

#[test]
fn raw_access_past_a_shrunk_end_dies_of_sigbus_where_the_safe_api_errs() {
    let page = shmkit::sys::page_size();
    let (name, _guard) = name_of("sigbus");
    let shm = PosixShm::create(&name, 2 * page as u64).unwrap();
    let map = shm.map().unwrap();
    shm.resize(page as u64).unwrap();
    assert_eq!(
        map.read_vec(page, 1).unwrap_err().kind(),
        ErrorKind::OutOfBounds
    );

    // The raw pointer is not covered: a forked child touching the lost page is killed.
    let p = map.as_ptr() as usize + page;
    let lock = support::fork_lock();
    let status = support::fork_child(&lock, || {
        // SAFETY: p is inside the child's copy of the mapping (the page past the end of
        // the object); reading it faults, which is what this test shows. A volatile read
        // is async-signal-safe.
        unsafe { std::ptr::read_volatile(p as *const u8) };
        0
    });
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGBUS,
        "expected SIGBUS, got status {status:#x}"
    );
}

#[test]
fn memfd_names_sizes_and_shrink_checks() {
    let e = Memfd::create(&"m".repeat(250), 1).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("limit is 249"), "{e}");
    assert_eq!(
        Memfd::create("a\0b", 1).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );

    let page = shmkit::sys::page_size();
    let m = Memfd::create("shmkit-test-shrink", 2 * page as u64).unwrap();
    assert_eq!(m.size().unwrap(), 2 * page as u64);
    assert_eq!(m.seals().unwrap(), Seals::NONE);
    let map = m.map().unwrap();
    map.write_at(page, b"x").unwrap();
    m.resize(page as u64).unwrap();
    let e = map.read_vec(page, 1).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OutOfBounds);
    assert!(
        e.to_string()
            .starts_with("read on memfd:shmkit-test-shrink failed"),
        "{e}"
    );
    let w = m.map_window(0, 10).unwrap();
    assert_eq!(w.len(), 10);
    assert_eq!(
        m.map_window(0, page + 1).unwrap_err().kind(),
        ErrorKind::OutOfBounds
    );
}

/// This process's resident kilobytes of the mapping that starts at `addr` (the "Rss"
/// line of its /proc/self/smaps entry): pages present in its page tables.
fn rss_kib(addr: usize) -> u64 {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let head = format!("{addr:x}-");
    let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&head));
    assert!(lines.next().is_some(), "no mapping at {addr:x}");
    let rss = lines.find(|l| l.starts_with("Rss:")).unwrap();
    rss.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn prefault_maps_every_page_and_keeps_the_contents() {
    const SIZE: u64 = 1 << 20;
    let (name, _g) = name_of("prefault");
    let shm = PosixShm::create_with(&name, SIZE, &CreateOptions::new()).unwrap();
    let writer = shm.map().unwrap();
    writer.write_at(4096 * 7, b"seventh page").unwrap();
    let map = shm.map().unwrap();
    let ro = shm.map_read_only().unwrap();
    for m in [&map, &ro] {
        // Only what was touched is mapped yet (the first page, by nobody: none).
        assert!(rss_kib(m.as_ptr() as usize) < SIZE / 1024);
        m.prefault().unwrap();
        assert_eq!(rss_kib(m.as_ptr() as usize), SIZE / 1024);
        let mut buf = [0u8; 12];
        m.read_at(4096 * 7, &mut buf).unwrap();
        assert_eq!(&buf, b"seventh page");
    }
    // Pages past a shrunk object's end are an error, not SIGBUS.
    let fresh = shm.map().unwrap();
    shm.resize(4096).unwrap();
    let e = fresh.prefault().unwrap_err();
    assert!(e.to_string().contains("MADV_POPULATE"), "{e}");
}
