//! MPSC channels: lanes, fairness, end of stream, a multi-process stress run with
//! sequence numbers and checksums, producers killed at random points, corruption.

use std::time::{Duration, Instant};

use shmkit::channel::{self, mpsc, ChannelError, Kind, Options};
use shmkit::ErrorKind;

use crate::support::{self, fork_guarded, Forked, PosixGuard, Ready};

/// Creates an MPSC channel with a unique name and a guard removing it.
fn make(tag: &str, lanes: u32, capacity: u64, max_message: u64) -> (String, PosixGuard) {
    let name = format!("/{}", support::unique_name(tag));
    channel::create(
        &name,
        &Options {
            capacity,
            max_message,
            kind: Kind::Mpsc { lanes },
            ..Options::default()
        },
    )
    .expect("create mpsc channel");
    let guard = PosixGuard(name.clone());
    (name, guard)
}

#[test]
fn mpsc_lanes_fairness_loans_and_end() {
    let (name, _g) = make("mpsc_rt", 3, 1024, 100);
    let mut rx = mpsc::Receiver::open(&name).unwrap();
    assert_eq!(rx.lanes(), 3);
    assert_eq!(rx.try_recv(), Err(ChannelError::Empty));
    let mut txs: Vec<_> = (0..3).map(|_| mpsc::Sender::open(&name).unwrap()).collect();
    let lanes: Vec<_> = txs.iter().map(|t| t.lane()).collect();
    assert_eq!(lanes, [0, 1, 2]);
    let e = mpsc::Sender::open(&name).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    assert_eq!(
        mpsc::Receiver::open(&name).unwrap_err().kind(),
        ErrorKind::AlreadyExists
    );
    // Lane 0 is busy, the others send one each: round robin still serves all.
    for i in 0..4u8 {
        txs[0].send(&[0, i]).unwrap();
    }
    txs[1].send(&[1, 0]).unwrap();
    let mut loan = txs[2].loan(10).unwrap();
    loan[..2].copy_from_slice(&[2, 0]);
    loan.commit_len(2);
    let got: Vec<Vec<u8>> = (0..6).map(|_| rx.recv().unwrap()).collect();
    assert_eq!(got[..3], [vec![0, 0], vec![1, 0], vec![2, 0]]);
    assert_eq!(got[3..], [vec![0, 1], vec![0, 2], vec![0, 3]]);
    txs[1].send_value(&7u64).unwrap();
    assert_eq!(rx.recv_value::<u64>().unwrap(), 7);
    assert_eq!(
        txs[1].send(&[0; 101]),
        Err(ChannelError::TooLarge { len: 101, max: 100 })
    );
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(20)),
        Err(ChannelError::Timeout)
    );
    match channel::info_any(&name).unwrap() {
        channel::AnyInfo::Mpsc(i) => {
            assert_eq!(i.lanes.len(), 3);
            assert!(i.lanes.iter().all(|l| l.producer.is_some() && l.used == 0));
            assert_eq!(i.receiver.unwrap().pid, std::process::id());
        }
        other => panic!("not MPSC: {other:?}"),
    }
    // A closed lane is reused; the end comes when every producer has gone.
    txs[2].send(b"last").unwrap();
    drop(txs.pop());
    let again = mpsc::Sender::open(&name).unwrap();
    assert_eq!(again.lane(), 2);
    drop(again);
    drop(txs);
    assert_eq!(rx.recv().unwrap(), b"last");
    assert_eq!(rx.recv(), Err(ChannelError::Disconnected));
    // Then it waits for new producers.
    assert_eq!(rx.try_recv(), Err(ChannelError::Empty));
    let mut tx = mpsc::Sender::open(&name).unwrap();
    tx.send(b"new").unwrap();
    assert_eq!(rx.recv().unwrap(), b"new");
}

#[test]
fn mpsc_full_lane_blocks_only_its_producer() {
    let (name, _g) = make("mpsc_full", 2, 64, 16);
    let mut rx = mpsc::Receiver::open(&name).unwrap();
    let mut a = mpsc::Sender::open(&name).unwrap();
    let mut b = mpsc::Sender::open(&name).unwrap();
    while a.try_send(&[1; 16]).is_ok() {}
    assert_eq!(a.try_send(&[1; 16]), Err(ChannelError::Full));
    assert_eq!(
        a.send_timeout(&[1; 16], Duration::from_millis(10)),
        Err(ChannelError::Timeout)
    );
    b.try_send(b"b").unwrap();
    // Wrap around many times in both lanes.
    for round in 0..200u32 {
        let _ = a.try_send(&round.to_le_bytes());
        let _ = b.try_send(&vec![2; 1 + round as usize % 16]);
        for _ in 0..2 {
            let _ = rx.try_recv();
        }
    }
}

/// Sends 8-byte messages until the lane is full; returns how many fit.
fn burst(tx: &mut mpsc::Sender, first: u64) -> u64 {
    let mut n = 0;
    while tx.try_send_value(&(first + n)).is_ok() {
        n += 1;
        assert!(n < 1 << 20, "the lane never filled");
    }
    n
}

