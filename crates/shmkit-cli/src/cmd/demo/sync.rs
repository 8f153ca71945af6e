//! The "sync" section of the tour: a synchronised exchange through two mailboxes (one
//! each way; each send blocks until the other side has taken the message, both sides
//! sleep on a futex), then the robust lock: the peer takes a named lock and exits
//! without releasing it, and the tour gets the lock with "owner died".

use std::time::Duration;

use anyhow::{bail, Context, Result};
use shmkit::sync::lock_object::LockData;
use shmkit::sync::{LockObject, Locked, MailboxObject};

use super::{peer_say, Tour};

const DEADLINE: Duration = Duration::from_secs(10);
const ROUNDS: u32 = 3;

/// The tour's side.
pub fn tour(t: &Tour) -> Result<()> {
    let pid = std::process::id();
    let to_peer = format!("shmkit_demo_{pid}_mailbox_out");
    let from_peer = format!("shmkit_demo_{pid}_mailbox_back");
    let lock_name = format!("shmkit_demo_{pid}_lock");
    for n in [&to_peer, &from_peer, &lock_name] {
        let n = n.clone();
        t.on_cleanup(format!("/{n}"), move || {
            let _ = MailboxObject::unlink(&n);
        });
    }
    let out = MailboxObject::create(&to_peer, 256, 0o600)?;
    let back = MailboxObject::create(&from_peer, 256, 0o600)?;
    let (out_box, back_box) = (out.mailbox()?, back.mailbox()?);
    t.say(format!(
        "two mailboxes, /{to_peer} and /{from_peer}: a 64-byte shmkit header, a futex \
         state word (EMPTY/FULL), and a {}-byte slot each",
        out_box.capacity()
    ));
    let lock = LockObject::open_or_create(&lock_name, 0o600)?;
    t.say(format!("a robust lock object /{lock_name}"));

    let peer = t.spawn_peer(
        "sync",
        &[to_peer.clone(), from_peer.clone(), lock_name.clone()],
    )?;
    for i in 1..=ROUNDS {
        let msg = format!("question {i}: what is {i} squared?");
        t.say(format!(
            "send \"{msg}\" (blocks until the peer has taken it)"
        ));
        out_box
            .send(msg.as_bytes(), Some(DEADLINE))
            .with_context(|| format!("sending to /{to_peer}"))?;
        let reply = back_box
            .recv(Some(DEADLINE))
            .with_context(|| format!("receiving from /{from_peer}"))?;
        t.say(format!("got \"{}\"", String::from_utf8_lossy(&reply)));
    }
    peer.wait(DEADLINE)?;
    t.say("the peer has exited while holding the lock; taking it");
    let m = lock.mutex()?;
    match m.lock_timeout(DEADLINE) {
        Ok(Locked::OwnerDied(mut g)) => {
            let d: LockData = g.get()?;
            t.say(format!(
                "OwnerDied: pid {} died holding it; the data is checked and marked consistent",
                d.holder_pid
            ));
            g.mark_consistent();
        }
        Ok(Locked::Clean(_)) => bail!("expected the lock to report its dead owner"),
        Err(e) => bail!("lock: {e}"),
    }
    Ok(())
}

/// The peer's side: `OUT BACK LOCK`.
pub fn peer(args: &[String]) -> Result<()> {
    let [to_peer, from_peer, lock_name] = args else {
        bail!("sync peer: expected OUT BACK LOCK, got {args:?}");
    };
    let inbox = MailboxObject::open(to_peer)?;
    let outbox = MailboxObject::open(from_peer)?;
    let (inbox, outbox) = (inbox.mailbox()?, outbox.mailbox()?);
    for _ in 0..ROUNDS {
        let q = inbox.recv(Some(DEADLINE))?;
        let q = String::from_utf8_lossy(&q).into_owned();
        peer_say(format!("took \"{q}\""));
        let n: u32 = q
            .split_whitespace()
            .nth(1)
            .and_then(|w| w.trim_end_matches(':').parse().ok())
            .unwrap_or(0);
        outbox.send(
            format!("{n} squared is {}", n * n).as_bytes(),
            Some(DEADLINE),
        )?;
    }
    let lock = LockObject::open(lock_name)?;
    let m = lock.mutex()?;
    let g = m.lock_timeout(DEADLINE)?.into_guard();
    g.update(|d| d.holder_pid = std::process::id())?;
    peer_say("took the lock; exiting without releasing it, as a crash would");
    std::mem::forget(g);
    Ok(())
}
