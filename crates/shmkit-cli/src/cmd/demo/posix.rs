//! The "posix" section of the tour: a named POSIX object (shm_open + mmap) shared by two
//! live processes that hand a message back and forth with a futex word, then a sealed
//! memfd passed to the peer over a Unix socket (SCM_RIGHTS).
//!
//! Layout of the demo object (little private protocol, 4 KiB):
//!
//! ```text
//! 0      4      8             64                    4096
//! | turn | len  |  (unused)   | message bytes ...   |
//! ```
//!
//! `turn` is 0 while the tour writes, 1 when the peer may read and answer, 2 when the
//! answer is there. `len` is the message length, which the reader range-checks.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use shmkit::posix::{Access, Memfd, PosixShm, Seals, ShmName};
use shmkit::{Region, RegionExt};

use super::{peer_say, publish, wait_word, Tour};

const SIZE: u64 = 4096;
const TURN: usize = 0;
const LEN: usize = 4;
const TEXT: usize = 64;
const DEADLINE: Duration = Duration::from_secs(10);

/// The tour's side.
pub fn tour(t: &Tour) -> Result<()> {
    named_object(t)?;
    memfd(t)
}

/// The peer's side: `shm NAME` or `memfd SOCKET`.
pub fn peer(args: &[String]) -> Result<()> {
    match args {
        [kind, name] if kind == "shm" => peer_named(name),
        [kind, addr] if kind == "memfd" => peer_memfd(addr),
        _ => bail!("posix peer: expected 'shm NAME' or 'memfd SOCKET', got {args:?}"),
    }
}

fn named_object(t: &Tour) -> Result<()> {
    let name = ShmName::new(&format!("/shmkit_demo_{}_posix", std::process::id()))?;
    let shm = PosixShm::create(&name, SIZE)?;
    let cleanup_name = name.clone();
    t.on_cleanup(format!("POSIX object {name}"), move || {
        let _ = PosixShm::unlink(&cleanup_name);
    });
    let info = shm.info()?;
    t.say(format!(
        "shm_open(\"{name}\", O_CREAT|O_EXCL|O_RDWR), fallocate {} bytes, fchmod {:04o} -> {}",
        info.size,
        info.mode,
        name.path().display()
    ));
    let map = shm.map()?;
    let turn = map.atomic_u32(TURN)?;
    write_message(&map, "hello through /dev/shm")?;
    publish(turn, 1);
    t.say("wrote \"hello through /dev/shm\"; starting the peer, which opens the name");

    let peer = t.spawn_peer("posix", &["shm".into(), name.to_string()])?;
    wait_word(turn, 2, DEADLINE, "the peer's answer")?;
    peer.wait(DEADLINE)?;
    let answer = read_message(&map)?;
    t.say(format!("read the peer's answer: \"{answer}\""));
    PosixShm::unlink(&name)?;
    t.say(format!(
        "shm_unlink(\"{name}\"): the name is gone; our mapping still works: \"{}\"",
        read_message(&map)?
    ));
    Ok(())
}

fn peer_named(name: &str) -> Result<()> {
    let name = ShmName::new(name)?;
    let shm = PosixShm::open(&name, Access::ReadWrite)?;
    let map = shm.map()?;
    peer_say(format!("opened {name} ({} bytes) and mapped it", map.len()));
    let turn = map.atomic_u32(TURN)?;
    wait_word(turn, 1, DEADLINE, "the tour's message")?;
    let msg = read_message(&map)?;
    peer_say(format!("read \"{msg}\""));
    write_message(&map, "and hello back")?;
    publish(turn, 2);
    peer_say("answered \"and hello back\"; exiting without unlinking anything");
    Ok(())
}

fn memfd(t: &Tour) -> Result<()> {
    // An abstract socket address: nothing in the file system to clean up.
    let addr_name = format!("shmkit_demo_{}_memfd", std::process::id());
    let addr = SocketAddr::from_abstract_name(addr_name.as_bytes())?;
    let listener = UnixListener::bind_addr(&addr).context("bind the demo socket")?;

    let m = Memfd::create("shmkit-demo", SIZE)?;
    {
        let map = m.map()?;
        write_message(&map, "sealed: read me, you cannot change me")?;
    }
    m.add_seals(Seals::WRITE | Seals::SHRINK | Seals::GROW | Seals::SEAL)?;
    t.say(format!(
        "memfd_create(\"shmkit-demo\"), wrote a message, sealed it: {}",
        m.seals()?
    ));

    let peer = t.spawn_peer("posix", &["memfd".into(), addr_name])?;
    let conn = accept_with_deadline(&listener)?;
    m.send(&conn)?;
    t.say("sent the descriptor over a Unix socket (SCM_RIGHTS)");
    peer.wait(DEADLINE)?;
    t.say("the memfd disappears with its last descriptor: nothing to clean up");
    Ok(())
}

fn peer_memfd(addr_name: &str) -> Result<()> {
    let addr = SocketAddr::from_abstract_name(addr_name.as_bytes())?;
    let sock = UnixStream::connect_addr(&addr).context("connect to the tour's socket")?;
    sock.set_read_timeout(Some(DEADLINE))?;
    let m = Memfd::recv(&sock)?;
    let map = m.map()?;
    peer_say(format!(
        "received {} ({} bytes, seals {}), mapped {}",
        m.name(),
        map.len(),
        m.seals()?,
        if map.is_writable() {
            "read-write"
        } else {
            "read-only"
        }
    ));
    peer_say(format!("read \"{}\"", read_message(&map)?));
    match m.resize(1) {
        Err(e) => peer_say(format!("shrinking it is refused: {}", e.reason())),
        Ok(()) => bail!("the shrink seal did not hold"),
    }
    Ok(())
}

fn accept_with_deadline(listener: &UnixListener) -> Result<UnixStream> {
    use rustix::event::{poll, PollFd, PollFlags};
    let ts = rustix::time::Timespec {
        tv_sec: DEADLINE.as_secs() as i64,
        tv_nsec: 0,
    };
    let mut fds = [PollFd::new(listener, PollFlags::IN)];
    match poll(&mut fds, Some(&ts)) {
        Ok(0) => bail!("the peer did not connect within {DEADLINE:?}"),
        Ok(_) => Ok(listener.accept()?.0),
        Err(e) => bail!("poll on the demo socket: {e}"),
    }
}

fn write_message(map: &dyn Region, text: &str) -> Result<()> {
    map.write_at(TEXT, text.as_bytes())?;
    map.write(LEN, &(text.len() as u32))?;
    Ok(())
}

/// Reads the message, checking the length another process wrote.
fn read_message(map: &dyn Region) -> Result<String> {
    let len: u32 = map.read(LEN)?;
    let max = map.len() - TEXT;
    if len as usize > max {
        bail!("corrupt demo object: message length {len} exceeds {max}");
    }
    Ok(String::from_utf8_lossy(&map.read_vec(TEXT, len as usize)?).into_owned())
}
