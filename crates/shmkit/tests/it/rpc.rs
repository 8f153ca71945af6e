//! Request-reply channels: calls answered in place, typed values, limits, timeouts,
//! exclusive ends, a two-process stress run, crash tests (SIGKILL of the server or the
//! client at random points) and corruption of a live channel.

use std::time::{Duration, Instant};

use shmkit::channel::rpc::{self, Client, Server};
use shmkit::channel::{self, AnyInfo, ChannelError, Kind, Options};
use shmkit::posix::{Access, PosixShm, ShmName};
use shmkit::{ErrorKind, Region, RegionExt};

use crate::support::{self, fork_guarded, killed, PosixGuard, Ready};

/// Every wait in these tests ends by this deadline at the latest.
const DEADLINE: Duration = Duration::from_secs(10);

/// Creates a request-reply channel with a unique name and a guard removing it.
fn make(tag: &str, max_message: u64) -> (String, PosixGuard) {
    let name = format!("/{}", support::unique_name(tag));
    rpc::create(&name, max_message, 0o600).expect("create rpc channel");
    let guard = PosixGuard(name.clone());
    (name, guard)
}

/// The channel's description, read through a read-only mapping.
fn describe(name: &str) -> rpc::RpcInfo {
    let shm = PosixShm::open(&ShmName::new(name).unwrap(), Access::ReadOnly).unwrap();
    rpc::describe(&shm.map().unwrap()).unwrap()
}

// ---- messages ---------------------------------------------------------------------------

/// The length of request `seq` on a channel with limit `max`: anything in `min..=max`.
fn request_len(seq: u64, min: usize, max: usize) -> usize {
    let x = seq.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40;
    min + (x as usize % (max - min + 1))
}

/// Request `seq`: its first 8 bytes are `seq` (as far as they fit), the rest derived
/// from `seq`. Writes into `buf` (its whole length).
fn fill_request(seq: u64, buf: &mut [u8]) {
    let mut rng = support::Rng(seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    for (i, b) in buf.iter_mut().enumerate() {
        *b = if i < 8 {
            seq.to_le_bytes()[i]
        } else {
            rng.next() as u8
        };
    }
}

/// The reply to `req` on a channel with limit `max`: the request's checksum, then its
/// bytes reversed, cut at `max`. Writes into `out`; returns the length. No allocation,
/// so that forked children can use it.
fn fill_reply(req: &[u8], max: usize, out: &mut [u8]) -> usize {
    let n = (req.len() + 4).min(max);
    let mut full = support::checksum(req)
        .to_le_bytes()
        .into_iter()
        .chain(req.iter().rev().copied());
    for b in &mut out[..n] {
        *b = full.next().unwrap_or(0);
    }
    n
}

/// Whether `req` is a well-formed request of at least 8 bytes; its sequence number.
fn request_seq(req: &[u8]) -> Option<u64> {
    let seq = u64::from_le_bytes(req.get(..8)?.try_into().ok()?);
    let mut want = [0u8; 512];
    let want = want.get_mut(..req.len())?;
    fill_request(seq, want);
    (want == req).then_some(seq)
}

/// Whether `reply` is the right reply to `req`.
fn reply_is_right(req: &[u8], reply: &[u8], max: usize) -> bool {
    let mut want = [0u8; 512];
    let n = fill_reply(req, max, &mut want);
    want[..n] == *reply
}

// ---- basics -----------------------------------------------------------------------------

/// Runs `serve` on a server of `name` in a thread.
fn server_thread<T: Send + 'static>(
    name: &str,
    serve: impl FnOnce(&mut Server) -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let mut server = Server::open(name).unwrap();
    std::thread::spawn(move || serve(&mut server))
}

