//! SPSC channels: round trips, loans, typed values, waits, exclusive endpoints,
//! corruption, a two-process stress run and crash tests (SIGKILL at random points).

use std::time::{Duration, Instant};

use shmkit::channel::{self, ChannelError, Options, Receiver, Sender};
use shmkit::ErrorKind;

use crate::support::{self, fork_guarded, killed, PosixGuard, Ready};

/// Creates a channel with a unique name and a guard removing it.
fn make(tag: &str, capacity: u64, max_message: u64) -> (String, PosixGuard) {
    let name = format!("/{}", support::unique_name(tag));
    channel::create(
        &name,
        &Options {
            capacity,
            max_message,
            ..Options::default()
        },
    )
    .expect("create channel");
    let guard = PosixGuard(name.clone());
    (name, guard)
}

#[test]
fn round_trip_loans_and_values() {
    let (name, _g) = make("chan_rt", 1024, 100);
    let mut tx = Sender::open(&name).unwrap();
    let mut rx = Receiver::open(&name).unwrap();
    assert_eq!(rx.try_recv(), Err(ChannelError::Empty));
    tx.send(b"hello").unwrap();
    tx.try_send(b"").unwrap();
    let mut loan = tx.loan(10).unwrap();
    loan[..3].copy_from_slice(b"abc");
    loan.commit_len(3);
    let abandoned = tx.loan(7).unwrap();
    assert_eq!(abandoned.len(), 7);
    let _ = abandoned; // dropped without commit: sends nothing
    tx.send_value(&0x1122_3344_5566_7788u64).unwrap();
    assert_eq!(rx.recv().unwrap(), b"hello");
    assert_eq!(rx.recv().unwrap(), b"");
    assert_eq!(&*rx.recv_ref().unwrap(), b"abc");
    assert_eq!(rx.recv_value::<u64>().unwrap(), 0x1122_3344_5566_7788);
    assert_eq!(
        tx.send(&[0u8; 101]),
        Err(ChannelError::TooLarge { len: 101, max: 100 })
    );
    tx.send(b"xyz").unwrap();
    assert_eq!(
        rx.recv_value::<u32>(),
        Err(ChannelError::WrongSize {
            expected: 4,
            got: 3
        })
    );
    let info = channel::info(&name).unwrap();
    assert_eq!(info.capacity, 1024);
    assert_eq!(info.used, 0);
    assert_eq!(info.messages, Some(0));
    assert_eq!(info.sender.unwrap().pid, std::process::id());
    assert!(info.receiver.unwrap().alive);
}

#[test]
fn full_empty_timeout_and_wrap_around() {
    let (name, _g) = make("chan_full", 64, 16);
    let mut tx = Sender::open(&name).unwrap();
    let mut rx = Receiver::open(&name).unwrap();
    let mut sent = 0u8;
    while tx.try_send(&vec![sent; 1 + sent as usize % 16]).is_ok() {
        sent += 1;
    }
    assert_eq!(tx.try_send(&[0; 16]), Err(ChannelError::Full));
    assert_eq!(
        tx.send_timeout(&[0; 16], Duration::from_millis(20)),
        Err(ChannelError::Timeout)
    );
    // Drain and refill many times with sizes that make records wrap with padding.
    let mut next = 0u8;
    for round in 0..300u32 {
        let mut got = 0;
        while let Ok(v) = rx.try_recv() {
            assert_eq!(v, vec![next; 1 + next as usize % 16], "round {round}");
            next = next.wrapping_add(1);
            got += 1;
            // Sometimes stop half-way, so the ring is never in the same state twice.
            if got == 1 + round % 3 {
                break;
            }
        }
        while tx.try_send(&vec![sent; 1 + sent as usize % 16]).is_ok() {
            sent = sent.wrapping_add(1);
        }
    }
    while let Ok(v) = rx.try_recv() {
        assert_eq!(v, vec![next; 1 + next as usize % 16]);
        next = next.wrapping_add(1);
    }
    assert_eq!(next, sent);
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(20)),
        Err(ChannelError::Timeout)
    );
}

