//! The "channel" section of the tour: a message channel between two processes, with a
//! zero-copy loan, a typed value, and the end of the stream when the sender closes.

use std::time::Duration;

use anyhow::{bail, Context, Result};

use shmkit::channel::{self, ChannelError, Options, Receiver, Sender};

use super::{peer_say, Tour};

/// The leading process: creates the channel, starts the receiving peer, sends.
pub fn tour(t: &Tour) -> Result<()> {
    let name = format!("/shmkit_demo_{}_channel", std::process::id());
    channel::create(
        &name,
        &Options {
            capacity: 4096,
            max_message: 256,
            ..Options::default()
        },
    )
    .with_context(|| format!("creating {name}"))?;
    let n = name.clone();
    t.on_cleanup(format!("channel {name}"), move || {
        let _ = channel::remove(&n);
    });
    t.say(format!(
        "created the channel {name}: a 4 KiB ring in /dev/shm, messages up to 256 bytes"
    ));
    let mut tx = Sender::open(&name)?;
    let peer = t.spawn_peer("channel", std::slice::from_ref(&name))?;
    for i in 1..=3 {
        let msg = format!("hello #{i} from pid {}", std::process::id());
        tx.send(msg.as_bytes())?;
        t.say(format!("sent \"{msg}\" (copied into the ring)"));
    }
    let mut loan = tx.loan(64)?;
    let text = b"written in place in shared memory (zero-copy loan)";
    loan[..text.len()].copy_from_slice(text);
    loan.commit_len(text.len());
    t.say("wrote a message directly into the ring and committed it");
    tx.send_value(&[3.5f64, 2.25])?;
    t.say("sent a typed value: [3.5, 2.25] as two f64");
    drop(tx);
    t.say("closed the sender: the receiver gets everything, then the end of the stream");
    peer.wait(Duration::from_secs(20))?;
    Ok(())
}

/// The peer process: receives until the sender closes.
pub fn peer(args: &[String]) -> Result<()> {
    let name = args.first().context("the peer needs the channel name")?;
    let mut rx = Receiver::open(name)?;
    peer_say(format!("opened {name} as the receiver"));
    let mut n = 0;
    loop {
        match rx.recv_ref_timeout(Duration::from_secs(10)) {
            Ok(msg) if msg.len() == 16 && n == 4 => {
                let v: [f64; 2] = f64_pair(&msg);
                peer_say(format!("received a typed value: {v:?}"));
            }
            Ok(msg) => peer_say(format!(
                "received \"{}\" (read in place)",
                String::from_utf8_lossy(&msg)
            )),
            Err(ChannelError::Disconnected) => {
                peer_say(format!(
                    "the sender closed; all {n} messages arrived, in order"
                ));
                return Ok(());
            }
            Err(e) => bail!("receiving from {name}: {e}"),
        }
        n += 1;
    }
}

fn f64_pair(b: &[u8]) -> [f64; 2] {
    let mut v = [0f64; 2];
    for (i, x) in v.iter_mut().enumerate() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[i * 8..i * 8 + 8]);
        *x = f64::from_ne_bytes(w);
    }
    v
}