#[test]
fn calls_values_limits_and_unanswered_requests() {
    let (name, _g) = make("rpc_basic", 100);
    let (saw_close, closed) = std::sync::mpsc::channel();
    let t = server_thread(&name, move |s| {
        // 1: bytes, answered in place with the reversed request.
        let req = s.recv_timeout(DEADLINE).unwrap();
        let mut v = req.to_vec();
        v.reverse();
        req.reply(&v).unwrap();
        // 2: a typed value.
        let req = s.recv_timeout(DEADLINE).unwrap();
        let x: u64 = req.value().unwrap();
        assert_eq!(
            req.value::<u32>(),
            Err(ChannelError::WrongSize {
                expected: 4,
                got: 8
            })
        );
        req.reply_value(&(x * 3)).unwrap();
        // 3: a reply over the limit is refused; the client is told Unanswered.
        let req = s.recv_timeout(DEADLINE).unwrap();
        assert_eq!(&*req, b"big");
        assert_eq!(
            req.reply(&[1u8; 101]),
            Err(ChannelError::TooLarge { len: 101, max: 100 })
        );
        // 4: dropped without a reply.
        let req = s.recv_timeout(DEADLINE).unwrap();
        assert_eq!(&*req, b"drop me");
        drop(req);
        // 5: the largest request and reply, and an empty one.
        let req = s.recv_timeout(DEADLINE).unwrap();
        assert_eq!(&*req, &[9u8; 100][..]);
        req.reply(&[7u8; 100]).unwrap();
        let req = s.recv_timeout(DEADLINE).unwrap();
        assert!(req.is_empty());
        req.reply(b"").unwrap();
        // The client closes: Disconnected, once; then a new client is served.
        assert_eq!(
            s.recv_timeout(DEADLINE).unwrap_err(),
            ChannelError::Disconnected
        );
        saw_close.send(()).unwrap();
        let req = s.recv_timeout(DEADLINE).unwrap();
        assert_eq!(&*req, b"again");
        req.reply(b"welcome back").unwrap();
        assert_eq!(
            s.recv_timeout(DEADLINE).unwrap_err(),
            ChannelError::Disconnected
        );
    });
    let mut c = Client::open(&name).unwrap();
    assert_eq!(c.max_message(), 100);
    assert_eq!(c.name(), name);
    assert_eq!(&*c.call_timeout(b"hello", DEADLINE).unwrap(), b"olleh");
    assert_eq!(c.call_value::<u64, u64>(&14).unwrap(), 42);
    assert_eq!(
        c.call(&[0u8; 101]).unwrap_err(),
        ChannelError::TooLarge { len: 101, max: 100 }
    );
    assert_eq!(
        c.call_timeout(b"big", DEADLINE).unwrap_err(),
        ChannelError::Unanswered
    );
    assert_eq!(
        c.call_timeout(b"drop me", DEADLINE).unwrap_err(),
        ChannelError::Unanswered
    );
    assert_eq!(
        &*c.call_timeout(&[9u8; 100], DEADLINE).unwrap(),
        &[7u8; 100][..]
    );
    assert_eq!(
        c.call_value::<[u8; 0], u32>(&[]),
        Err(ChannelError::WrongSize {
            expected: 4,
            got: 0
        })
    );
    let info = describe(&name);
    assert_eq!(
        (info.calls, info.pending, info.max_message),
        (6, false, 100)
    );
    assert_eq!(info.client.unwrap().pid, std::process::id());
    assert!(info.server.unwrap().alive);
    assert_eq!((info.client_opens, info.server_opens), (1, 1));
    drop(c);
    // (A new client's request sent before the server looked would be received without
    // a Disconnected first: wait until the server has seen the close.)
    closed.recv_timeout(DEADLINE).unwrap();
    let mut c = Client::open(&name).unwrap();
    assert_eq!(
        &*c.call_timeout(b"again", DEADLINE).unwrap(),
        b"welcome back"
    );
    drop(c);
    t.join().unwrap();
    assert_eq!(describe(&name).client_opens, 2);
}