#[test]
fn one_sender_at_a_time_and_disconnect_after_drain() {
    let (name, _g) = make("chan_excl", 4096, 64);
    let mut tx = Sender::open(&name).unwrap();
    let e = Sender::open(&name).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    assert!(e.to_string().contains("live sender"), "{e}");
    let mut rx = Receiver::open(&name).unwrap();
    tx.send(b"1").unwrap();
    tx.send(b"2").unwrap();
    drop(tx);
    assert_eq!(rx.recv().unwrap(), b"1");
    assert_eq!(rx.recv().unwrap(), b"2");
    assert_eq!(rx.recv(), Err(ChannelError::Disconnected));
    // A new sender takes the place and the receiver carries on.
    let mut tx = Sender::open(&name).unwrap();
    tx.send(b"3").unwrap();
    assert_eq!(rx.recv().unwrap(), b"3");
    // The receiver leaves: a full ring reports it to the sender.
    drop(rx);
    let mut n = 0;
    let err = loop {
        match tx.send(b"fill") {
            Ok(()) => n += 1,
            Err(e) => break e,
        }
        assert!(n < 10_000, "the sender never noticed the receiver left");
    };
    assert_eq!(err, ChannelError::Disconnected);
}

/// Sends 8-byte messages with `try_send` until the ring is full; returns how many fit.
fn burst(tx: &mut Sender, first: u64) -> u64 {
    let mut n = 0;
    while tx.try_send_value(&(first + n)).is_ok() {
        n += 1;
        assert!(n < 1 << 20, "the ring never filled");
    }
    n
}

/// Receives `n` 8-byte messages numbered from `first`.
fn drain(rx: &mut Receiver, first: u64, n: u64) {
    for i in first..first + n {
        assert_eq!(rx.try_recv_value::<u64>(), Ok(i));
    }
    assert_eq!(rx.try_recv(), Err(ChannelError::Empty));
}

/// A ring the receiver kept empty still holds its whole capacity when the receiver
/// stops reading: the sender's return to the ring's start (which leaves the rest of the
/// ring to a padding record until the receiver passes it) never takes room a receiver
/// that is not waiting would have to free first. An 8-byte message takes 32 bytes.
#[test]
fn a_burst_after_the_receiver_kept_up_gets_the_whole_ring() {
    const RING: u64 = 64 << 10;
    let (name, _g) = make("chan_burst", RING, 64);
    let mut tx = Sender::open(&name).unwrap();
    let mut rx = Receiver::open(&name).unwrap();
    let mut seq = 0;
    // One message at a time through eight 4 KiB windows: the ring is empty whenever
    // the sender crosses into a new one, and the burst's first message starts the
    // ninth (128 messages fill a window).
    for _ in 0..1024 {
        tx.try_send_value(&seq).unwrap();
        drain(&mut rx, seq, 1);
        seq += 1;
    }
    let n = burst(&mut tx, seq);
    // At most one record's room is lost to the padding at the ring's end.
    assert!(n >= RING / 32 - 1, "only {n} of {} messages fit", RING / 32);
    drain(&mut rx, seq, n);
    // The same with a receiver in another thread that waits for every message (the
    // sender may go back to the ring's start while it waits), then stops, on a new
    // channel.
    drop((tx, rx));
    let (name, _g) = make("chan_burst2", RING, 64);
    let mut tx = Sender::open(&name).unwrap();
    let mut rx = Receiver::open(&name).unwrap();
    let mut seq = 0;
    let (ack_tx, ack_rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        for i in seq..seq + 3072 {
            assert_eq!(rx.recv_value::<u64>(), Ok(i));
            ack_tx.send(()).unwrap();
        }
        rx
    });
    for i in seq..seq + 3072 {
        tx.send_value(&i).unwrap();
        ack_rx.recv().unwrap();
    }
    let mut rx = t.join().unwrap();
    seq += 3072;
    let n = burst(&mut tx, seq);
    assert!(n >= RING / 32 - 1, "only {n} of {} messages fit", RING / 32);
    drain(&mut rx, seq, n);
}

