//! `shmkit::inspect` on objects these tests create (unique keys and names, removed by
//! guards): System V segments leaked by a child that exited, segments this process
//! attaches, POSIX objects with and without shmkit's header, unlinked-but-mapped
//! objects, memfds, and removal of objects that vanished in between. Other programs'
//! objects are listed but never touched.

use std::time::Duration;

use shmkit::header::{Header, MAGIC, READY};
use shmkit::inspect::{self, Kind, Object, Snapshot, Use};
use shmkit::posix::{Memfd, PosixShm, ShmName};
use shmkit::sys::ipcinfo::{self, SysvKind};
use shmkit::sysv::{Key, Segment};
use shmkit::ErrorKind;

use crate::support::{self, Cleanup, PosixGuard};

/// Asserts that a fresh listing no longer shows an object: `still` describes its users
/// if it does. A forked child of another test would inherit this process's mappings and
/// delay "the last detach"; callers hold the fork lock ([`support::fork_lock`]), so no
/// such child exists. A child another test starts with `Command` (not under the lock)
/// can still hold one for the moment between its fork and its exec, so the listing is
/// taken again until it is gone or ten seconds pass; the panic names who still uses it.
fn assert_gone(what: &str, still: impl Fn(&Snapshot) -> Option<String>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let Some(users) = still(&inspect::list()) else {
            return;
        };
        if std::time::Instant::now() > deadline {
            panic!("{what} is still listed, used by {users}");
        }
        std::thread::yield_now();
    }
}

fn sysv_shm(snap: &Snapshot, id: i32) -> Option<&Object> {
    snap.objects
        .iter()
        .find(|o| o.kind == Kind::SysvShm && o.id == Some(id))
}

fn posix(snap: &Snapshot, name: &str) -> Option<Object> {
    let slash = format!("/{name}");
    snap.objects
        .iter()
        .find(|o| o.kind == Kind::PosixShm && o.name.as_deref() == Some(slash.as_str()))
        .cloned()
}

/// Child: creates a segment with the key in SHMKIT_INSPECT_KEY and exits, leaking it.
#[test]
#[ignore]
fn child_leaks_segment() {
    if !support::is_child() {
        return;
    }
    let key: i32 = std::env::var("SHMKIT_INSPECT_KEY")
        .unwrap()
        .parse()
        .unwrap();
    ipcinfo::create(SysvKind::Shm, key, 4096, 0o600).expect("create");
}

#[test]
fn leaked_segment_is_orphaned_until_attached_and_removal_is_clean() {
    let _lock = support::fork_lock();
    let key = support::unique_key();
    let out = support::run_child(
        "inspect::child_leaks_segment",
        &[("SHMKIT_INSPECT_KEY", &key.to_string())],
        Duration::from_secs(30),
    );
    support::assert_success(&out, "child_leaks_segment");
    let seg = Segment::open(Key::new(key)).expect("the child's segment exists");
    let id = seg.id();
    let _guard = Cleanup(move || {
        let _ = ipcinfo::remove(SysvKind::Shm, id);
    });

    let snap = inspect::list();
    let o = sysv_shm(&snap, id).expect("listed");
    assert_eq!(o.key, Some(key));
    assert_eq!(o.size, 4096);
    assert_eq!(o.mode & 0o777, 0o600);
    assert_eq!(o.nattch, Some(0));
    assert_eq!(o.creator_alive, Some(false), "{o:?}");
    assert!(o.status.orphaned, "{o:?}");
    assert!(o.users.is_empty());

    // Attached by this process: it is in use, and the mapping is named.
    let att = seg.attach().expect("attach");
    let snap = inspect::list();
    let o = sysv_shm(&snap, id).expect("listed");
    assert!(!o.status.orphaned);
    assert!(o.nattch >= Some(1), "{o:?}");
    let me = std::process::id() as i32;
    let u = o
        .users
        .iter()
        .find(|u| u.pid == me)
        .expect("this process maps it");
    assert!(matches!(u.how, Use::Map { end, start, .. } if end - start >= 4096));
    assert!(u.since.is_some());

    // Removed while attached: dest; the listing says so.
    inspect::remove::remove(o, "/dev/shm").expect("IPC_RMID");
    let snap = inspect::list();
    let o2 = sysv_shm(&snap, id).expect("still listed while attached");
    assert!(o2.status.dest);
    assert_eq!(o2.key, Some(0));
    drop(att);
    assert_gone("the segment after its last detach", |s| {
        sysv_shm(s, id).map(|o| format!("{:?}", o.users))
    });
    // Removing it again: a clear "no longer exists", nothing else touched.
    let e = inspect::remove::remove(o, "/dev/shm").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("no longer exists"), "{e}");
}

