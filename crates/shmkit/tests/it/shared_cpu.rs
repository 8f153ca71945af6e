//! Channel ends that share one CPU: a waiter whose peer last ran on its own CPU sleeps
//! at once instead of spinning, since the peer cannot run until it stops. Each test
//! pins two threads to one CPU, gives every end a spin budget of seconds, and plays
//! round trips; what it checks is the CPU time the two threads used, which load on the
//! machine does not inflate the way it inflates wall time. Spinning ends would burn a
//! scheduler slice (milliseconds) per hand-over.

use std::sync::Barrier;
use std::time::Duration;

use shmkit::channel::broadcast::{Mode, Publisher, Subscriber};
use shmkit::channel::rpc::{self, Client, Server};
use shmkit::channel::{self, mpsc, ChannelError, Kind, Options, Receiver, Sender};

use crate::support::{self, PosixGuard};

/// Round trips per test.
const TRIPS: u64 = 200;
/// Polls before sleeping: far more than a scheduler slice's worth.
const SPIN: u32 = 200_000_000;
/// CPU time both threads may use for all round trips together: hand-overs through
/// sleeping cost microseconds each, spinning ones a slice (0.75 ms or more) each.
const CPU_LIMIT: Duration = Duration::from_millis(100);

/// The first CPU this process may run on.
fn first_allowed_cpu() -> usize {
    // SAFETY: sched_getaffinity writes at most size_of::<cpu_set_t>() bytes into `set`.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set),
            0
        );
        (0..libc::CPU_SETSIZE as usize)
            .find(|&c| libc::CPU_ISSET(c, &set))
            .expect("an allowed CPU")
    }
}

/// Pins the calling thread to `cpu`.
fn pin(cpu: usize) {
    // SAFETY: sched_setaffinity reads size_of::<cpu_set_t>() bytes from `set`.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        assert_eq!(
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set),
            0
        );
    }
}

/// CPU time the calling thread has used.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Runs `a` and `b` on two threads pinned to one CPU, both starting together after
/// their set-up (the part before `go.wait()`), and returns the CPU time both used.
fn on_one_cpu(a: impl FnOnce(&Barrier) + Send, b: impl FnOnce(&Barrier) + Send) -> Duration {
    let cpu = first_allowed_cpu();
    let go = Barrier::new(2);
    let timed = |f: Box<dyn FnOnce(&Barrier) + Send + '_>| {
        pin(cpu);
        let t0 = thread_cpu_time();
        f(&go);
        thread_cpu_time() - t0
    };
    std::thread::scope(|s| {
        let ta = s.spawn(|| timed(Box::new(a)));
        let tb = s.spawn(|| timed(Box::new(b)));
        ta.join().expect("thread a") + tb.join().expect("thread b")
    })
}

fn check(what: &str, used: Duration) {
    assert!(
        used < CPU_LIMIT,
        "{what}: {TRIPS} round trips on one CPU used {used:?} of CPU time (limit \
         {CPU_LIMIT:?}): the ends spin while their peer waits for the CPU"
    );
}

/// Creates a channel of `kind` with a unique name and a guard removing it.
fn make(tag: &str, kind: Kind) -> (String, PosixGuard) {
    let name = format!("/{}", support::unique_name(tag));
    channel::create(
        &name,
        &Options {
            capacity: 4096,
            max_message: 64,
            kind,
            ..Options::default()
        },
    )
    .expect("create channel");
    let guard = PosixGuard(name.clone());
    (name, guard)
}