/// A receiver that died while it waited leaves its mark (bit 0 of `tail`, at offset
/// 256); the receiver that takes its place clears it, so the sender does not go back
/// to the ring's start for a receiver that is not there.
#[test]
fn a_new_receiver_clears_the_waiting_mark_of_a_dead_one() {
    use std::os::unix::fs::FileExt;
    const RING: u64 = 64 << 10;
    let (name, _g) = make("chan_mark", RING, 64);
    let mut tx = Sender::open(&name).unwrap();
    let mut rx = Receiver::open(&name).unwrap();
    for i in 0..128 {
        tx.try_send_value(&i).unwrap();
        drain(&mut rx, i, 1);
    }
    drop(rx);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/dev/shm{name}"))
        .unwrap();
    let mut word = [0u8; 8];
    file.read_exact_at(&mut word, 256).unwrap();
    let tail = u64::from_le_bytes(word);
    assert_eq!(tail, 128 * 32);
    file.write_all_at(&(tail | 1).to_le_bytes(), 256).unwrap();
    let mut rx = Receiver::open(&name).unwrap();
    file.read_exact_at(&mut word, 256).unwrap();
    assert_eq!(u64::from_le_bytes(word), tail, "the mark is still there");
    let n = burst(&mut tx, 128);
    assert!(n >= RING / 32 - 1, "only {n} of {} messages fit", RING / 32);
    drain(&mut rx, 128, n);
}

#[test]
fn a_blocked_receiver_is_woken_by_another_thread() {
    let (name, _g) = make("chan_wake", 4096, 64);
    let mut rx = Receiver::open(&name).unwrap();
    rx.set_spin(0);
    let n2 = name.clone();
    let t = std::thread::spawn(move || {
        let mut tx = Sender::open(&n2).unwrap();
        tx.set_spin(0);
        for i in 0..2000u32 {
            tx.send_value(&i).unwrap();
        }
    });
    for i in 0..2000u32 {
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(10)),
            Ok(i.to_ne_bytes().to_vec())
        );
    }
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)),
        Err(ChannelError::Disconnected)
    );
    t.join().unwrap();
}

#[test]
fn corrupt_objects_are_errors_not_crashes() {
    let (name, _g) = make("chan_corrupt", 256, 32);
    let path = format!("/dev/shm{name}");
    let orig = std::fs::read(&path).unwrap();
    // Header fields: magic, kind, version, config.
    for (off, val) in [
        (0usize, 0xffu8),
        (8, 9),
        (10, 7),
        (64, 3),
        (72, 0xff),
        (75, 0x7f),
    ] {
        let mut bad = orig.clone();
        bad[off] = val;
        std::fs::write(&path, &bad).unwrap();
        let e = Receiver::open(&name).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "byte {off}: {e}");
    }
    std::fs::write(&path, &orig).unwrap();
    let mut tx = Sender::open(&name).unwrap();
    let mut rx = Receiver::open(&name).unwrap();
    tx.send(b"ok").unwrap();
    // Overwrite the first record's stamp (offset 1024): `head` says the record is
    // there, so this is an error, not a wait for ever (a try_ loop sees it within
    // 64 calls; a blocking receive on its first slow poll).
    let good = std::fs::read(&path).unwrap();
    let mut bytes = good.clone();
    bytes[1024..1032].copy_from_slice(&0x5a5a_5a5a_5a5a_5a5au64.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let first = (0..200).find_map(|_| match rx.try_recv() {
        Err(ChannelError::Empty) => None,
        other => Some(other),
    });
    assert!(
        matches!(first, Some(Err(ChannelError::Corrupt(_)))),
        "{first:?}"
    );
    assert!(matches!(
        rx.recv_timeout(Duration::from_secs(5)),
        Err(ChannelError::Corrupt(_))
    ));
    // Scribble a record length into its kind-and-length word (offset 1032).
    let mut bytes = good;
    bytes[1032..1036].copy_from_slice(&1000u32.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(rx.try_recv(), Err(ChannelError::Corrupt(_))));
    // A producer position far ahead.
    bytes[128..136].copy_from_slice(&(1u64 << 40).to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(rx.try_recv(), Err(ChannelError::Corrupt(_))));
    assert!(channel::info(&name).is_ok());
}

// ---- two-process stress -------------------------------------------------------------

const STRESS_ENV: &str = "SHMKIT_CHANNEL_STRESS";

fn stress_count() -> u64 {
    support::env_count(STRESS_ENV, 1_000_000)
}

