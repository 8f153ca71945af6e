//! The "rpc" section of the tour: a request-reply channel. The peer process is the
//! server and answers in place, in the slot the request came in; this process is the
//! client and makes a few calls, a text one and typed ones, then closes, which tells the
//! server that no more calls will come.

use std::time::Duration;

use anyhow::{bail, Context, Result};

use shmkit::channel::{rpc, ChannelError};

use super::{peer_say, Tour};

/// The leading process: creates the channel, starts the serving peer, calls it.
pub fn tour(t: &Tour) -> Result<()> {
    let name = format!("/shmkit_demo_{}_rpc", std::process::id());
    rpc::create(&name, 256, 0o600).with_context(|| format!("creating {name}"))?;
    let n = name.clone();
    t.on_cleanup(format!("channel {name}"), move || {
        let _ = rpc::remove(&n);
    });
    t.say(format!(
        "created the request-reply channel {name}: one slot for requests and replies up to 256 bytes"
    ));
    let mut client = rpc::Client::open(&name)?;
    let peer = t.spawn_peer("rpc", std::slice::from_ref(&name))?;
    // The server may still be starting: a call waits for it (as long as the deadline).
    let deadline = Duration::from_secs(20);
    for word in ["hello", "shared memory"] {
        let reply = client
            .call_timeout(word.as_bytes(), deadline)
            .with_context(|| format!("calling {name}"))?;
        t.say(format!(
            "called with \"{word}\", the reply is \"{}\" (read in place)",
            String::from_utf8_lossy(&reply)
        ));
    }
    for x in [20u64, 41] {
        let reply = client
            .call_timeout(&x.to_ne_bytes(), deadline)
            .with_context(|| format!("calling {name}"))?;
        let y: u64 = u64_of(&reply).context("a typed reply of another size")?;
        t.say(format!("called with the number {x}, the reply is {y}"));
    }
    drop(client);
    t.say("closed the client: the server sees it and stops");
    peer.wait(Duration::from_secs(20))?;
    Ok(())
}

/// A reply as a native-endian `u64`, if it has that size.
fn u64_of(b: &[u8]) -> Option<u64> {
    Some(u64::from_ne_bytes(b.try_into().ok()?))
}

/// The peer process: serves until the client closes.
pub fn peer(args: &[String]) -> Result<()> {
    let name = args.first().context("the peer needs the channel name")?;
    let mut server = rpc::Server::open(name)?;
    peer_say(format!("opened {name} as the server"));
    let mut n = 0u32;
    loop {
        match server.recv_timeout(Duration::from_secs(10)) {
            Ok(req) if n < 2 => {
                let text = String::from_utf8_lossy(&req).to_uppercase();
                peer_say(format!(
                    "request \"{}\": replying \"{text}\" over it",
                    String::from_utf8_lossy(&req)
                ));
                req.reply(text.as_bytes())?;
            }
            Ok(req) => {
                let x: u64 = req.value()?;
                peer_say(format!("request {x}: replying {}", x + 1));
                req.reply_value(&(x + 1))?;
            }
            Err(ChannelError::Disconnected) => {
                peer_say(format!("the client closed after {n} calls; stopping"));
                return Ok(());
            }
            Err(e) => bail!("serving {name}: {e}"),
        }
        n += 1;
    }
}