/// As the SPSC test `a_burst_after_the_receiver_kept_up_gets_the_whole_ring`, per lane:
/// a lane the receiver kept empty holds its whole capacity when the receiver stops,
/// also a lane that was idle while the receiver waited for another (the receiver
/// announces its wait on every lane and withdraws it from all but the one it took a
/// message from). An 8-byte message takes 32 bytes.
#[test]
fn mpsc_a_burst_after_the_receiver_kept_up_gets_the_whole_lane() {
    const RING: u64 = 64 << 10;
    let (name, _g) = make("mpsc_burst", 2, RING, 64);
    let mut rx = mpsc::Receiver::open(&name).unwrap();
    let mut a = mpsc::Sender::open(&name).unwrap();
    let mut b = mpsc::Sender::open(&name).unwrap();
    // Lane b: one window of messages, each taken at once, so its next message starts
    // a new window of an empty ring.
    for i in 0..128u64 {
        b.try_send_value(&i).unwrap();
        assert_eq!(rx.try_recv_value::<u64>(), Ok(i));
    }
    // Lane a: a receiver in another thread waits for each message.
    let (ack_tx, ack_rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        for i in 0..3072u64 {
            assert_eq!(rx.recv_value::<u64>(), Ok(i));
            ack_tx.send(()).unwrap();
        }
        rx
    });
    for i in 0..3072u64 {
        a.send_value(&i).unwrap();
        ack_rx.recv().unwrap();
    }
    let mut rx = t.join().unwrap();
    for (lane, tx) in [("a", &mut a), ("b", &mut b)] {
        let n = burst(tx, 1 << 32);
        assert!(
            n >= RING / 32 - 1,
            "lane {lane}: only {n} of {} fit",
            RING / 32
        );
        for i in 0..n {
            assert_eq!(rx.try_recv_value::<u64>(), Ok((1 << 32) + i), "lane {lane}");
        }
    }
    assert_eq!(rx.try_recv(), Err(ChannelError::Empty));
}

/// A message: producer id (u32), sequence (u64), payload of `seq`-derived length,
/// then a checksum (u64) over everything before it.
fn encode(id: u32, seq: u64, max: usize) -> Vec<u8> {
    let len = 12 + (seq.wrapping_mul(2654435761) % (max as u64 - 20 + 1)) as usize;
    let mut v = Vec::with_capacity(len + 8);
    v.extend_from_slice(&id.to_le_bytes());
    v.extend_from_slice(&seq.to_le_bytes());
    while v.len() < len {
        v.push((seq as u8).wrapping_add(v.len() as u8));
    }
    let sum = checksum(&v);
    v.extend_from_slice(&sum.to_le_bytes());
    v
}

fn checksum(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
        (h ^ x as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// Checks a message; returns (producer id, sequence).
fn decode(m: &[u8]) -> (u32, u64) {
    assert!(m.len() >= 20, "short message ({} bytes)", m.len());
    let (body, sum) = m.split_at(m.len() - 8);
    assert_eq!(
        checksum(body),
        u64::from_le_bytes(sum.try_into().unwrap()),
        "checksum"
    );
    (
        u32::from_le_bytes(m[..4].try_into().unwrap()),
        u64::from_le_bytes(m[4..12].try_into().unwrap()),
    )
}

#[test]
fn mpsc_stress_several_producer_processes() {
    let lock = support::fork_lock();
    let lock = &lock;
    let producers = support::env_count::<u64>("SHMKIT_MPSC_PRODUCERS", 3) as u32;
    let per = support::env_count::<u64>("SHMKIT_MPSC_MESSAGES", 400_000);
    let (name, _g) = make("mpsc_stress", producers, 4096, 300);
    let mut rx = mpsc::Receiver::open(&name).unwrap();
    rx.set_spin(200);
    let children: Vec<Forked> = (0..producers)
        .map(|id| {
            let n = name.clone();
            fork_guarded(lock, move || {
                let Ok(mut tx) = mpsc::Sender::open(&n) else {
                    return 3;
                };
                tx.set_spin(200);
                for seq in 0..per {
                    let m = encode(id, seq, 300);
                    let sent = if seq % 3 == 0 {
                        tx.loan(m.len()).map(|mut l| {
                            l.copy_from_slice(&m);
                            l.commit()
                        })
                    } else {
                        tx.send(&m)
                    };
                    if sent.is_err() {
                        return 4;
                    }
                }
                0
            })
        })
        .collect();
    let mut next = vec![0u64; producers as usize];
    let total = producers as u64 * per;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = 0;
    while got < total {
        assert!(
            Instant::now() < deadline,
            "stress: only {got} of {total} messages"
        );
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(m) => {
                let (id, seq) = decode(&m);
                assert_eq!(seq, next[id as usize], "producer {id} out of order");
                next[id as usize] += 1;
                got += 1;
            }
            // A producer that finished before another opened ends a stream: go on.
            Err(ChannelError::Disconnected) => {}
            Err(e) => panic!("recv after {got} messages: {e}"),
        }
    }
    for c in children {
        assert_eq!(c.join(Duration::from_secs(10)), Some(0));
    }
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)),
        Err(ChannelError::Disconnected)
    );
}

