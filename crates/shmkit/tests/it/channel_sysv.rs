//! SPSC channels in System V segments: a round trip in one process, a two-process
//! exchange, a killed sender, and the clean-up guard.

use std::time::Duration;

use shmkit::channel::{self, ChannelError, Options, Receiver, Sender};
use shmkit::sysv::{Key, Segment};
use shmkit::ErrorKind;

use crate::support;

/// Removes the channel segment on drop, also when the test panics.
struct SysvGuard(i32);

impl Drop for SysvGuard {
    fn drop(&mut self) {
        let _ = channel::remove_sysv(self.0);
    }
}

/// A spawned child test, killed and reaped on drop so none outlives a failed test.
struct KillOnDrop(Option<std::process::Child>);

impl KillOnDrop {
    /// Kills it (SIGKILL) and reaps it now; returns its pid.
    fn kill(&mut self) -> u32 {
        let mut child = self.0.take().expect("child");
        let pid = child.id();
        child.kill().expect("kill child");
        child.wait().expect("reap child");
        pid
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0.is_some() {
            self.kill();
        }
    }
}

fn small() -> Options {
    Options {
        capacity: 4096,
        max_message: 256,
        mode: 0o600,
        ..Options::default()
    }
}

/// Message `i`: its index, then a few bytes derived from it.
fn message(i: u64) -> Vec<u8> {
    let mut m = i.to_le_bytes().to_vec();
    m.extend((0..(i % 50) as u8).map(|b| b ^ i as u8));
    m
}

#[test]
fn round_trip_in_one_process() {
    let id = channel::create_sysv(Key::PRIVATE, &small()).expect("create_sysv");
    let _g = SysvGuard(id);
    assert_eq!(Segment::from_id(id).unwrap().info().unwrap().mode, 0o600);
    let mut tx = Sender::open_sysv(id).unwrap();
    let mut rx = Receiver::open_sysv(id).unwrap();
    assert_eq!(tx.name(), format!("id {id}"));
    assert_eq!(rx.try_recv(), Err(ChannelError::Empty));
    // One sender at a time, as with POSIX objects.
    assert_eq!(
        Sender::open_sysv(id).unwrap_err().kind(),
        ErrorKind::AlreadyExists
    );
    tx.send(b"hello").unwrap();
    let mut loan = tx.loan(5).unwrap();
    loan.copy_from_slice(b"world");
    loan.commit();
    tx.send_value(&7u64).unwrap();
    assert_eq!(rx.recv().unwrap(), b"hello");
    assert_eq!(&*rx.recv_ref().unwrap(), b"world");
    assert_eq!(rx.recv_value::<u64>().unwrap(), 7);
    // Wrap the ring a few times.
    for i in 0..500 {
        tx.send(&message(i)).unwrap();
        assert_eq!(rx.recv().unwrap(), message(i));
    }
    drop(tx);
    assert_eq!(rx.recv(), Err(ChannelError::Disconnected));
}

#[test]
fn keys_are_exclusive_and_non_channels_are_refused() {
    let key = Key::new(support::unique_key());
    let id = channel::create_sysv(key, &small()).expect("create_sysv");
    let _g = SysvGuard(id);
    assert_eq!(Segment::open(key).unwrap().id(), id);
    assert_eq!(
        channel::create_sysv(key, &small()).unwrap_err().kind(),
        ErrorKind::AlreadyExists
    );
    let mpsc = Options {
        kind: channel::Kind::Mpsc { lanes: 2 },
        ..small()
    };
    assert_eq!(
        channel::create_sysv(Key::PRIVATE, &mpsc)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    // A zeroed segment of channel size is no channel.
    let plain = Segment::create(Key::PRIVATE, 64 * 1024).unwrap();
    let _p = SysvGuard(plain.id());
    let err = Receiver::open_sysv(plain.id()).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Corrupt | ErrorKind::TimedOut),
        "{err}"
    );
}

#[test]
fn the_guard_removes_the_segment_even_on_panic() {
    let id = channel::create_sysv(Key::PRIVATE, &small()).expect("create_sysv");
    let panicked = std::panic::catch_unwind(|| {
        let _g = SysvGuard(id);
        let _tx = Sender::open_sysv(id).unwrap();
        panic!("deliberate");
    });
    assert!(panicked.is_err());
    assert!(Segment::from_id(id).is_err(), "segment {id} survived");
}

#[test]
#[ignore = "child of two_processes_exchange"]
fn child_sysv_sender() {
    if !support::is_child() {
        return;
    }
    let id: i32 = std::env::var("CHAN_ID").unwrap().parse().unwrap();
    let count: u64 = std::env::var("COUNT").unwrap().parse().unwrap();
    let mut tx = Sender::open_sysv(id).unwrap();
    for i in 0..count {
        tx.send_timeout(&message(i), Duration::from_secs(20))
            .unwrap();
    }
    if std::env::var_os("HANG").is_some() {
        // Leave a loan half written and wait to be killed.
        let mut loan = tx.loan(16).unwrap();
        loan[..4].copy_from_slice(b"torn");
        loop {
            std::thread::park();
        }
    }
}

#[test]
fn two_processes_exchange() {
    let id = channel::create_sysv(Key::PRIVATE, &small()).expect("create_sysv");
    let _g = SysvGuard(id);
    let mut rx = Receiver::open_sysv(id).unwrap();
    let (id_s, count) = (id.to_string(), 5000u64);
    let count_s = count.to_string();
    let child = support::spawn_child(
        "channel_sysv::child_sysv_sender",
        &[("CHAN_ID", id_s.as_str()), ("COUNT", count_s.as_str())],
    );
    let mut next = 0u64;
    loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(m) => {
                assert_eq!(m, message(next));
                next += 1;
            }
            Err(ChannelError::Disconnected) => break,
            Err(e) => panic!("after {next} messages: {e}"),
        }
    }
    let out = support::wait_output(child, Duration::from_secs(30), "sysv sender");
    support::assert_success(&out, "sysv sender");
    assert_eq!(next, count);
}

#[test]
fn a_killed_sender_leaves_every_committed_message() {
    let id = channel::create_sysv(Key::PRIVATE, &small()).expect("create_sysv");
    let _g = SysvGuard(id);
    let mut rx = Receiver::open_sysv(id).unwrap();
    rx.set_spin(100);
    let count = 300u64;
    let count_s = count.to_string();
    let id_s = id.to_string();
    let mut child = KillOnDrop(Some(support::spawn_child(
        "channel_sysv::child_sysv_sender",
        &[
            ("CHAN_ID", id_s.as_str()),
            ("COUNT", count_s.as_str()),
            ("HANG", "1"),
        ],
    )));
    // Receive all but the last few while the sender runs, then kill it: it is sending
    // the rest, or holding its half-written loan.
    let mut next = 0u64;
    while next < count - 5 {
        let m = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("after {next} messages: {e}"));
        assert_eq!(m, message(next));
        next += 1;
    }
    let pid = child.kill();
    loop {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(m) => {
                assert_eq!(m, message(next), "never a torn or foreign message");
                next += 1;
            }
            Err(ChannelError::PeerDied(p)) => {
                assert_eq!(p, pid);
                break;
            }
            Err(e) => panic!("after {next} messages: expected PeerDied, got {e}"),
        }
    }
    assert!(next >= count - 5 && next <= count, "{next} messages");
}