/// A message: seq (8 bytes), then `len - 12` bytes derived from seq, then a checksum.
fn fill_message(seq: u64, buf: &mut [u8]) {
    let n = buf.len();
    buf[..8].copy_from_slice(&seq.to_le_bytes());
    let mut rng = support::Rng(seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    for b in &mut buf[8..n - 4] {
        *b = rng.next() as u8;
    }
    let sum = support::checksum(&buf[..n - 4]);
    buf[n - 4..].copy_from_slice(&sum.to_le_bytes());
}

fn message_len(seq: u64, max: usize) -> usize {
    let x = seq.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40;
    12 + (x as usize % (max - 11))
}

/// Checks one received message; returns its sequence number or what is wrong. Does
/// not panic, so forked children can use it.
fn verify(m: &[u8]) -> Result<u64, String> {
    if m.len() < 12 {
        return Err(format!("short message of {} bytes", m.len()));
    }
    let n = m.len();
    let seq = u64::from_le_bytes(m[..8].try_into().unwrap_or_default());
    let sum = u32::from_le_bytes(m[n - 4..].try_into().unwrap_or_default());
    if sum != support::checksum(&m[..n - 4]) {
        return Err(format!("checksum of message {seq}"));
    }
    let mut want = vec![0u8; n];
    fill_message(seq, &mut want);
    if want != m {
        return Err(format!("content of message {seq}"));
    }
    Ok(seq)
}

/// Checks one received message; returns its sequence number.
fn check_message(m: &[u8]) -> u64 {
    verify(m).unwrap_or_else(|e| panic!("{e}"))
}

/// Sends `count` messages from `first` with loans, for the stress and crash tests.
fn send_messages(tx: &mut Sender, first: u64, count: u64, max: usize) -> Result<(), ChannelError> {
    for seq in first..first + count {
        let len = message_len(seq, max);
        let mut loan = tx.loan(len)?;
        fill_message(seq, &mut loan);
        loan.commit();
    }
    Ok(())
}

#[test]
#[ignore = "child of stress_two_processes"]
fn child_stress_sender() {
    if !support::is_child() {
        return;
    }
    let name = std::env::var("CHAN").unwrap();
    let count: u64 = std::env::var("COUNT").unwrap().parse().unwrap();
    let mut tx = Sender::open(&name).unwrap();
    send_messages(&mut tx, 0, count, 300).unwrap();
}

#[test]
fn stress_two_processes() {
    let (name, _g) = make("chan_stress", 16 * 1024, 300);
    let count = stress_count();
    let mut rx = Receiver::open(&name).unwrap();
    let count_s = count.to_string();
    let child = support::spawn_child(
        "channel::child_stress_sender",
        &[("CHAN", name.as_str()), ("COUNT", count_s.as_str())],
    );
    let start = Instant::now();
    let mut expected = 0u64;
    loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(m) => {
                assert_eq!(check_message(&m), expected);
                expected += 1;
            }
            Err(ChannelError::Disconnected) => break,
            Err(e) => panic!("after {expected} messages: {e}"),
        }
    }
    let out = support::wait_output(child, Duration::from_secs(30), "stress sender");
    support::assert_success(&out, "stress sender");
    assert_eq!(expected, count);
    eprintln!(
        "stress: {count} messages in {:?} ({:.1} M/s)",
        start.elapsed(),
        count as f64 / start.elapsed().as_secs_f64() / 1e6
    );
}

// ---- crash tests ----------------------------------------------------------------------

const CRASH_ENV: &str = "SHMKIT_CHANNEL_CRASHES";

fn crash_rounds() -> u32 {
    support::env_count(CRASH_ENV, 200)
}