#[test]
fn mpsc_crash_producers_at_random_points() {
    let lock = support::fork_lock();
    let lock = &lock;
    let rounds = support::env_count::<u64>("SHMKIT_MPSC_CRASH_ROUNDS", 60);
    let (name, _g) = make("mpsc_crash", 2, 2048, 200);
    let mut rx = mpsc::Receiver::open(&name).unwrap();
    rx.set_spin(100);
    let mut rng = support::Rng(0x9e37_79b9_7f4a_7c15u64 ^ std::process::id() as u64);
    let mut step = move || rng.next();
    let mut deaths = 0;
    for round in 0..rounds {
        // Two producers per round: one finishes normally, one is killed.
        let ids = [2 * round as u32, 2 * round as u32 + 1];
        let quota = 1 + step() % 50;
        let kids: Vec<Forked> = ids
            .iter()
            .map(|&id| {
                let n = name.clone();
                let limit = if id % 2 == 0 { quota } else { u64::MAX };
                fork_guarded(lock, move || {
                    let Ok(mut tx) = mpsc::Sender::open(&n) else {
                        return 3;
                    };
                    tx.set_spin(50);
                    let mut seq = 0;
                    while seq < limit {
                        if tx.send(&encode(id, seq, 200)).is_err() {
                            return 4;
                        }
                        seq += 1;
                    }
                    0
                })
            })
            .collect();
        let mut next = [0u64; 2];
        let kill_after = step() % 40;
        let mut kids = kids.into_iter();
        let finisher = kids.next().unwrap();
        let victim = kids.next().unwrap();
        let mut victim = Some(victim);
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut ended_after_kill = false;
        let mut saw_death = false;
        while !ended_after_kill || next[0] < quota {
            assert!(
                Instant::now() < deadline,
                "round {round}: stuck at {next:?}"
            );
            if next[1] >= kill_after {
                if let Some(v) = victim.take() {
                    v.kill();
                }
            }
            match rx.recv_timeout(Duration::from_secs(5)) {
                Ok(m) => {
                    let (id, seq) = decode(&m);
                    let k = (id - ids[0]) as usize;
                    assert!(k < 2, "round {round}: a message from producer {id}");
                    assert_eq!(seq, next[k], "round {round}: producer {id}");
                    next[k] += 1;
                }
                Err(ChannelError::PeerDied(_)) => saw_death = true,
                Err(ChannelError::Disconnected) => ended_after_kill |= victim.is_none(),
                Err(ChannelError::Timeout) if victim.is_some() => {
                    // The victim is blocked on a full lane: kill it now.
                    victim.take().unwrap().kill();
                }
                Err(e) => panic!("round {round}: {e}"),
            }
        }
        assert_eq!(finisher.join(Duration::from_secs(10)), Some(0));
        deaths += saw_death as u32;
        // Nothing left over.
        let left = rx.try_recv();
        assert!(
            matches!(
                left,
                Err(ChannelError::Empty | ChannelError::Disconnected | ChannelError::PeerDied(_))
            ),
            "round {round}: left over {left:?}"
        );
    }
    assert!(
        deaths > 0,
        "no producer death was reported in {rounds} rounds"
    );
}