#[test]
fn created_through_channel_create_and_described_as_rpc() {
    let name = format!("/{}", support::unique_name("rpc_opts"));
    channel::create(
        &name,
        &Options {
            kind: Kind::Rpc,
            max_message: 64,
            ..Options::default()
        },
    )
    .unwrap();
    let _g = PosixGuard(name.clone());
    let shm = PosixShm::open(&ShmName::new(&name).unwrap(), Access::ReadOnly).unwrap();
    match channel::describe_any(&shm.map().unwrap()).unwrap() {
        AnyInfo::Rpc(info) => {
            assert_eq!((info.max_message, info.calls, info.pending), (64, 0, false));
            assert_eq!((info.client, info.server), (None, None));
        }
        other => panic!("not described as a request-reply channel: {other:?}"),
    }
    for bad in [0, rpc::MAX_MESSAGE + 1] {
        let n = format!("/{}", support::unique_name("rpc_badmax"));
        let _g = PosixGuard(n.clone());
        let e = rpc::create(&n, bad, 0o600).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    }
    rpc::remove(&name).unwrap();
    assert_eq!(Client::open(&name).unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn empty_timeouts_and_a_call_answered_by_a_late_server() {
    let (name, _g) = make("rpc_timeout", 32);
    // No client yet: nothing to receive, and a timed receive times out.
    let mut s = Server::open(&name).unwrap();
    assert_eq!(s.try_recv().unwrap_err(), ChannelError::Empty);
    assert_eq!(
        s.recv_timeout(Duration::from_millis(20)).unwrap_err(),
        ChannelError::Timeout
    );
    drop(s);
    // No server: a timed call times out and its request stays out.
    let mut c = Client::open(&name).unwrap();
    assert_eq!(
        c.call_timeout(b"first", Duration::from_millis(20))
            .unwrap_err(),
        ChannelError::Timeout
    );
    assert!(describe(&name).pending);
    // A server comes: it receives the pending request first; the client's next call
    // waits for that answer, drops it, and gets the answer to its own request.
    let t = server_thread(&name, |s| {
        assert_eq!(s.try_recv().map(|r| r.to_vec()), Ok(b"first".to_vec()));
        // (the request above was dropped unanswered: that answer is dropped too)
        let req = s.recv_timeout(DEADLINE).unwrap();
        assert_eq!(&*req, b"second");
        req.reply(b"to second").unwrap();
        assert_eq!(s.try_recv().unwrap_err(), ChannelError::Empty);
    });
    assert_eq!(&*c.call_timeout(b"second", DEADLINE).unwrap(), b"to second");
    t.join().unwrap();
    assert!(!describe(&name).pending);
}

#[test]
fn one_client_and_one_server_at_a_time() {
    let (name, _g) = make("rpc_excl", 16);
    let c = Client::open(&name).unwrap();
    let e = Client::open(&name).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    assert!(e.to_string().contains("live client"), "{e}");
    let s = Server::open(&name).unwrap();
    let e = Server::open(&name).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    assert!(e.to_string().contains("live server"), "{e}");
    assert!(c.server_alive());
    assert!(s.client_alive());
    drop(c);
    assert!(!s.client_alive());
    drop(s);
    // Both ends are free again.
    let c = Client::open(&name).unwrap();
    assert!(!c.server_alive());
    let _s = Server::open(&name).unwrap();
}

#[test]
fn a_blocked_server_is_told_when_the_client_closes() {
    let (name, _g) = make("rpc_disc", 16);
    let c = Client::open(&name).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let t = server_thread(&name, move |s| {
        tx.send(()).unwrap();
        let first = s.recv_timeout(DEADLINE).map(|_| ());
        // Reported once: the next receive waits for a new client.
        let second = s.recv_timeout(Duration::from_millis(20)).map(|_| ());
        (first, second)
    });
    rx.recv_timeout(DEADLINE).unwrap();
    drop(c);
    let (first, second) = t.join().unwrap();
    assert_eq!(first, Err(ChannelError::Disconnected));
    assert_eq!(second, Err(ChannelError::Timeout));
}

// ---- corruption -------------------------------------------------------------------------

/// Offset of the slot's `turn` word and its tag-and-length word.
const TURN: usize = rpc::SLOT_OFFSET;
const TAG_LEN: usize = rpc::SLOT_OFFSET + 8;

#[test]
fn garbage_in_a_live_slot_is_corrupt_on_both_sides() {
    let (name, _g) = make("rpc_garbage", 64);
    let shm = PosixShm::open(&ShmName::new(&name).unwrap(), Access::ReadWrite).unwrap();
    let map = shm.map().unwrap();
    let mut s = Server::open(&name).unwrap();
    let mut c = Client::open(&name).unwrap();
    // A request goes out and nobody answers yet: turn = 1.
    assert_eq!(
        c.call_timeout(b"x", Duration::from_millis(10)).unwrap_err(),
        ChannelError::Timeout
    );
    // `turn` holds neither side's value.
    for garbage in [0x5a5a_5a5a_5a5a_5a5bu64, 3, 4, u64::MAX] {
        map.write(TURN, &garbage).unwrap();
        assert!(
            matches!(s.try_recv(), Err(ChannelError::Corrupt(_))),
            "server, turn {garbage:#x}"
        );
        assert!(matches!(
            s.recv_timeout(DEADLINE),
            Err(ChannelError::Corrupt(_))
        ));
        assert!(
            matches!(
                c.call_timeout(b"y", DEADLINE),
                Err(ChannelError::Corrupt(_))
            ),
            "client, turn {garbage:#x}"
        );
    }
    // Back to the request: a garbage tag or length is Corrupt for the server, which
    // answers it with nothing so that neither side waits for ever.
    map.write(TURN, &1u64).unwrap();
    for (i, garbage) in [
        (rpc::TAG_REQUEST as u64) << 32 | 65,
        (rpc::TAG_REPLY as u64) << 32 | 1,
        0xdead_beef_0000_0001,
    ]
    .into_iter()
    .enumerate()
    {
        map.write(TAG_LEN, &garbage).unwrap();
        assert!(
            matches!(s.try_recv(), Err(ChannelError::Corrupt(_))),
            "server, tag-and-length {garbage:#x}"
        );
        let turn: u64 = map.read(TURN).unwrap();
        assert_eq!(turn, 2 + 2 * i as u64, "the garbage was answered");
        map.write(TURN, &(turn + 1)).unwrap();
    }
    // The client sees garbage in an answer: a reply longer than the limit, an unknown tag.
    for garbage in [
        (rpc::TAG_REPLY as u64) << 32 | 65,
        (rpc::TAG_REQUEST as u64) << 32 | 1,
        0xffff_ffff_ffff_ffff,
    ] {
        // Realign both sides on a fresh pair of ends.
        drop((s, c));
        map.write(TURN, &0u64).unwrap();
        s = Server::open(&name).unwrap();
        c = Client::open(&name).unwrap();
        assert_eq!(
            c.call_timeout(b"q", Duration::from_millis(10)).unwrap_err(),
            ChannelError::Timeout
        );
        s.try_recv().unwrap().reply(b"a").unwrap();
        map.write(TAG_LEN, &garbage).unwrap();
        assert!(
            matches!(
                c.call_timeout(b"r", DEADLINE),
                Err(ChannelError::Corrupt(_))
            ),
            "client, tag-and-length {garbage:#x}"
        );
    }
    assert!(rpc::describe(&map).is_ok());
}

#[test]
fn objects_with_a_bad_config_are_refused_by_name() {
    let (name, _g) = make("rpc_badcfg", 100);
    let path = format!("/dev/shm{name}");
    let orig = std::fs::read(&path).unwrap();
    let u64_at = |off: usize, v: u64| (off, v.to_le_bytes().to_vec());
    for (off, bytes) in [
        (0usize, vec![0xffu8]),                                 // magic
        (8, 1u16.to_le_bytes().to_vec()),                       // kind: an SPSC channel
        (10, (rpc::LAYOUT_VERSION + 1).to_le_bytes().to_vec()), // layout version
        (64, 0u32.to_le_bytes().to_vec()),                      // max_message 0
        (64, 200u32.to_le_bytes().to_vec()),                    // max_message without its slot
        u64_at(72, 64),                                         // slot size too small
        u64_at(72, 4096),                                       // slot size too large
        u64_at(72, u64::MAX),
    ] {
        let mut bad = orig.clone();
        bad[off..off + bytes.len()].copy_from_slice(&bytes);
        std::fs::write(&path, &bad).unwrap();
        for e in [
            Client::open(&name).map(drop).unwrap_err(),
            Server::open(&name).map(drop).unwrap_err(),
        ] {
            assert_eq!(e.kind(), ErrorKind::Corrupt, "byte {off}: {e}");
            assert!(e.to_string().contains(&name[1..]), "byte {off}: {e}");
        }
        let shm = PosixShm::open(&ShmName::new(&name).unwrap(), Access::ReadOnly).unwrap();
        assert!(rpc::describe(&shm.map().unwrap()).is_err(), "byte {off}");
    }
    std::fs::write(&path, &orig).unwrap();
    let _c = Client::open(&name).unwrap();
}

// ---- two-process stress -----------------------------------------------------------------

const STRESS_ENV: &str = "SHMKIT_RPC_STRESS";

/// Calls in the stress run: 200k in release builds, 20k in debug builds.
fn stress_count() -> u64 {
    support::env_count(
        STRESS_ENV,
        if cfg!(debug_assertions) {
            20_000
        } else {
            200_000
        },
    )
}

const STRESS_MAX: usize = 300;

#[test]
#[ignore = "child of stress_two_processes"]
fn child_stress_server() {
    if !support::is_child() {
        return;
    }
    let name = std::env::var("CHAN").unwrap();
    let count: u64 = std::env::var("COUNT").unwrap().parse().unwrap();
    let mut s = Server::open(&name).unwrap();
    let mut want = [0u8; STRESS_MAX];
    let mut out = [0u8; STRESS_MAX];
    let mut seq = 0u64;
    loop {
        match s.recv_timeout(Duration::from_secs(30)) {
            Ok(req) => {
                let want = &mut want[..request_len(seq, 0, STRESS_MAX)];
                fill_request(seq, want);
                assert_eq!(&*req, &*want, "request {seq}");
                let n = fill_reply(&req, STRESS_MAX, &mut out);
                req.reply(&out[..n]).unwrap();
                seq += 1;
            }
            Err(ChannelError::Disconnected) => break,
            Err(e) => panic!("after {seq} requests: {e}"),
        }
    }
    assert_eq!(seq, count);
}

#[test]
fn stress_two_processes() {
    let (name, _g) = make("rpc_stress", STRESS_MAX as u64);
    let count = stress_count();
    let mut c = Client::open(&name).unwrap();
    let count_s = count.to_string();
    let child = support::spawn_child(
        "rpc::child_stress_server",
        &[("CHAN", name.as_str()), ("COUNT", count_s.as_str())],
    );
    let mut guard = KillOnDrop(Some(child));
    let start = Instant::now();
    let mut req = [0u8; STRESS_MAX];
    for seq in 0..count {
        let req = &mut req[..request_len(seq, 0, STRESS_MAX)];
        fill_request(seq, req);
        let reply = c
            .call_timeout(req, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("call {seq}: {e}"));
        assert!(reply_is_right(req, &reply, STRESS_MAX), "reply {seq}");
    }
    let elapsed = start.elapsed();
    drop(c);
    let child = guard.0.take().unwrap();
    let out = support::wait_output(child, Duration::from_secs(30), "stress server");
    support::assert_success(&out, "stress server");
    assert_eq!(describe(&name).calls, count);
    eprintln!(
        "rpc stress: {count} calls in {elapsed:?} ({:.2} us per call)",
        elapsed.as_secs_f64() * 1e6 / count as f64
    );
}

/// A spawned child, killed and reaped on drop unless taken out first (a failed test
/// leaves no process behind).
struct KillOnDrop(Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// ---- crash tests ------------------------------------------------------------------------

const CRASH_ENV: &str = "SHMKIT_RPC_CRASHES";

/// Rounds of each crash test (each kills one process): 200 unless overridden.
fn crash_rounds() -> u32 {
    support::env_count(CRASH_ENV, 200)
}

/// The largest message of the crash tests.
const CRASH_MAX: usize = 200;

/// Serves requests for ever, checking each one: the body of a forked server child.
/// `pending` is the sequence number of a request a killed server left unanswered: it
/// must come first, unless that server was killed while writing its reply over it;
/// then the request is torn, answered as unanswered by this server without being
/// received, and the first one received is the client's next, `next`. Returns only on
/// a failure, with its exit code.
fn serve_checked(name: &str, pending: Option<u64>, next: u64, ready: &Ready) -> i32 {
    let Ok(mut s) = Server::open(name) else {
        return 3;
    };
    s.set_spin(100);
    ready.signal();
    let mut out = [0u8; CRASH_MAX];
    let mut first = true;
    loop {
        let Ok(req) = s.recv() else {
            return 4;
        };
        let Some(seq) = request_seq(&req) else {
            return 5;
        };
        if first && pending.is_some_and(|p| p != seq && seq != next) {
            return 6;
        }
        first = false;
        let n = fill_reply(&req, CRASH_MAX, &mut out);
        if req.reply(&out[..n]).is_err() {
            return 7;
        }
    }
}

#[test]
fn crash_server_at_random_points() {
    let lock = support::fork_lock();
    let (name, _g) = make("rpc_crash_srv", CRASH_MAX as u64);
    let mut c = Client::open(&name).unwrap();
    c.set_spin(100);
    let mut rng = support::Rng(0x5eed_4242_0000_0003 ^ std::process::id() as u64);
    let mut seq = 0u64; // the next request's sequence number
    let mut pending: Option<u64> = None;
    let mut answered = 0u64; // calls answered, as `turn / 2` counts them
    let mut req = [0u8; CRASH_MAX];
    let mut died = 0;
    for round in 0..crash_rounds() {
        let ready = Ready::new();
        let child = fork_guarded(&lock, || serve_checked(&name, pending, seq, &ready));
        assert!(ready.wait(), "round {round}: the server child did not open");
        let pid = child.pid();
        // Kill it after a random spin, wherever it is: waiting, reading the request,
        // writing the reply, or between the reply and the turn word.
        let spins = rng.next() % 200_000;
        let killer = std::thread::spawn(move || {
            for _ in 0..spins {
                std::hint::spin_loop();
            }
            // SAFETY: `pid` is our unreaped child (the main thread reaps it after
            // joining this thread).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        });
        // Call until the server is gone: every reply right, then PeerDied, never a
        // wrong reply, another error or a hang.
        loop {
            let req = &mut req[..request_len(seq, 8, CRASH_MAX)];
            fill_request(seq, req);
            match c.call_timeout(req, DEADLINE) {
                Ok(reply) => {
                    assert!(
                        reply_is_right(req, &reply, CRASH_MAX),
                        "round {round}: reply {seq}"
                    );
                    seq += 1;
                    // The answer to a pending request came first, then this one.
                    answered += 1 + pending.take().is_some() as u64;
                }
                Err(ChannelError::PeerDied(p)) => {
                    assert_eq!(p, pid as u32, "round {round}");
                    // A request stays out for the next server: this call's, or, if
                    // the server died before answering an earlier pending request,
                    // that one (this call then never sent its own). The count of
                    // answers in `turn` tells which.
                    let info = describe(&name);
                    assert!(info.pending, "round {round}");
                    if pending.is_some() && info.calls == answered {
                        // Still the earlier request.
                    } else {
                        answered += pending.is_some() as u64;
                        pending = Some(seq);
                    }
                    assert_eq!(info.calls, answered, "round {round}: answers counted");
                    seq += 1;
                    died += 1;
                    break;
                }
                Err(e) => {
                    killer.join().unwrap();
                    let status = child.kill();
                    panic!(
                        "round {round}: call {seq}: expected PeerDied, got {e} \
                         (server child status {status:#x})"
                    );
                }
            }
        }
        killer.join().unwrap();
        let status = child.kill();
        assert!(
            killed(status),
            "round {round}: the server child failed (status {status:#x})"
        );
    }
    assert_eq!(died, crash_rounds());
    // A last server answers the pending request and the client goes on.
    let ready = Ready::new();
    let child = fork_guarded(&lock, || serve_checked(&name, pending, seq, &ready));
    assert!(ready.wait());
    for _ in 0..10 {
        let req = &mut req[..request_len(seq, 8, CRASH_MAX)];
        fill_request(seq, req);
        let reply = c.call_timeout(req, DEADLINE).unwrap();
        assert!(reply_is_right(req, &reply, CRASH_MAX));
        seq += 1;
    }
    assert!(killed(child.kill()));
    eprintln!("rpc crash server: {died} kills, {seq} calls");
}

#[test]
fn crash_client_at_random_points() {
    let lock = support::fork_lock();
    let (name, _g) = make("rpc_crash_cli", CRASH_MAX as u64);
    let mut s = Server::open(&name).unwrap();
    s.set_spin(100);
    let mut rng = support::Rng(0x5eed_7777_0000_0004 ^ std::process::id() as u64);
    let mut next = 0u64; // the next request's sequence number
    let mut out = [0u8; CRASH_MAX];
    for round in 0..crash_rounds() {
        let ready = Ready::new();
        let first = next;
        let n2 = name.clone();
        // The child calls for ever from `first`, checking every reply.
        let child = fork_guarded(&lock, || {
            let Ok(mut c) = Client::open(&n2) else {
                return 3;
            };
            c.set_spin(100);
            ready.signal();
            let mut req = [0u8; CRASH_MAX];
            for seq in first.. {
                let req = &mut req[..request_len(seq, 8, CRASH_MAX)];
                fill_request(seq, req);
                match c.call(req) {
                    Ok(r) if reply_is_right(req, &r, CRASH_MAX) => {}
                    Ok(_) => return 5,
                    Err(_) => return 4,
                }
            }
            0
        });
        assert!(ready.wait(), "round {round}: the client child did not open");
        let pid = child.pid();
        // Answer a random number of calls, then kill the client wherever it is.
        let mut serve = |s: &mut Server, next: &mut u64| -> Result<(), ChannelError> {
            let req = s.recv_timeout(DEADLINE)?;
            let seq = request_seq(&req);
            assert_eq!(seq, Some(*next), "round {round}: a wrong request");
            *next += 1;
            let n = fill_reply(&req, CRASH_MAX, &mut out);
            req.reply(&out[..n])
        };
        for _ in 0..rng.next() % 40 {
            serve(&mut s, &mut next).unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
        for _ in 0..rng.next() % 20_000 {
            std::hint::spin_loop();
        }
        let status = child.kill();
        assert!(
            killed(status),
            "round {round}: the client child failed (status {status:#x})"
        );
        // A request the client published before it died is still answered; then the
        // server hears PeerDied once, and waits for a new client.
        loop {
            match serve(&mut s, &mut next) {
                Ok(()) => {}
                Err(ChannelError::PeerDied(p)) => {
                    assert_eq!(p, pid as u32, "round {round}");
                    break;
                }
                Err(e) => panic!("round {round}: expected PeerDied, got {e}"),
            }
        }
        assert_eq!(
            s.try_recv().unwrap_err(),
            ChannelError::Empty,
            "round {round}"
        );
        assert!(!describe(&name).pending, "round {round}");
    }
    // A last client in this process: its calls work.
    let mut c = Client::open(&name).unwrap();
    let t = std::thread::spawn(move || {
        let mut req = [0u8; CRASH_MAX];
        for seq in next..next + 10 {
            let req = &mut req[..request_len(seq, 8, CRASH_MAX)];
            fill_request(seq, req);
            let reply = c.call_timeout(req, DEADLINE).unwrap();
            assert!(reply_is_right(req, &reply, CRASH_MAX));
        }
    });
    for _ in 0..10 {
        let req = s.recv_timeout(DEADLINE).unwrap();
        let n = fill_reply(&req, CRASH_MAX, &mut out);
        req.reply(&out[..n]).unwrap();
    }
    t.join().unwrap();
    assert_eq!(
        s.recv_timeout(DEADLINE).unwrap_err(),
        ChannelError::Disconnected
    );
}

/// A server killed while it copies its reply over the request (the reply is written in
/// place) leaves the request half overwritten, with `turn` still saying "request": a
/// restarted server must not be handed those bytes as the pending request. The child
/// server leaves the slot as `Request::reply` does at that moment (the tag word marked
/// `TAG_ANSWERING`, the first bytes of the reply over the request) and dies.
#[test]
fn a_restarted_server_never_gets_a_request_torn_by_a_dying_reply() {
    let lock = support::fork_lock();
    let (name, _g) = make("rpc_torn", 64);
    let mut c = Client::open(&name).unwrap();
    assert_eq!(
        c.call_timeout(b"transfer 100 to alice", Duration::from_millis(10))
            .unwrap_err(),
        ChannelError::Timeout
    );
    let ready = Ready::new();
    let child = fork_guarded(&lock, || {
        let Ok(mut s) = Server::open(&name) else {
            return 3;
        };
        let Ok(req) = s.try_recv() else {
            return 4;
        };
        // The first bytes of the reply land over the request, then SIGKILL: no
        // destructor runs, as none would in a killed process.
        let Ok(shm) = PosixShm::open(&ShmName::new(&name).unwrap(), Access::ReadWrite) else {
            return 5;
        };
        let Ok(map) = shm.map() else {
            return 6;
        };
        let mark = (rpc::TAG_ANSWERING as u64) << 32;
        if map
            .write_at(rpc::SLOT_OFFSET + 8, &mark.to_le_bytes())
            .is_err()
            || map
                .write_at(rpc::SLOT_OFFSET + rpc::SLOT_HEADER, b"REFUSED!")
                .is_err()
        {
            return 7;
        }
        std::mem::forget(req);
        std::mem::forget(s);
        ready.signal();
        // SAFETY: raising a signal in our own process.
        unsafe { libc::raise(libc::SIGKILL) };
        8
    });
    assert!(ready.wait(), "the server child did not get the request");
    assert!(killed(child.kill()));
    let mut s = Server::open(&name).unwrap();
    // The torn request is answered as unanswered, never received.
    let got = s.try_recv().map(|req| req.to_vec());
    assert_eq!(got, Err(ChannelError::Empty), "a torn request was received");
    // The client's next call drops that answer and goes through.
    let t = std::thread::spawn(move || {
        let req = s.recv_timeout(Duration::from_secs(10)).map(|r| {
            let v = r.to_vec();
            let _ = r.reply(b"done");
            v
        });
        req
    });
    let reply = c
        .call_timeout(b"next", Duration::from_secs(10))
        .map(|r| r.to_vec());
    assert_eq!(reply.as_deref(), Ok(&b"done"[..]));
    assert_eq!(t.join().unwrap().as_deref(), Ok(&b"next"[..]));
}

/// A server looks at the client's sleep word at its next receive, not right after its
/// reply. A client that fell asleep waiting must still get an answer soon from a server
/// that answers and then neither receives nor drops: it looks again every REPLY_SLICE.
#[test]
fn a_sleeping_client_gets_its_answer_while_the_server_does_something_else() {
    let (name, _g) = make("rpc_owed_wake", 64);
    let mut server = Server::open(&name).unwrap();
    let mut client = Client::open(&name).unwrap();
    client.set_spin(0); // asleep at once
    let (go_on, hold) = std::sync::mpsc::channel::<()>();
    let shm = PosixShm::open(&ShmName::new(&name).unwrap(), Access::ReadWrite).unwrap();
    let map = shm.map().unwrap();
    let t = std::thread::spawn(move || {
        let req = server.recv_timeout(Duration::from_secs(10)).map(|r| {
            // Answer only once the client sleeps, so that only its own look can see it.
            let sleep = map.atomic_u32(rpc::CLIENT_SLEEP_OFFSET).unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            while sleep.load(std::sync::atomic::Ordering::Relaxed) == 0 {
                if Instant::now() > deadline {
                    return (false, Instant::now());
                }
                std::thread::yield_now();
            }
            let answered = Instant::now();
            (r.reply(b"late").is_ok(), answered)
        });
        // Neither receive nor drop until the test says so (or ten seconds pass).
        let held = hold.recv_timeout(Duration::from_secs(10)).is_ok();
        (req, held)
    });
    let reply = client
        .call_timeout(b"ping", Duration::from_secs(5))
        .map(|r| r.to_vec());
    let woke = Instant::now();
    assert_eq!(reply.as_deref(), Ok(&b"late"[..]));
    go_on.send(()).unwrap();
    let (req, held) = t.join().unwrap();
    let (replied, answered) = req.unwrap();
    assert!(replied && held);
    // Within a few REPLY_SLICE naps, not a liveness slice (50 ms).
    let since_answer = woke.saturating_duration_since(answered);
    assert!(
        since_answer < Duration::from_millis(25),
        "the sleeping client saw the answer only after {since_answer:?}"
    );
}
