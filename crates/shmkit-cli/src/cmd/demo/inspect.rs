//! The "inspect" section of the tour: what `shmkit ls` sees. The tour creates a System V
//! segment and a POSIX object, the peer maps both, and the tour lists them with
//! `shmkit::inspect`: who maps them, at which addresses, whether the creator lives,
//! and the status; then it removes both through the same layer.
//!
//! The segment's first u32 is a futex word: 1 once the peer has mapped everything,
//! 2 when the tour has looked and the peer may leave.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use shmkit::inspect::{self, Kind, Object, Use};
use shmkit::posix::{Access, PosixShm, ShmName};
use shmkit::sysv::{Key, Segment};
use shmkit::Region;

use super::{peer_say, publish, wait_word, Tour};

const SIZE: usize = 4096;
const MAPPED: u32 = 1;
const BYE: u32 = 2;
const DEADLINE: Duration = Duration::from_secs(10);

fn describe(t: &Tour, o: &Object) {
    let mut users: Vec<String> = Vec::new();
    for u in &o.users {
        let how = match &u.how {
            Use::Map { start, end, .. } => format!("maps {start:#x}-{end:#x}"),
            Use::Fd(fd) => format!("holds fd {fd}"),
        };
        users.push(format!("pid {} ({}) {how}", u.pid, u.comm));
    }
    t.say(format!(
        "  {} ({}): {} bytes, nattch {}, creator {}, status {}; users: {}",
        o.label(),
        o.kind.name(),
        o.size,
        o.nattch
            .map(|n| n.to_string())
            .unwrap_or_else(|| "-".into()),
        match (o.creator_pid, o.creator_alive) {
            (Some(p), Some(true)) => format!("{p} (alive)"),
            (Some(p), Some(false)) => format!("{p} (gone)"),
            _ => "unknown".into(),
        },
        crate::inventory::status_words(o),
        if users.is_empty() {
            "none".into()
        } else {
            users.join("; ")
        }
    ));
}

fn find(snap: &inspect::Snapshot, id: i32, name: &str) -> (Option<Object>, Option<Object>) {
    let seg = snap
        .objects
        .iter()
        .find(|o| o.kind == Kind::SysvShm && o.id == Some(id))
        .cloned();
    let slash = format!("/{name}");
    let obj = snap
        .objects
        .iter()
        .find(|o| o.kind == Kind::PosixShm && o.name.as_deref() == Some(slash.as_str()))
        .cloned();
    (seg, obj)
}

/// The leading process.
pub fn tour(t: &Tour) -> Result<()> {
    let seg = Segment::create(Key::PRIVATE, SIZE)?;
    let id = seg.id();
    t.on_cleanup(format!("System V segment id {id}"), move || {
        if let Ok(s) = Segment::from_id(id) {
            let _ = s.remove();
        }
    });
    let bare = format!("shmkit_demo_{}_inspect", std::process::id());
    let name = ShmName::new(&bare)?;
    let obj = PosixShm::create(&name, SIZE as u64)?;
    let cleanup_name = name.clone();
    t.on_cleanup(format!("POSIX object {}", name.with_slash()), move || {
        let _ = PosixShm::unlink(&cleanup_name);
    });
    t.say(format!(
        "created System V segment id {id} and POSIX object {}; the peer maps both",
        name.with_slash()
    ));
    let att = seg.attach()?;
    let word = att.atomic_u32(0)?;
    let peer = t.spawn_peer("inspect", &[id.to_string(), bare.clone()])?;
    wait_word(word, MAPPED, DEADLINE, "the peer's mappings")?;

    let t0 = Instant::now();
    let snap = inspect::list();
    t.say(format!(
        "inspect::list(): {} objects on this machine, one pass over /proc, in {:?}; ours:",
        snap.objects.len(),
        t0.elapsed()
    ));
    let (s, o) = find(&snap, id, &bare);
    let (s, o) = (
        s.ok_or_else(|| anyhow!("segment id {id} not listed"))?,
        o.ok_or_else(|| anyhow!("{} not listed", name.with_slash()))?,
    );
    describe(t, &s);
    describe(t, &o);
    publish(word, BYE);
    peer.wait(DEADLINE)?;
    drop(att);
    drop(obj);

    let snap = inspect::list();
    let (s, o) = find(&snap, id, &bare);
    let (s, o) = (
        s.ok_or_else(|| anyhow!("segment id {id} vanished"))?,
        o.ok_or_else(|| anyhow!("{} vanished", name.with_slash()))?,
    );
    t.say(
        "the peer has gone and we detached: nobody uses them now. The segment's creator (us) \
         lives, so it is not orphaned; a plain POSIX object records no creator, so unused \
         means orphaned",
    );
    describe(t, &s);
    describe(t, &o);
    inspect::remove::remove(&s, shmkit::sys::posix::SHM_DIR)?;
    inspect::remove::remove(&o, shmkit::sys::posix::SHM_DIR)?;
    let snap = inspect::list();
    let (s, o) = find(&snap, id, &bare);
    if s.is_some() || o.is_some() {
        bail!("removed objects are still listed");
    }
    t.say("removed both with inspect::remove (IPC_RMID and unlink): no longer listed");
    Ok(())
}

/// The peer: attaches the segment and maps the POSIX object, then waits for the tour.
pub fn peer(args: &[String]) -> Result<()> {
    let id: i32 = args
        .first()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("the inspect peer needs the segment id"))?;
    let bare = args
        .get(1)
        .ok_or_else(|| anyhow!("the inspect peer needs the POSIX name"))?;
    let seg = Segment::from_id(id)?;
    let att = seg.attach()?;
    let obj = PosixShm::open(&ShmName::new(bare)?, Access::ReadWrite)?;
    let map = obj.map()?;
    peer_say(format!(
        "attached segment id {id} at {:#x} and mapped /{bare}",
        att.addr()
    ));
    let word = att.atomic_u32(0)?;
    publish(word, MAPPED);
    wait_word(word, BYE, DEADLINE, "the tour's go-ahead")?;
    drop(map);
    drop(att);
    peer_say("unmapped both and exiting");
    Ok(())
}