#[test]
fn crash_sender_at_random_points() {
    let lock = support::fork_lock();
    let (name, _g) = make("chan_crash_tx", 2048, 200);
    let mut rx = Receiver::open(&name).unwrap();
    rx.set_spin(100);
    let mut rng = support::Rng(0x5eed_1234_abcd_0001 ^ std::process::id() as u64);
    let mut next = 0u64; // the next sequence number expected
    let mut died = 0;
    for round in 0..crash_rounds() {
        let first = next;
        let n2 = name.clone();
        let ready = Ready::new();
        let child = fork_guarded(&lock, || {
            let Ok(mut tx) = Sender::open(&n2) else {
                return 3;
            };
            ready.signal();
            match send_messages(&mut tx, first, u64::MAX / 4, 200) {
                Ok(()) => 0,
                Err(_) => 4,
            }
        });
        assert!(ready.wait(), "round {round}: the sender child did not open");
        // Receive a random number of messages, then kill the sender wherever it is:
        // blocked on a full ring, mid-loan, or between messages.
        let take = rng.next() % 40;
        for _ in 0..take {
            let m = rx
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
            assert_eq!(check_message(&m), next, "round {round}");
            next += 1;
        }
        if rng.next() % 2 == 0 {
            // Sometimes kill it at a random moment while it writes freely.
            for _ in 0..rng.next() % 2000 {
                std::hint::spin_loop();
            }
        }
        let pid = child.pid();
        child.kill();
        // Every committed message, then PeerDied; never a torn one, never a hang.
        loop {
            match rx.recv_timeout(Duration::from_secs(10)) {
                Ok(m) => {
                    assert_eq!(check_message(&m), next, "round {round}");
                    next += 1;
                }
                Err(ChannelError::PeerDied(p)) => {
                    assert_eq!(p, pid as u32);
                    died += 1;
                    break;
                }
                Err(e) => panic!("round {round}: expected PeerDied, got {e}"),
            }
        }
    }
    assert_eq!(died, crash_rounds());
    eprintln!("crash sender: {died} kills, {next} messages checked");
}

#[test]
fn crash_receiver_at_random_points() {
    let lock = support::fork_lock();
    let (name, _g) = make("chan_crash_rx", 2048, 200);
    let mut tx = Sender::open(&name).unwrap();
    let mut rng = support::Rng(0x5eed_9876_0000_0002 ^ std::process::id() as u64);
    let mut sent = 0u64;
    for round in 0..crash_rounds() {
        let n2 = name.clone();
        let child = fork_guarded(&lock, move || {
            let Ok(mut rx) = Receiver::open(&n2) else {
                return 3;
            };
            let mut last = None;
            loop {
                let Ok(g) = rx.recv_ref() else {
                    return 4;
                };
                let Ok(seq) = verify(&g) else {
                    return 5;
                };
                // A message the dead receiver had not released comes again, so the
                // first one may repeat the previous child's last; after that, in order.
                if last.is_some_and(|l| seq != l + 1) {
                    return 6;
                }
                last = Some(seq);
            }
        });
        let burst = rng.next() % 60;
        let mut ok = true;
        for _ in 0..burst {
            let len = message_len(sent, 200);
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match tx.loan_timeout(len, Duration::from_secs(10)) {
                    Ok(mut loan) => {
                        fill_message(sent, &mut loan);
                        loan.commit();
                        sent += 1;
                        break;
                    }
                    // The previous receiver is dead and the new child has not claimed
                    // the slot yet: the ring is full and nobody reads. Try again.
                    Err(ChannelError::PeerDied(_) | ChannelError::Disconnected)
                        if Instant::now() < deadline =>
                    {
                        std::thread::yield_now()
                    }
                    Err(e) => panic!("round {round}: {e}"),
                }
            }
        }
        let status = child.kill();
        // The child died by our SIGKILL, not by a failed check.
        if !killed(status) {
            ok = false;
        }
        assert!(
            ok,
            "round {round}: the receiver child failed (status {status:#x})"
        );
    }
    // A last receiver reclaims the slot and sees the rest in order, ending with the
    // last message sent.
    let mut rx = Receiver::open(&name).unwrap();
    drop(tx);
    let mut last: Option<u64> = None;
    loop {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(m) => {
                let seq = check_message(&m);
                if let Some(l) = last {
                    assert_eq!(seq, l + 1);
                }
                last = Some(seq);
            }
            Err(ChannelError::Disconnected) => break,
            Err(e) => panic!("{e}"),
        }
    }
    if let Some(l) = last {
        assert_eq!(l + 1, sent);
    }
}

// ---- a C peer --------------------------------------------------------------------------