#[test]
fn mpsc_corrupt_objects_give_errors() {
    use shmkit::posix::{Access, PosixShm, ShmName};
    use shmkit::region::{Region, RegionExt};
    let (name, _g) = make("mpsc_corrupt", 2, 256, 32);
    let shm = PosixShm::open(&ShmName::new(&name).unwrap(), Access::ReadWrite).unwrap();
    let map = shm.map().unwrap();
    let original = map.read_vec(0, 1024).unwrap();
    // Config fields.
    for (off, val) in [(76u64, 0u32), (76, 1000), (72, 1 << 31), (64, 3), (88, 7)] {
        map.write_at(off as usize, &original[off as usize..off as usize + 4])
            .unwrap();
        map.write(off as usize, &val).unwrap();
        let e = mpsc::Receiver::open(&name).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "offset {off}: {e}");
        assert!(channel::info_any(&name).is_err());
        map.write_at(0, &original[..1024]).unwrap();
    }
    // Garbage records in a lane: Corrupt, never a panic or a hang. A record is a
    // stamp (documented: ((position >> 3) ^ stamp_key) * 0x9e3779b97f4a7c15) and a
    // kind-and-length word; a stamp that is right, then garbage after it.
    let mut rx = mpsc::Receiver::open(&name).unwrap();
    let lane1 = mpsc::LANES_OFFSET + (mpsc::LANE_HEADER + 256);
    let lane1_ring = lane1 + mpsc::LANE_HEADER;
    let key: u64 = map.read(96).unwrap();
    map.write(lane1_ring, &key.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .unwrap();
    for word in [
        u64::MAX,
        0xdead_beef_0000_0001,
        (u32::from_le_bytes(*b"MSG\0") as u64) << 32 | 999,
    ] {
        map.write(lane1_ring + 8, &word).unwrap();
        assert!(
            matches!(
                rx.recv_timeout(Duration::from_millis(200)),
                Err(ChannelError::Corrupt(_))
            ),
            "word {word:#x}"
        );
    }
    // A stamp overwritten under a `head` that covers its record: Corrupt on the slow
    // poll rather than a wait for ever.
    map.write(lane1_ring, &0u64).unwrap();
    map.write(lane1 + mpsc::LANE_HEAD, &24u64).unwrap();
    assert!(matches!(
        rx.recv_timeout(Duration::from_millis(200)),
        Err(ChannelError::Corrupt(_))
    ));
    map.write(lane1 + mpsc::LANE_HEAD, &0u64).unwrap();
    assert_eq!(rx.try_recv(), Err(ChannelError::Empty));
    // Garbage positions: the next opener refuses them.
    drop(rx);
    map.write(mpsc::LANES_OFFSET + mpsc::LANE_TAIL, &12345u64)
        .unwrap();
    assert_eq!(
        mpsc::Receiver::open(&name).unwrap_err().kind(),
        ErrorKind::Corrupt
    );
    // Random bytes over the whole header region: errors or a working channel, never a
    // panic; every wait ends.
    let mut rng = support::Rng(0x1234_5678_9abc_def1);
    for i in 0..300 {
        map.write_at(0, &original[..1024]).unwrap();
        for _ in 0..1 + i % 8 {
            let x = rng.next();
            let off = (x % 2048) as usize;
            if (28..32).contains(&off) {
                // The ready word: an opener waits (2 s) for a creator still at work.
                continue;
            }
            map.write_at(off, &[(x >> 40) as u8]).unwrap();
        }
        let _ = channel::info_any(&name);
        if let Ok(mut rx) = mpsc::Receiver::open(&name) {
            let _ = rx.recv_timeout(Duration::from_millis(1));
        }
        if let Ok(mut tx) = mpsc::Sender::open(&name) {
            let _ = tx.send_timeout(b"x", Duration::from_millis(1));
        }
    }
}

// ---------------------------------------------------------------------------------
// Broadcast
// ---------------------------------------------------------------------------------

use shmkit::channel::broadcast::{self, Mode, Publisher, Subscriber};

/// Creates a broadcast channel with a unique name and a guard removing it.
fn make_bc(tag: &str, subscribers: u32, mode: Mode, slots: u64, max: u64) -> (String, PosixGuard) {
    let name = format!("/{}", support::unique_name(tag));
    let slot = 16 + max.div_ceil(8) * 8;
    channel::create(
        &name,
        &Options {
            capacity: slots * slot,
            max_message: max,
            kind: Kind::Broadcast { subscribers, mode },
            ..Options::default()
        },
    )
    .expect("create broadcast channel");
    let guard = PosixGuard(name.clone());
    (name, guard)
}

#[test]
fn broadcast_backpressure_join_leave_and_end() {
    let (name, _g) = make_bc("bc_bp", 3, Mode::Backpressure, 4, 64);
    let mut tx = Publisher::open(&name).unwrap();
    assert_eq!(
        Publisher::open(&name).unwrap_err().kind(),
        ErrorKind::AlreadyExists
    );
    // Nobody listens: nothing holds the publisher back.
    for i in 0..10u8 {
        tx.try_send(&[i]).unwrap();
    }
    let mut a = Subscriber::open(&name).unwrap();
    let mut b = Subscriber::open(&name).unwrap();
    assert_ne!(a.slot(), b.slot());
    assert_eq!(a.try_recv(), Err(ChannelError::Empty));
    for i in 0..4u8 {
        tx.try_send(&[i]).unwrap();
    }
    assert_eq!(tx.try_send(b"x"), Err(ChannelError::Full));
    for i in 0..4u8 {
        assert_eq!(a.recv().unwrap(), [i]);
    }
    // b has read nothing: still full.
    assert_eq!(
        tx.send_timeout(b"x", Duration::from_millis(20)),
        Err(ChannelError::Timeout)
    );
    assert_eq!(b.recv().unwrap(), [0]);
    let mut loan = tx.try_loan(8).unwrap();
    loan.copy_from_slice(b"loanloan");
    loan.commit_len(4);
    // b leaves: it no longer holds the publisher back.
    drop(b);
    tx.send_value(&42u32).unwrap();
    assert_eq!(
        tx.send(&[0; 65]),
        Err(ChannelError::TooLarge { len: 65, max: 64 })
    );
    assert_eq!(a.recv().unwrap(), b"loan");
    assert_eq!(a.recv_value::<u32>().unwrap(), 42);
    match channel::info_any(&name).unwrap() {
        channel::AnyInfo::Broadcast(i) => {
            assert_eq!(i.mode, Mode::Backpressure);
            assert_eq!(i.subscribers.len(), 1);
            assert_eq!(i.subscribers[0].behind, 0);
            assert_eq!(i.publisher.unwrap().pid, std::process::id());
            assert_eq!(i.published, 16);
        }
        other => panic!("not broadcast: {other:?}"),
    }
    tx.send(b"last").unwrap();
    drop(tx);
    assert_eq!(a.recv().unwrap(), b"last");
    assert_eq!(a.recv(), Err(ChannelError::Disconnected));
    // A new publisher goes on where the old one stopped.
    let mut tx = Publisher::open(&name).unwrap();
    tx.send(b"again").unwrap();
    assert_eq!(a.recv().unwrap(), b"again");
}

