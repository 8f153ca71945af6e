//! shmkit's request-reply channel ([`shmkit::channel::rpc`]) as a transport: one
//! [`Client`] in the leading process, one [`Server`] in the peer, in two flavours:
//!
//! - `shmkit-rpc`: the default spin budget (polls a while, then sleeps on a futex);
//! - `shmkit-rpc-spin`: waits only by polling (spin budget `u32::MAX`).
//!
//! A request and its reply share one slot, so the transport carries round trips only:
//! the leading side implements [`Endpoint::round_trip`] as one `call` (the request
//! copied in, the reply copied out of the slot into the caller's buffer), the peer
//! implements [`Endpoint::serve`] as one `recv` → copy out → answer → `reply` (copied
//! in). `send` and `recv` alone are errors, and the registry marks the transport as
//! not streaming, so the stream test skips it.
//!
//! A server that never comes (a peer that failed to start) would leave a call waiting
//! for ever, and a timed-out call leaves its request out (the next call would send a
//! second one), so the leading side first connects: it calls with an empty request in
//! 100 ms slices, checking the abort flag and the deadline, until one is answered; the
//! server answers empty requests and goes on waiting. After that a dead server ends a
//! call with `PeerDied`, and every call is bounded by the run's time left at connect
//! (with `shmkit-rpc-spin`, as with `shmkit-spin`, only once its spin budget of
//! `u32::MAX` polls is spent: the channel's timeouts count from the end of spinning).
//!
//! The channel is a POSIX object named `/shmkit_bench_<pid>_<n>_rpc`, removed when the
//! leading side's endpoint drops or by [`crate::cleanup()`] on Ctrl-C.

use std::time::{Duration, Instant};

use shmkit::channel::rpc::{self, Client, Server};
use shmkit::channel::ChannelError;

use super::{aborted, wait_error, Endpoint, PeerSpec, Setup};
use crate::{BenchError, Result};

const SLICE: Duration = Duration::from_millis(100);

/// How a flavour waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Flavour {
    /// The default spin budget, then a futex.
    Default,
    /// Polls forever.
    Spin,
}

impl Flavour {
    /// The flavour behind a transport name.
    pub fn from_name(name: &str) -> Option<Flavour> {
        match name {
            "shmkit-rpc" => Some(Flavour::Default),
            "shmkit-rpc-spin" => Some(Flavour::Spin),
            _ => None,
        }
    }

    fn spin(self) -> Option<u32> {
        match self {
            Flavour::Default => None,
            Flavour::Spin => Some(u32::MAX),
        }
    }
}

fn rpc_err(what: &str, e: ChannelError, deadline: Instant) -> BenchError {
    match e {
        ChannelError::Disconnected | ChannelError::PeerDied(_) | ChannelError::Timeout => {
            wait_error(&format!("shmkit rpc {what} ({e})"), deadline)
        }
        other => BenchError::Peer(format!("shmkit rpc {what}: {other}")),
    }
}

fn shm_err(what: &str, e: shmkit::Error) -> BenchError {
    BenchError::Peer(format!("shmkit rpc: {what}: {e}"))
}

fn one_way() -> BenchError {
    BenchError::Usage("shmkit rpc carries round trips only, not one-way messages".into())
}

fn wrong_len(got: usize, want: usize) -> BenchError {
    BenchError::Peer(format!(
        "shmkit rpc: message of {got} bytes where {want} were expected"
    ))
}

/// The leading side: the client, and the channel's name, which it removes on drop.
struct RpcClient {
    client: Client,
    /// How long any call may wait, fixed at connect (`None`: not connected yet).
    budget: Option<Duration>,
    /// The flavour's spin budget, set once connected (connecting spins the default
    /// budget, so that its 100 ms slices hold even for `shmkit-rpc-spin`).
    spin: Option<u32>,
    name: String,
}

impl RpcClient {
    /// Calls with empty requests until the server answers one (see the module docs).
    fn connect(&mut self, deadline: Instant) -> Result<Duration> {
        loop {
            match self.client.call_timeout(&[], SLICE) {
                Ok(r) if r.is_empty() => break,
                Ok(r) => return Err(wrong_len(r.len(), 0)),
                Err(ChannelError::Timeout) if !aborted() && Instant::now() < deadline => {}
                Err(e) => return Err(rpc_err("connect", e, deadline)),
            }
        }
        if let Some(s) = self.spin {
            self.client.set_spin(s);
        }
        let budget = deadline.saturating_duration_since(Instant::now());
        self.budget = Some(budget);
        Ok(budget)
    }
}

impl Endpoint for RpcClient {
    fn send(&mut self, _msg: &[u8], _deadline: Instant) -> Result<()> {
        Err(one_way())
    }

    fn recv(&mut self, _buf: &mut [u8], _deadline: Instant) -> Result<()> {
        Err(one_way())
    }

    fn round_trip(&mut self, msg: &[u8], reply: &mut [u8], deadline: Instant) -> Result<()> {
        let budget = match self.budget {
            Some(b) => b,
            None => self.connect(deadline)?,
        };
        // A fixed timeout: the clock is read only if the call has to sleep.
        match self.client.call_timeout(msg, budget) {
            Ok(r) => {
                if r.len() != reply.len() {
                    return Err(wrong_len(r.len(), reply.len()));
                }
                reply.copy_from_slice(&r);
                Ok(())
            }
            Err(e) => Err(rpc_err("call", e, deadline)),
        }
    }
}