/// A receiver written in C from the documented layout alone: it checks the header,
/// reads records at its position (a word other than the stamp of that position: nothing
/// yet; "PAD": skip to the ring's start; "MSG": a message), releases them by storing `tail`, and wakes a sleeping
/// sender through the futex word at 512. It prints the sum of the first bytes of the
/// messages and their count.
const C_RECEIVER: &str = r#"
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define TAG_MSG 0x0047534dULL /* "MSG\0" little-endian */
#define TAG_PAD 0x00444150ULL /* "PAD\0" */

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    long want = atol(argv[2]);
    int fd = shm_open(argv[1], O_RDWR, 0);
    if (fd < 0) { perror("shm_open"); return 3; }
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < 1024 + 64) return 4;
    uint8_t *m = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) return 5;
    if (memcmp(m, "SHMKIT\0\1", 8) != 0) return 6;
    uint16_t kind; memcpy(&kind, m + 8, 2);
    if (kind != 1) return 7;
    uint32_t ready = __atomic_load_n((uint32_t *)(m + 28), __ATOMIC_ACQUIRE);
    if (ready != 0x59444552u) return 8; /* "REDY" */
    uint64_t ring; memcpy(&ring, m + 64, 8);
    uint32_t maxmsg; memcpy(&maxmsg, m + 72, 4);
    uint64_t key; memcpy(&key, m + 88, 8);
    uint16_t version; memcpy(&version, m + 10, 2);
    if (version != 3) return 14;
    if (ring < 64 || (ring & (ring - 1)) || 1024 + ring > (uint64_t)st.st_size) return 9;
    uint64_t *tailp = (uint64_t *)(m + 256);
    uint32_t *tx_sleep = (uint32_t *)(m + 512);
    uint8_t *r = m + 1024;
    uint64_t tail = __atomic_load_n(tailp, __ATOMIC_ACQUIRE);
    long got = 0; uint64_t sum = 0;
    time_t start = time(NULL);
    while (got < want) {
        uint64_t off = tail & (ring - 1);
        uint64_t stamp = ((tail >> 3) ^ key) * 0x9e3779b97f4a7c15ULL;
        if (__atomic_load_n((uint64_t *)(r + off), __ATOMIC_SEQ_CST) != stamp) {
            if (time(NULL) - start > 20) return 10;
            sched_yield();
            continue;
        }
        uint64_t w = __atomic_load_n((uint64_t *)(r + off + 8), __ATOMIC_RELAXED);
        uint32_t len = (uint32_t)w, tag = (uint32_t)(w >> 32);
        if (tag == TAG_PAD) {
            if (len != ring - off) return 11;
            tail += len;
        } else if (tag == TAG_MSG) {
            uint64_t rec = 16 + ((len + 15) & ~15ULL);
            if (len > maxmsg || off + rec > ring) return 12;
            if (len > 0) sum += r[off + 16];
            got++;
            tail += rec;
        } else {
            return 13;
        }
        __atomic_store_n(tailp, tail, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(tx_sleep, __ATOMIC_SEQ_CST) != 0) {
            __atomic_store_n(tx_sleep, 0, __ATOMIC_RELAXED);
            syscall(SYS_futex, tx_sleep, FUTEX_WAKE, 1, NULL, NULL, 0);
        }
    }
    printf("%ld %llu\n", got, (unsigned long long)sum);
    return 0;
}
"#;

#[test]
fn a_c_receiver_reads_what_rust_sends() {
    let exe = support::compile_c("channel_c_receiver", C_RECEIVER, &["-lrt"]);
    let (name, _g) = make("chan_c", 1024, 100);
    let mut tx = Sender::open(&name).unwrap();
    let child = std::process::Command::new(&exe)
        .args([name.as_str(), "5000"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut sum = 0u64;
    for i in 0..5000u64 {
        let len = 1 + (i as usize * 7) % 100;
        let mut loan = tx.loan_timeout(len, Duration::from_secs(20)).unwrap();
        loan.fill(i as u8);
        loan.commit();
        sum += i % 256;
    }
    let out = support::wait_output(child, Duration::from_secs(30), "C receiver");
    support::assert_success(&out, "C receiver");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("5000 {sum}")
    );
}