#[test]
fn broadcast_receive_in_place_holds_the_slot_until_the_guard_drops() {
    let (name, _g) = make_bc("bc_ref", 2, Mode::Backpressure, 2, 64);
    let mut tx = Publisher::open(&name).unwrap();
    let mut sub = Subscriber::open(&name).unwrap();
    assert!(matches!(sub.try_recv_ref(), Err(ChannelError::Empty)));
    tx.try_send(b"zero").unwrap();
    tx.try_send(b"one").unwrap();
    {
        let g = sub.recv_ref_timeout(Duration::from_secs(5)).unwrap();
        assert!(g.is_in_place());
        assert_eq!(&*g, b"zero");
        // Two slots, both taken, and the guard keeps message 0's: the publisher waits.
        assert_eq!(tx.try_send(b"two"), Err(ChannelError::Full));
        assert_eq!(&*g, b"zero", "the slot was overwritten under the guard");
    }
    tx.try_send(b"two").unwrap();
    assert_eq!(&*sub.recv_ref().unwrap(), b"one");
    assert_eq!(&*sub.try_recv_ref().unwrap(), b"two");
    assert!(matches!(sub.try_recv_ref(), Err(ChannelError::Empty)));
    drop(tx);
    assert!(matches!(
        sub.recv_ref_timeout(Duration::from_secs(5)),
        Err(ChannelError::Disconnected)
    ));

    // Overwrite mode: the publisher never waits, so the guard holds a copy.
    let (name, _g) = make_bc("bc_ref_ow", 2, Mode::Overwrite, 2, 64);
    let mut tx = Publisher::open(&name).unwrap();
    let mut sub = Subscriber::open(&name).unwrap();
    tx.try_send(b"first").unwrap();
    let g = sub.recv_ref().unwrap();
    assert!(!g.is_in_place());
    for i in 0..5u8 {
        tx.try_send(&[i; 8]).unwrap();
    }
    assert_eq!(&*g, b"first");
    drop(g);
    assert!(matches!(sub.recv_ref(), Err(ChannelError::Lagged(_))));
}

/// Sequence-numbered broadcast messages: seq (u64), filler, checksum (u64).
fn bc_msg(seq: u64, max: usize) -> Vec<u8> {
    encode(0, seq, max)[4..].to_vec()
}

fn bc_check(m: &[u8]) -> u64 {
    let mut full = 0u32.to_le_bytes().to_vec();
    full.extend_from_slice(m);
    // The checksum covered the producer id too.
    decode(&full).1
}

#[test]
fn broadcast_overwrite_counts_add_up() {
    let (name, _g) = make_bc("bc_ow", 2, Mode::Overwrite, 4, 64);
    let mut tx = Publisher::open(&name).unwrap();
    let mut sub = Subscriber::open(&name).unwrap();
    let total = 1000u64;
    let (mut got, mut missed, mut last) = (0u64, 0u64, None::<u64>);
    let mut seq = 0;
    let mut rng = 77u64;
    while seq < total || got + missed < total {
        // The publisher never waits; the subscriber reads in bursts.
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        for _ in 0..(rng >> 60) {
            if seq < total {
                tx.try_send(&bc_msg(seq, 64)).unwrap();
                seq += 1;
            }
        }
        for _ in 0..((rng >> 56) & 3) {
            match sub.try_recv() {
                Ok(m) => {
                    let s = bc_check(&m);
                    assert_eq!(
                        s,
                        last.map_or(0, |l| l + 1),
                        "after {last:?}, missed {missed}"
                    );
                    last = Some(s);
                    got += 1;
                }
                Err(ChannelError::Lagged(n)) => {
                    missed += n;
                    // The next message follows the missed ones.
                    last = Some(last.map_or(0, |l| l + 1) + n - 1);
                }
                Err(ChannelError::Empty) => {}
                Err(e) => panic!("{e}"),
            }
        }
    }
    assert_eq!(got + missed, total);
    assert_eq!(sub.missed(), missed);
    assert!(missed > 0 && got > 0, "got {got}, missed {missed}");
}