impl Drop for RpcClient {
    fn drop(&mut self) {
        let _ = rpc::remove(&self.name);
        crate::cleanup::forget_shm(&self.name);
    }
}

/// The peer's side: the server.
struct RpcServer {
    server: Server,
}

impl Endpoint for RpcServer {
    fn send(&mut self, _msg: &[u8], _deadline: Instant) -> Result<()> {
        Err(one_way())
    }

    fn recv(&mut self, _buf: &mut [u8], _deadline: Instant) -> Result<()> {
        Err(one_way())
    }

    fn serve(
        &mut self,
        buf: &mut [u8],
        deadline: Instant,
        handle: &mut dyn FnMut(&mut [u8]) -> Result<()>,
    ) -> Result<()> {
        loop {
            match self.server.recv_timeout(SLICE) {
                Ok(req) if req.is_empty() => {
                    // The leading side connecting (the harness's messages have at least
                    // 8 bytes).
                    req.reply(&[]).map_err(|e| rpc_err("reply", e, deadline))?;
                }
                Ok(req) => {
                    if req.len() != buf.len() {
                        return Err(wrong_len(req.len(), buf.len()));
                    }
                    buf.copy_from_slice(&req);
                    // An error here drops `req` unanswered: the client gets `Unanswered`.
                    handle(buf)?;
                    return req.reply(buf).map_err(|e| rpc_err("reply", e, deadline));
                }
                Err(ChannelError::Timeout) if !aborted() && Instant::now() < deadline => {}
                Err(e) => return Err(rpc_err("receive", e, deadline)),
            }
        }
    }
}

/// Creates the channel for messages of at most `max` bytes and opens the client.
pub fn setup(max: usize, flavour: Flavour) -> Result<Setup> {
    let name = format!("{}_rpc", super::shmkit_channel::base_name());
    rpc::create(&name, max.max(1) as u64, 0o600)
        .map_err(|e| shm_err(&format!("creating {name}"), e))?;
    crate::cleanup::register_shm(&name);
    let client = match Client::open(&name) {
        Ok(c) => c,
        Err(e) => {
            let _ = rpc::remove(&name);
            crate::cleanup::forget_shm(&name);
            return Err(shm_err("opening the client", e));
        }
    };
    Ok(Setup {
        local: Box::new(RpcClient {
            client,
            budget: None,
            spin: flavour.spin(),
            name: name.clone(),
        }),
        peer: PeerSpec::Rpc { name, flavour },
        inherit: Vec::new(),
    })
}

/// Opens the peer's server.
pub fn open_peer(name: &str, flavour: Flavour) -> Result<Box<dyn Endpoint>> {
    let mut server = Server::open(name).map_err(|e| shm_err("opening the server", e))?;
    if let Some(s) = flavour.spin() {
        server.set_spin(s);
    }
    Ok(Box::new(RpcServer { server }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{open_peer as open_spec, setup as setup_name};

    /// The leading side against a server thread: round trips whose answers the handler
    /// changed come back changed, for both flavours; one-way use is refused.
    #[test]
    fn round_trips_through_a_server_thread() {
        for name in ["shmkit-rpc", "shmkit-rpc-spin"] {
            let deadline = Instant::now() + Duration::from_secs(30);
            let setup = setup_name(name, 64).unwrap();
            let mut lead = setup.local;
            let spec = setup.peer;
            let object = match &spec {
                PeerSpec::Rpc { name, .. } => name.clone(),
                other => panic!("{other:?}"),
            };
            assert!(object.starts_with("/shmkit_bench_") && object.ends_with("_rpc"));
            let server = std::thread::spawn(move || -> Result<()> {
                let mut ep = open_spec(&spec, deadline)?;
                assert!(ep.send(&[0; 8], deadline).is_err());
                let mut buf = [0u8; 16];
                for i in 0..3u8 {
                    ep.serve(&mut buf, deadline, &mut |b| {
                        assert_eq!(b[0], i);
                        b[1] = i + 100;
                        Ok(())
                    })?;
                }
                Ok(())
            });
            assert!(lead.send(&[0; 8], deadline).is_err());
            let mut reply = [0u8; 16];
            for i in 0..3u8 {
                let mut msg = [7u8; 16];
                msg[0] = i;
                lead.round_trip(&msg, &mut reply, deadline).unwrap();
                assert_eq!(reply[0], i, "{name}");
                assert_eq!(reply[1], i + 100, "{name}");
                assert_eq!(reply[2..], msg[2..], "{name}");
            }
            server.join().unwrap().unwrap();
            // The server has gone: the next call ends instead of waiting (not tried with
            // the spin flavour, which first spends its budget of u32::MAX polls).
            if name == "shmkit-rpc" {
                assert!(lead.round_trip(&[0; 16], &mut reply, deadline).is_err());
            }
            drop(lead);
            assert!(
                Client::open(&object).is_err(),
                "{object} was not removed with the leading side"
            );
        }
    }

    /// Without a server the leading side's first call gives up at the deadline (it
    /// connects in slices) instead of waiting for ever.
    #[test]
    fn no_server_ends_at_the_deadline() {
        let setup = setup_name("shmkit-rpc-spin", 8).unwrap();
        let mut lead = setup.local;
        let deadline = Instant::now() + Duration::from_millis(300);
        let mut reply = [0u8; 8];
        let e = lead.round_trip(&[0; 8], &mut reply, deadline).unwrap_err();
        assert!(e.to_string().contains("timed out"), "{e}");
    }
}