fn header_bytes(creator_pid: u32) -> Vec<u8> {
    let h = Header {
        magic: MAGIC,
        kind: 16,
        layout_version: 1,
        header_size: 0,
        total_size: 4096,
        creator_pid,
        ready: READY,
        created_unix_ns: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
        reserved: [0; 3],
    };
    let mut v = bytemuck::bytes_of(&h).to_vec();
    v.resize(4096, 0);
    v
}

#[test]
fn posix_objects_shmkit_header_creator_and_unlinked_mapping() {
    let _lock = support::fork_lock();
    let mine = support::unique_name("insp_mine");
    let dead = support::unique_name("insp_dead");
    let plain = support::unique_name("insp_plain");
    let _g1 = PosixGuard(mine.clone());
    let _g2 = PosixGuard(dead.clone());
    let _g3 = PosixGuard(plain.clone());
    std::fs::write(format!("/dev/shm/{mine}"), header_bytes(std::process::id())).unwrap();
    // A creator pid that no longer exists: a child that has exited and been reaped.
    let mut c = std::process::Command::new("true")
        .spawn()
        .expect("spawn true");
    let dead_pid = c.id();
    c.wait().expect("wait");
    std::fs::write(format!("/dev/shm/{dead}"), header_bytes(dead_pid)).unwrap();
    std::fs::write(format!("/dev/shm/{plain}"), vec![7u8; 100]).unwrap();

    let snap = inspect::list();
    let m = posix(&snap, &mine).expect("listed");
    assert_eq!(m.status.shmkit.as_deref(), Some("lock"));
    assert_eq!(m.creator_pid, Some(std::process::id() as i32));
    assert_eq!(m.creator_alive, Some(true));
    assert!(!m.status.orphaned);
    let d = posix(&snap, &dead).expect("listed");
    assert_eq!(d.creator_alive, Some(false));
    assert!(d.status.orphaned);
    let p = posix(&snap, &plain).expect("listed");
    assert_eq!(p.status.shmkit, None);
    assert_eq!(p.size, 100);
    assert!(p.status.orphaned, "unused, no recorded creator");

    // Mapped by this process, then unlinked: listed as unlinked with this user.
    let name = ShmName::new(&plain).unwrap();
    let shm = PosixShm::open(&name, shmkit::posix::Access::ReadWrite).expect("open");
    let map = shm.map().expect("map");
    drop(shm);
    let snap = inspect::list();
    let p = posix(&snap, &plain).expect("listed");
    assert!(!p.status.orphaned);
    assert!(p.users.iter().any(|u| u.pid == std::process::id() as i32));
    inspect::remove::remove(&p, "/dev/shm").expect("unlink");
    let snap = inspect::list();
    let u = posix(&snap, &plain).expect("still listed while mapped");
    assert!(u.status.unlinked, "{u:?}");
    assert_eq!(u.size, 100);
    let e = inspect::remove::remove(&u, "/dev/shm").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    drop(map);
    assert_gone("the unlinked object after its last unmap", |s| {
        posix(s, &plain).map(|o| format!("{:?}", o.users))
    });
}

#[test]
fn memfds_are_listed_with_their_holder() {
    let tag = support::unique_name("insp_memfd");
    let m = Memfd::create(&tag, 12288).expect("memfd");
    let snap = inspect::list();
    let o = snap
        .objects
        .iter()
        .find(|o| o.kind == Kind::Memfd && o.name.as_deref().is_some_and(|n| n.starts_with(&tag)))
        .expect("memfd listed");
    assert_eq!(o.size, 12288);
    let me = std::process::id() as i32;
    assert!(o
        .users
        .iter()
        .any(|u| u.pid == me && matches!(u.how, Use::Fd(_))));
    let e = inspect::remove::remove(o, "/dev/shm").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    drop(m);
}

