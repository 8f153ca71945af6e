//! A quick sanity benchmark of the SPSC channel, next to the floor (one cache line
//! bouncing between two threads). Not a substitute for the benchmark suite: run with
//! `cargo run --release -p shmkit --example channel_pingpong`, on an otherwise idle
//! machine, and compare figures from the same run only.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use shmkit::channel::{self, Options, Receiver, Sender};

const ROUND_TRIPS: u64 = 200_000;
const STREAM: u64 = 5_000_000;

/// Median of `runs` measurements.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// One cache line moving between two cores: ping writes odd values, pong answers even.
fn cache_line_round_trip() -> f64 {
    let word = Arc::new(AtomicU64::new(0));
    let w2 = word.clone();
    let t = std::thread::spawn(move || {
        for i in 0..ROUND_TRIPS {
            while w2.load(Ordering::Acquire) != 2 * i + 1 {
                std::hint::spin_loop();
            }
            w2.store(2 * i + 2, Ordering::Release);
        }
    });
    let start = Instant::now();
    for i in 0..ROUND_TRIPS {
        word.store(2 * i + 1, Ordering::Release);
        while word.load(Ordering::Acquire) != 2 * i + 2 {
            std::hint::spin_loop();
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / ROUND_TRIPS as f64;
    t.join().unwrap();
    ns
}

fn names(tag: &str) -> String {
    format!("/shmkit_bench_{}_{tag}", std::process::id())
}

fn make(name: &str, capacity: u64) -> shmkit::Result<()> {
    channel::create(
        name,
        &Options {
            capacity,
            max_message: 1024,
            ..Options::default()
        },
    )
}

/// 8-byte messages there and back over two channels.
fn channel_round_trip(ping: &str, pong: &str) -> f64 {
    let (p1, p2) = (ping.to_string(), pong.to_string());
    let t = std::thread::spawn(move || {
        let mut rx = Receiver::open(&p1).unwrap();
        let mut tx = Sender::open(&p2).unwrap();
        rx.set_spin(u32::MAX);
        for _ in 0..ROUND_TRIPS {
            let v: u64 = rx.recv_value().unwrap();
            tx.send_value(&v).unwrap();
        }
    });
    let mut tx = Sender::open(ping).unwrap();
    let mut rx = Receiver::open(pong).unwrap();
    rx.set_spin(u32::MAX);
    let start = Instant::now();
    for i in 0..ROUND_TRIPS {
        tx.send_value(&i).unwrap();
        let v: u64 = rx.recv_value().unwrap();
        black_box(v);
    }
    let ns = start.elapsed().as_nanos() as f64 / ROUND_TRIPS as f64;
    drop(tx);
    t.join().unwrap();
    ns
}

/// 64-byte messages streamed one way, with loans; returns millions per second.
fn stream_64(name: &str) -> f64 {
    let n = name.to_string();
    let t = std::thread::spawn(move || {
        let mut rx = Receiver::open(&n).unwrap();
        rx.set_spin(u32::MAX);
        let mut sum = 0u64;
        for _ in 0..STREAM {
            let m = rx.recv_ref().unwrap();
            sum = sum.wrapping_add(m[0] as u64);
        }
        black_box(sum);
    });
    let mut tx = Sender::open(name).unwrap();
    tx.set_spin(u32::MAX);
    let start = Instant::now();
    for i in 0..STREAM {
        let mut loan = tx.loan(64).unwrap();
        loan[0] = i as u8;
        loan.commit();
    }
    t.join().unwrap();
    STREAM as f64 / start.elapsed().as_secs_f64() / 1e6
}

fn main() -> shmkit::Result<()> {
    let (a, b, c) = (names("ping"), names("pong"), names("stream"));
    make(&a, 4096)?;
    make(&b, 4096)?;
    make(&c, 256 * 1024)?;
    let mut floor = Vec::new();
    let mut rt = Vec::new();
    let mut st = Vec::new();
    for _ in 0..5 {
        floor.push(cache_line_round_trip());
        rt.push(channel_round_trip(&a, &b));
        st.push(stream_64(&c));
    }
    for n in [&a, &b, &c] {
        channel::remove(n)?;
    }
    let (floor, rt, st) = (median(floor), median(rt), median(st));
    println!("cache line round trip (floor): {floor:>8.1} ns");
    println!(
        "8-byte channel round trip:     {rt:>8.1} ns  ({:.2}x the floor)",
        rt / floor
    );
    println!("64-byte stream with loans:     {st:>8.1} M messages/s");
    Ok(())
}