/// Plays [`TRIPS`] round trips on one CPU through two channels of `$kind`, whose ends
/// are `$tx` and `$rx` (they share no trait: hence a macro), and checks the CPU time.
macro_rules! round_trips_on_one_cpu {
    ($what:literal, $kind:expr, $tx:ty, $rx:ty) => {{
        let (req, _g1) = make(concat!("cpu_", $what, "_req"), $kind);
        let (rep, _g2) = make(concat!("cpu_", $what, "_rep"), $kind);
        let used = on_one_cpu(
            |go| {
                let mut tx = <$tx>::open(&req).unwrap();
                let mut rx = <$rx>::open(&rep).unwrap();
                tx.set_spin(SPIN);
                rx.set_spin(SPIN);
                go.wait();
                for i in 0..TRIPS {
                    tx.send(&i.to_le_bytes()).unwrap();
                    assert_eq!(rx.recv().unwrap(), i.to_le_bytes());
                }
            },
            |go| {
                let mut rx = <$rx>::open(&req).unwrap();
                let mut tx = <$tx>::open(&rep).unwrap();
                tx.set_spin(SPIN);
                rx.set_spin(SPIN);
                go.wait();
                for _ in 0..TRIPS {
                    let m = rx.recv().unwrap();
                    tx.send(&m).unwrap();
                }
            },
        );
        check($what, used);
    }};
}

#[test]
fn spsc_ends_on_one_cpu_sleep_instead_of_spinning() {
    round_trips_on_one_cpu!("spsc", Kind::Spsc, Sender, Receiver);
}

#[test]
fn mpsc_ends_on_one_cpu_sleep_instead_of_spinning() {
    // Two lanes, one of them never claimed: a lane without a producer does not count.
    let kind = Kind::Mpsc { lanes: 2 };
    round_trips_on_one_cpu!("mpsc", kind, mpsc::Sender, mpsc::Receiver);
}

#[test]
fn broadcast_ends_on_one_cpu_sleep_instead_of_spinning() {
    let kind = Kind::Broadcast {
        subscribers: 2,
        mode: Mode::Backpressure,
    };
    round_trips_on_one_cpu!("broadcast", kind, Publisher, Subscriber);
}

#[test]
fn rpc_ends_on_one_cpu_sleep_instead_of_spinning() {
    let name = format!("/{}", support::unique_name("cpu_rpc"));
    rpc::create(&name, 64, 0o600).expect("create rpc channel");
    let _g = PosixGuard(name.clone());
    let used = on_one_cpu(
        |go| {
            let mut client = Client::open(&name).unwrap();
            client.set_spin(SPIN);
            go.wait();
            for i in 0..TRIPS {
                let reply = client.call(&i.to_le_bytes()).unwrap();
                assert_eq!(&reply[..], i.to_le_bytes());
            }
        },
        |go| {
            let mut server = Server::open(&name).unwrap();
            server.set_spin(SPIN);
            go.wait();
            for _ in 0..TRIPS {
                let req = server.recv().unwrap();
                let m = req.to_vec();
                req.reply(&m).unwrap();
            }
        },
    );
    check("rpc", used);
}

#[test]
fn a_killed_peer_on_the_same_cpu_is_noticed_within_milliseconds() {
    // A waiter whose peer shares its CPU skips the /proc read before its first sleep,
    // but that read is also how a killed peer is noticed: the first sleep is kept
    // short, so that the death shows within milliseconds, not a whole liveness slice
    // (50 ms).
    pin(first_allowed_cpu()); // the forked child inherits this thread's CPU
    let (name, _g) = make("cpu_spsc_kill", Kind::Spsc);
    let mut rx = Receiver::open(&name).unwrap();
    let lock = support::fork_lock();
    let n2 = name.clone();
    let child = support::fork_guarded(&lock, move || {
        let Ok(mut tx) = Sender::open(&n2) else {
            return 3;
        };
        if tx.send(b"hello").is_err() {
            return 4;
        }
        // Until killed: nothing more to send.
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let pid = child.pid();
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), b"hello");
    child.kill();
    let t0 = std::time::Instant::now();
    let got = rx.recv_timeout(Duration::from_secs(10));
    let took = t0.elapsed();
    assert_eq!(got, Err(ChannelError::PeerDied(pid as u32)));
    assert!(
        took < Duration::from_millis(25),
        "the dead sender was noticed after {took:?}"
    );
}