#[test]
fn limits_and_usage_are_read() {
    let l = inspect::limits::read();
    assert!(l.shmmni.is_some_and(|v| v > 0), "{l:?}");
    assert!(l.semmsl.is_some(), "{l:?}");
    assert!(l.msgmax.is_some(), "{l:?}");
    assert!(l.shm_usage.is_some() && l.sem_usage.is_some() && l.msg_usage.is_some());
    assert!(l.dev_shm.is_some_and(|(total, _, _)| total > 0));
    assert_eq!(l.page_size, shmkit::sys::page_size() as u64);
}

#[test]
fn sysv_semaphores_and_queues_are_listed_and_removed() {
    let skey = support::unique_key();
    let qkey = support::unique_key();
    let sid = ipcinfo::create(SysvKind::Sem, skey, 3, 0o600).expect("semget");
    let _g1 = Cleanup(move || {
        let _ = ipcinfo::remove(SysvKind::Sem, sid);
    });
    let qid = ipcinfo::create(SysvKind::Msg, qkey, 0, 0o600).expect("msgget");
    let _g2 = Cleanup(move || {
        let _ = ipcinfo::remove(SysvKind::Msg, qid);
    });
    let snap = inspect::list();
    let s = snap
        .objects
        .iter()
        .find(|o| o.kind == Kind::SysvSem && o.id == Some(sid))
        .expect("sem listed");
    assert_eq!(s.size, 3);
    assert_eq!(s.key, Some(skey));
    assert!(s.status.orphaned, "never operated on: no live pid recorded");
    let q = snap
        .objects
        .iter()
        .find(|o| o.kind == Kind::SysvMsg && o.id == Some(qid))
        .expect("queue listed");
    assert_eq!(q.messages, Some(0));
    assert_eq!(ipcinfo::msg_qbytes(qid).ok().map(|b| b > 0), Some(true));
    assert_eq!(ipcinfo::sem_values(sid, 3).expect("values").len(), 3);
    inspect::remove::remove(s, "/dev/shm").expect("remove sem");
    inspect::remove::remove(q, "/dev/shm").expect("remove msg");
    assert_eq!(
        inspect::remove::remove(s, "/dev/shm").unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn shmkit_header_in_a_mapped_sysv_segment_is_recognised_without_attaching() {
    use shmkit::Region;
    let key = support::unique_key();
    let seg = Segment::create(Key::new(key), 4096).expect("create");
    let id = seg.id();
    let _guard = Cleanup(move || {
        let _ = ipcinfo::remove(SysvKind::Shm, id);
    });
    let att = seg.attach().expect("attach");
    att.write_at(0, &header_bytes(std::process::id())[..64])
        .expect("write header");
    let snap = inspect::list();
    let o = sysv_shm(&snap, id).expect("listed");
    // Reading /proc/PID/map_files needs CAP_SYS_ADMIN; without it the kind is unknown.
    if rustix::process::geteuid().is_root() {
        assert_eq!(o.status.shmkit.as_deref(), Some("lock"), "{o:?}");
    } else {
        eprintln!("not root: shmkit detection through map_files not checked");
    }
    drop(att);
}

#[test]
fn removal_leaves_an_object_that_took_the_listed_id() {
    // A listing is old by the time an operator confirms a bulk removal: the listed
    // segment may be gone and its id reused. Simulate it with the listing of this
    // segment altered to another creator, then another key: neither is removed.
    let seg = Segment::create(Key::new(support::unique_key()), 4096).expect("create");
    let id = seg.id();
    let _guard = Cleanup(move || {
        let _ = ipcinfo::remove(SysvKind::Shm, id);
    });
    let snap = inspect::list();
    let listed = sysv_shm(&snap, id).expect("listed").clone();
    let mut other_creator = listed.clone();
    other_creator.creator_pid = Some(listed.creator_pid.unwrap_or(1) + 1);
    let mut other_key = listed.clone();
    other_key.key = Some(listed.key.unwrap_or(0) ^ 1);
    for o in [&other_creator, &other_key] {
        let e = inspect::remove::remove(o, "/dev/shm").unwrap_err();
        assert!(e.to_string().contains("another object has this id"), "{e}");
        assert!(seg.info().is_ok(), "not removed");
    }
    inspect::remove::remove(&listed, "/dev/shm").expect("the listed object goes");
    assert_eq!(seg.info().unwrap_err().kind(), ErrorKind::NotFound);
}