/// A forked subscriber: reads until the end; exit 0 if every message was intact and in
/// order and (Backpressure) none missing, or (Overwrite) received + missed = total.
fn bc_subscriber(
    lock: &support::ForkLock,
    name: &str,
    ready: &Ready,
    total: u64,
    leave_after: Option<u64>,
) -> Forked {
    let name = name.to_string();
    fork_guarded(lock, move || {
        let Ok(mut sub) = Subscriber::open(&name) else {
            return 3;
        };
        sub.set_spin(100);
        ready.signal();
        let (mut next, mut got) = (0u64, 0u64);
        loop {
            if leave_after == Some(got) {
                return 0;
            }
            // Every other message is read in place (a copy in Overwrite mode), so both
            // paths run under the stress.
            let received = if got % 2 == 0 {
                sub.recv_timeout(Duration::from_secs(20))
            } else {
                sub.recv_ref_timeout(Duration::from_secs(20))
                    .map(|g| g.to_vec())
            };
            match received {
                Ok(m) => {
                    let mut full = 0u32.to_le_bytes().to_vec();
                    full.extend_from_slice(&m);
                    if full.len() < 20 {
                        return 5;
                    }
                    let (body, sum) = full.split_at(full.len() - 8);
                    if checksum(body) != u64::from_le_bytes(sum.try_into().unwrap()) {
                        return 6;
                    }
                    let seq = u64::from_le_bytes(full[4..12].try_into().unwrap());
                    if seq != next {
                        return 7;
                    }
                    next += 1;
                    got += 1;
                }
                Err(ChannelError::Lagged(n)) => next += n,
                Err(ChannelError::Disconnected) => break,
                Err(_) => return 8,
            }
        }
        if next != total || (sub.mode() == Mode::Backpressure && got != total) {
            return 9;
        }
        if sub.missed() + got != total {
            return 10;
        }
        0
    })
}

fn broadcast_stress(mode: Mode, tag: &str) {
    let lock = support::fork_lock();
    let subs = support::env_count::<u64>("SHMKIT_BC_SUBSCRIBERS", 3);
    let total = support::env_count::<u64>("SHMKIT_BC_MESSAGES", 400_000);
    let (name, _g) = make_bc(tag, subs as u32 + 2, mode, 16, 200);
    let ready = Ready::new();
    let mut kids: Vec<Forked> = (0..subs)
        .map(|_| bc_subscriber(&lock, &name, &ready, total, None))
        .collect();
    // One that leaves half-way, one that is killed half-way: neither may hold the
    // publisher back.
    let leaver = bc_subscriber(&lock, &name, &ready, total, Some(total / 3));
    let victim = bc_subscriber(&lock, &name, &ready, total, None);
    assert!(
        (0..subs + 2).all(|_| ready.wait()),
        "subscribers did not join"
    );
    let mut tx = Publisher::open(&name).unwrap();
    tx.set_spin(200);
    let mut victim = Some(victim);
    for seq in 0..total {
        if seq == total / 2 {
            victim.take().unwrap().kill();
        }
        let m = bc_msg(seq, 200);
        if seq % 4 == 0 {
            let mut l = tx.loan(m.len()).unwrap();
            l.copy_from_slice(&m);
            l.commit();
        } else {
            tx.send_timeout(&m, Duration::from_secs(20))
                .unwrap_or_else(|e| panic!("send {seq}: {e}"));
        }
    }
    drop(tx);
    assert_eq!(leaver.join(Duration::from_secs(20)), Some(0), "leaver");
    for (i, k) in kids.drain(..).enumerate() {
        assert_eq!(k.join(Duration::from_secs(30)), Some(0), "subscriber {i}");
    }
}

#[test]
fn broadcast_stress_backpressure() {
    broadcast_stress(Mode::Backpressure, "bc_stress_bp");
}

#[test]
fn broadcast_stress_overwrite() {
    broadcast_stress(Mode::Overwrite, "bc_stress_ow");
}

