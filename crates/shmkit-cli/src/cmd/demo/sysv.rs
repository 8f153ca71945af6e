//! The System V section of the tour: a private segment, a request and a reply between
//! two processes, handed over with a state word in the segment and futex wait/wake.
//!
//! Layout of the 4096-byte segment:
//!
//! ```text
//! offset 0     u32 state: 0 empty, 1 request written, 2 reply written,
//!              3 removed, peer may leave (the futex word)
//! offset 64    request: text, NUL-terminated (at most 900 bytes)
//! offset 1024  reply:   text, NUL-terminated (at most 900 bytes)
//! ```

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use shmkit::sysv::{Key, Segment};
use shmkit::Region;

use super::{peer_say, publish, wait_word, Tour};

const SIZE: usize = 4096;
const STATE: usize = 0;
const REQUEST: usize = 64;
const REPLY: usize = 1024;
const TEXT_MAX: usize = 900;
const REQUESTED: u32 = 1;
const REPLIED: u32 = 2;
const BYE: u32 = 3;
const DEADLINE: Duration = Duration::from_secs(10);

/// Reads the NUL-terminated text at `offset` (at most [`TEXT_MAX`] bytes), tolerating
/// anything the other process wrote.
fn read_text(region: &dyn Region, offset: usize) -> Result<String> {
    let bytes = region.read_vec(offset, TEXT_MAX)?;
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    Ok(String::from_utf8_lossy(&bytes[..end]).into_owned())
}

fn write_text(region: &dyn Region, offset: usize, text: &str) -> Result<()> {
    let mut bytes = text.as_bytes()[..text.len().min(TEXT_MAX - 1)].to_vec();
    bytes.push(0);
    Ok(region.write_at(offset, &bytes)?)
}

/// The leading process.
pub fn tour(t: &Tour) -> Result<()> {
    t.say(format!(
        "shmget(IPC_PRIVATE, {SIZE}, IPC_CREAT|IPC_EXCL|0600): a new segment only its id can name"
    ));
    let seg = Segment::create(Key::PRIVATE, SIZE)?;
    let id = seg.id();
    t.on_cleanup(format!("System V segment id {id}"), move || {
        if let Ok(s) = Segment::from_id(id) {
            let _ = s.remove();
        }
    });
    let att = seg.attach()?;
    t.say(format!(
        "created id {id} and attached it read-write at {:#x}",
        att.addr()
    ));
    let word = att.atomic_u32(STATE)?;
    t.say(format!(
        "starting the peer with the id {id}; it attaches the same segment"
    ));
    let peer = t.spawn_peer("sysv", &[id.to_string()])?;

    let request = format!("hello from pid {}: what is 6 x 7?", std::process::id());
    write_text(&att, REQUEST, &request)?;
    t.say(format!(
        "wrote the request at offset {REQUEST}: \"{request}\""
    ));
    t.say("state := 1 (Release store) and FUTEX_WAKE; now sleeping on the state word");
    publish(word, REQUESTED);
    wait_word(word, REPLIED, DEADLINE, "the peer's reply")?;
    let reply = read_text(&att, REPLY)?;
    t.say(format!(
        "woken: state is 2; the reply at offset {REPLY}: \"{reply}\""
    ));

    let info = seg.info()?;
    t.say(format!(
        "IPC_STAT: size {}, mode {:04o}, {} attachments, created by pid {}, last shmat/shmdt by pid {}",
        info.size, info.mode, info.nattch, info.cpid, info.lpid
    ));
    seg.remove()?;
    let info = seg.info()?;
    t.say(format!(
        "IPC_RMID while attached: marked dest ({}), key now {}, so no shmget finds it; \
         attached processes keep using it",
        info.dest, info.key
    ));
    t.say("state := 3: the peer may look and leave");
    publish(word, BYE);
    peer.wait(DEADLINE)?;
    t.say(format!(
        "the peer has gone; {} attachment left (ours); reply still readable: \"{}\"",
        seg.info()?.nattch,
        read_text(&att, REPLY)?
    ));
    drop(att);
    let gone = seg.info().is_err();
    t.say(if gone {
        "detached: that was the last attachment, so the kernel destroyed the segment"
    } else {
        "detached, but the segment is still listed"
    });
    if !gone {
        bail!("segment id {id} survived its last detach");
    }
    Ok(())
}

/// The peer process: attaches by id, answers the request.
pub fn peer(args: &[String]) -> Result<()> {
    let id: i32 = args
        .first()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("the sysv peer needs the segment id"))?;
    let seg = Segment::from_id(id)?;
    let att = seg.attach().with_context(|| format!("attach id {id}"))?;
    peer_say(format!(
        "attached id {id} at {:#x} (another address, same bytes)",
        att.addr()
    ));
    let word = att.atomic_u32(STATE)?;
    peer_say("sleeping on the state word until it is 1");
    wait_word(word, REQUESTED, DEADLINE, "the request")?;
    let request = read_text(&att, REQUEST)?;
    peer_say(format!("woken: read the request \"{request}\""));
    let reply = format!("pid {} says 42", std::process::id());
    write_text(&att, REPLY, &reply)?;
    peer_say(format!(
        "wrote the reply at offset {REPLY}, state := 2, FUTEX_WAKE"
    ));
    publish(word, REPLIED);
    wait_word(word, BYE, DEADLINE, "the tour's go-ahead")?;
    let info = seg.info()?;
    peer_say(format!(
        "the segment is removed (dest {}, key {}) yet still mine: the request reads \"{}\"",
        info.dest,
        info.key,
        read_text(&att, REQUEST)?
    ));
    peer_say("detaching and exiting");
    drop(att);
    Ok(())
}