#[test]
fn broadcast_crash_publisher_at_random_points() {
    let lock = support::fork_lock();
    let lock = &lock;
    let rounds = support::env_count::<u64>("SHMKIT_BC_CRASH_ROUNDS", 60);
    let (name, _g) = make_bc("bc_crash", 2, Mode::Backpressure, 8, 200);
    let mut sub = Subscriber::open(&name).unwrap();
    sub.set_spin(100);
    let mut rng = support::Rng(0x1234_5678_9abc_def1u64 ^ std::process::id() as u64);
    let mut deaths = 0;
    for round in 0..rounds {
        let r = rng.next();
        let kill_after = r % 30;
        let n = name.clone();
        let ready = Ready::new();
        let pubr = fork_guarded(lock, || {
            let Ok(mut tx) = Publisher::open(&n) else {
                return 3;
            };
            tx.set_spin(50);
            ready.signal();
            let mut seq = 0;
            loop {
                if tx.send(&bc_msg(seq, 200)).is_err() {
                    return 4;
                }
                seq += 1;
            }
        });
        assert!(ready.wait(), "round {round}: publisher did not start");
        let mut next = 0;
        let mut pubr = Some(pubr);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(Instant::now() < deadline, "round {round}: stuck at {next}");
            if next >= kill_after {
                if let Some(p) = pubr.take() {
                    p.kill();
                }
            }
            match sub.recv_timeout(Duration::from_secs(5)) {
                Ok(m) => {
                    assert_eq!(bc_check(&m), next, "round {round}");
                    next += 1;
                }
                Err(ChannelError::PeerDied(_)) => {
                    deaths += 1;
                    break;
                }
                Err(ChannelError::Disconnected) => break,
                Err(e) => panic!("round {round}: {e}"),
            }
        }
        assert!(
            pubr.is_none(),
            "round {round}: the end came before the kill"
        );
    }
    assert!(
        deaths > rounds / 2,
        "only {deaths} deaths reported in {rounds} rounds"
    );
}

#[test]
fn broadcast_crash_subscribers_at_random_points() {
    let lock = support::fork_lock();
    let lock = &lock;
    // Backpressure: a subscriber killed anywhere (mid-read included) must not hold the
    // publisher back for long, and the survivor still gets every message intact.
    let rounds = support::env_count::<u64>("SHMKIT_BC_SUB_CRASH_ROUNDS", 40);
    let (name, _g) = make_bc("bc_crash_sub", 2, Mode::Backpressure, 4, 64);
    let mut tx = Publisher::open(&name).unwrap();
    tx.set_spin(50);
    let mut survivor = Subscriber::open(&name).unwrap();
    let mut rng = support::Rng(0xfeed_beef_1234_5679u64 ^ std::process::id() as u64);
    let mut seq = 0u64;
    for round in 0..rounds {
        let r = rng.next();
        let ready = Ready::new();
        let n = name.clone();
        let victim = fork_guarded(lock, || {
            let Ok(mut sub) = Subscriber::open(&n) else {
                return 3;
            };
            ready.signal();
            loop {
                match sub.recv() {
                    Ok(m) if m.len() >= 20 => {}
                    Ok(_) => return 5,
                    Err(_) => return 4,
                }
            }
        });
        assert!(ready.wait(), "round {round}: subscriber did not join");
        let kill_at = seq + r % 12;
        let mut victim = Some(victim);
        for _ in 0..16 {
            if seq == kill_at {
                victim.take().unwrap().kill();
            }
            // The survivor keeps up; the victim reads or is dead and reclaimed.
            let m = bc_msg(seq, 64);
            tx.send_timeout(&m, Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("round {round}: send {seq}: {e}"));
            assert_eq!(
                bc_check(&survivor.recv_timeout(Duration::from_secs(10)).unwrap()),
                seq
            );
            seq += 1;
        }
        drop(victim);
    }
}

#[test]
fn broadcast_corrupt_objects_give_errors() {
    use shmkit::posix::{Access, PosixShm, ShmName};
    use shmkit::region::{Region, RegionExt};
    let (name, _g) = make_bc("bc_corrupt", 2, Mode::Overwrite, 4, 32);
    let shm = PosixShm::open(&ShmName::new(&name).unwrap(), Access::ReadWrite).unwrap();
    let map = shm.map().unwrap();
    let size = map.len();
    let original = map.read_vec(0, size).unwrap();
    for (off, val) in [
        (64usize, 0u32),
        (64, 1),
        (72, u32::MAX),
        (76, 0),
        (80, 7),
        (84, 9),
    ] {
        map.write(off, &val).unwrap();
        let e = Subscriber::open(&name).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "offset {off}: {e}");
        assert!(channel::info_any(&name).is_err());
        map.write_at(0, &original).unwrap();
    }
    let mut tx = Publisher::open(&name).unwrap();
    let mut sub = Subscriber::open(&name).unwrap();
    tx.send(b"ok").unwrap();
    // A published slot with a length above the limit: Corrupt.
    let ring = broadcast::SUBS_OFFSET + 2 * broadcast::SUB_SIZE;
    map.write(ring + 8, &1000u32).unwrap();
    assert!(matches!(sub.try_recv(), Err(ChannelError::Corrupt(_))));
    // A garbage seq far ahead with a garbage head: Corrupt or Lagged, never a panic.
    map.write(ring, &u64::MAX).unwrap();
    map.write(broadcast::HEAD_OFFSET, &3u64).unwrap();
    for _ in 0..5 {
        let _ = sub.try_recv();
    }
    drop((tx, sub));
    // Random bytes anywhere: errors or a working channel; every wait ends.
    let mut rng = support::Rng(0x1234_5678_9abc_def1);
    for i in 0..300 {
        map.write_at(0, &original).unwrap();
        for _ in 0..1 + i % 8 {
            let x = rng.next();
            let off = (x % size as u64) as usize;
            if (28..32).contains(&off) {
                continue;
            }
            map.write_at(off, &[(x >> 40) as u8]).unwrap();
        }
        let _ = channel::info_any(&name);
        if let Ok(mut sub) = Subscriber::open(&name) {
            let _ = sub.recv_timeout(Duration::from_millis(1));
        }
        if let Ok(mut tx) = Publisher::open(&name) {
            let _ = tx.send_timeout(b"x", Duration::from_millis(1));
        }
    }
}

// ---------------------------------------------------------------------------------
// Property tests against models
// ---------------------------------------------------------------------------------

mod model {
    use std::collections::VecDeque;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum MpscOp {
        Send(usize, Vec<u8>),
        Recv,
    }

    fn mpsc_op() -> impl Strategy<Value = MpscOp> {
        prop_oneof![
            (0usize..3, proptest::collection::vec(any::<u8>(), 0..40))
                .prop_map(|(l, v)| MpscOp::Send(l, v)),
            Just(MpscOp::Recv),
        ]
    }

    #[derive(Debug, Clone)]
    enum BcOp {
        Publish(Vec<u8>),
        Recv(usize),
        Join,
        Leave(usize),
    }

    fn bc_op() -> impl Strategy<Value = BcOp> {
        prop_oneof![
            3 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(BcOp::Publish),
            3 => (0usize..3).prop_map(BcOp::Recv),
            1 => Just(BcOp::Join),
            1 => (0usize..3).prop_map(BcOp::Leave),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Three lanes against three queues, served round robin as documented.
        #[test]
        fn mpsc_matches_per_lane_queues(ops in proptest::collection::vec(mpsc_op(), 1..200)) {
            let (name, _g) = make("mpsc_prop", 3, 256, 40);
            let mut rx = mpsc::Receiver::open(&name).unwrap();
            let mut txs: Vec<_> = (0..3).map(|_| mpsc::Sender::open(&name).unwrap()).collect();
            let mut model: Vec<VecDeque<Vec<u8>>> = vec![VecDeque::new(); 3];
            let mut next = 0;
            for op in ops {
                match op {
                    MpscOp::Send(l, v) => match txs[l].try_send(&v) {
                        Ok(()) => model[l].push_back(v),
                        Err(ChannelError::Full) => prop_assert!(!model[l].is_empty()),
                        Err(e) => prop_assert!(false, "send: {e}"),
                    },
                    MpscOp::Recv => {
                        let lane = (0..3).map(|i| (next + i) % 3).find(|&l| !model[l].is_empty());
                        match (rx.try_recv_ref(), lane) {
                            (Ok(g), Some(l)) => {
                                prop_assert_eq!(g.lane(), l);
                                prop_assert_eq!(&*g, &model[l].pop_front().unwrap()[..]);
                                next = (l + 1) % 3;
                            }
                            (Err(ChannelError::Empty), None) => {}
                            (got, want) => prop_assert!(false, "recv: {:?} vs lane {:?}", got.map(|g| g.to_vec()), want),
                        }
                    }
                }
            }
        }

        /// A Backpressure broadcast against one queue per subscriber: full exactly
        /// when a subscriber has a ring's worth unread.
        #[test]
        fn broadcast_matches_per_subscriber_queues(ops in proptest::collection::vec(bc_op(), 1..200)) {
            let (name, _g) = make_bc("bc_prop", 3, Mode::Backpressure, 4, 40);
            let mut tx = Publisher::open(&name).unwrap();
            let mut subs: Vec<Option<(Subscriber, VecDeque<Vec<u8>>)>> = vec![None, None, None];
            for op in ops {
                match op {
                    BcOp::Publish(v) => {
                        let full = subs.iter().flatten().any(|(_, q)| q.len() >= 4);
                        match tx.try_send(&v) {
                            Ok(()) => {
                                prop_assert!(!full);
                                for (_, q) in subs.iter_mut().flatten() {
                                    q.push_back(v.clone());
                                }
                            }
                            Err(ChannelError::Full) => prop_assert!(full),
                            Err(e) => prop_assert!(false, "publish: {e}"),
                        }
                    }
                    BcOp::Recv(i) => {
                        if let Some((s, q)) = &mut subs[i] {
                            match (s.try_recv(), q.pop_front()) {
                                (Ok(m), Some(want)) => prop_assert_eq!(m, want),
                                (Err(ChannelError::Empty), None) => {}
                                (got, want) => prop_assert!(false, "recv: {:?} vs {:?}", got, want),
                            }
                        }
                    }
                    BcOp::Join => {
                        if let Some(free) = subs.iter().position(|s| s.is_none()) {
                            subs[free] = Some((Subscriber::open(&name).unwrap(), VecDeque::new()));
                        }
                    }
                    BcOp::Leave(i) => subs[i] = None,
                }
            }
        }
    }
}
