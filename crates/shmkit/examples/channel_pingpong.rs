//! A quick sanity benchmark of the SPSC channel, next to the floor (one cache line
//! bouncing between two cores), memcpy and a pipe. Not a substitute for the benchmark
//! suite: run with `cargo run --release -p shmkit --example channel_pingpong`, on an
//! otherwise idle machine, and compare figures from the same run only.
//!
//! Every figure is measured twice: between two threads of this process, and between
//! this process and a copy of itself started as a peer (`channel_pingpong peer ROLE
//! ...`), which is what the channel is for. Each is the median of five interleaved
//! rounds.

use std::hint::black_box;
use std::process::{Child, Command};
use std::sync::atomic::Ordering;
use std::time::Instant;

use shmkit::channel::{self, rpc, Options, Receiver, Sender};
use shmkit::posix::{Access, CreateOptions, PosixShm, ShmName};
use shmkit::Region;

const ROUND_TRIPS: u64 = 200_000;
const SLEEPY_TRIPS: u64 = 20_000;
const STREAM: u64 = 5_000_000;
const BIG: usize = 64 * 1024;
const BIG_STREAM: u64 = 20_000;
const ROUNDS: usize = 5;

/// Median of the measurements.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn names(tag: &str) -> String {
    format!("/shmkit_bench_{}_{tag}", std::process::id())
}

/// Runs `f` on another thread or in a peer process (`role` and `args` for the peer).
enum Side {
    Thread(std::thread::JoinHandle<()>),
    Process(Child),
}

impl Side {
    fn start(in_process: bool, role: &str, args: &[String]) -> Side {
        if in_process {
            let (role, args) = (role.to_string(), args.to_vec());
            Side::Thread(std::thread::spawn(move || peer(&role, &args)))
        } else {
            let exe = std::env::current_exe().expect("own executable");
            let child = Command::new(exe)
                .arg("peer")
                .arg(role)
                .args(args)
                .spawn()
                .expect("start the peer process");
            Side::Process(child)
        }
    }

    fn join(self) {
        match self {
            Side::Thread(t) => t.join().expect("peer thread"),
            Side::Process(mut c) => {
                let st = c.wait().expect("wait for the peer");
                assert!(st.success(), "peer failed: {st}");
            }
        }
    }
}

/// The peer's side of each measurement.
fn peer(role: &str, args: &[String]) {
    match role {
        "floor" => {
            let shm = PosixShm::open(&ShmName::new(&args[0]).unwrap(), Access::ReadWrite).unwrap();
            let map = shm.map().unwrap();
            let word = map.atomic_u64(0).unwrap();
            for i in 0..ROUND_TRIPS {
                while word.load(Ordering::Acquire) != 2 * i + 1 {
                    std::hint::spin_loop();
                }
                word.store(2 * i + 2, Ordering::Release);
            }
        }
        "echo" => {
            let spin: u32 = args[2].parse().unwrap();
            let n: u64 = args[3].parse().unwrap();
            let mut rx = Receiver::open(&args[0]).unwrap();
            let mut tx = Sender::open(&args[1]).unwrap();
            rx.set_spin(spin);
            tx.set_spin(spin);
            for _ in 0..n {
                let v: u64 = rx.recv_value().unwrap();
                tx.send_value(&v).unwrap();
            }
        }
        "serve" => {
            let spin: u32 = args[1].parse().unwrap();
            let n: u64 = args[2].parse().unwrap();
            let mut server = rpc::Server::open(&args[0]).unwrap();
            server.set_spin(spin);
            for _ in 0..n {
                let req = server.recv().unwrap();
                let v: u64 = req.value().unwrap();
                req.reply_value(&v).unwrap();
            }
        }
        "sink" => {
            let n: u64 = args[2].parse().unwrap();
            let mut rx = Receiver::open(&args[0]).unwrap();
            let mut done = Sender::open(&args[1]).unwrap();
            rx.set_spin(u32::MAX);
            for i in 0..n {
                let m = rx.recv_ref().unwrap();
                let seq = u64::from_le_bytes(m[..8].try_into().unwrap());
                assert_eq!(seq, i, "messages out of order");
            }
            done.send_value(&n).unwrap();
        }
        _ => panic!("unknown peer role {role}"),
    }
}

/// One cache line moving between two cores: ping writes odd values, pong answers even.
fn cache_line_round_trip(in_process: bool, shm_name: &str) -> f64 {
    let shm = PosixShm::open(&ShmName::new(shm_name).unwrap(), Access::ReadWrite).unwrap();
    let map = shm.map().unwrap();
    let word = map.atomic_u64(0).unwrap();
    word.store(0, Ordering::Relaxed);
    let side = Side::start(in_process, "floor", &[shm_name.to_string()]);
    let start = Instant::now();
    for i in 0..ROUND_TRIPS {
        word.store(2 * i + 1, Ordering::Release);
        while word.load(Ordering::Acquire) != 2 * i + 2 {
            std::hint::spin_loop();
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / ROUND_TRIPS as f64;
    side.join();
    ns
}

/// 8-byte messages there and back over two channels; `spin` 0 makes both sides sleep
/// on the futex for every message (the wake-up latency).
fn channel_round_trip(in_process: bool, ping: &str, pong: &str, spin: u32, n: u64) -> f64 {
    let side = Side::start(
        in_process,
        "echo",
        &[ping.into(), pong.into(), spin.to_string(), n.to_string()],
    );
    let mut tx = Sender::open(ping).unwrap();
    let mut rx = Receiver::open(pong).unwrap();
    tx.set_spin(spin);
    rx.set_spin(spin);
    // The first exchange waits for the peer to open its ends.
    tx.send_value(&0u64).unwrap();
    let _: u64 = rx.recv_value().unwrap();
    let start = Instant::now();
    for i in 1..n {
        tx.send_value(&i).unwrap();
        let v: u64 = rx.recv_value().unwrap();
        black_box(v);
    }
    let ns = start.elapsed().as_nanos() as f64 / (n - 1) as f64;
    drop(tx);
    side.join();
    ns
}

/// 8-byte calls through a request-reply channel: the request and its reply share one
/// slot, so a call moves one cache line there and back.
fn rpc_round_trip(in_process: bool, name: &str, spin: u32, n: u64) -> f64 {
    let side = Side::start(
        in_process,
        "serve",
        &[name.into(), spin.to_string(), n.to_string()],
    );
    let mut client = rpc::Client::open(name).unwrap();
    client.set_spin(spin);
    // The first call waits for the server to open its end.
    let _: u64 = client.call_value(&0u64).unwrap();
    let start = Instant::now();
    for i in 1..n {
        let v: u64 = client.call_value(&i).unwrap();
        black_box(v);
    }
    let ns = start.elapsed().as_nanos() as f64 / (n - 1) as f64;
    drop(client);
    side.join();
    ns
}

/// The same exchange over two pipes between two threads (blocking reads: wake-ups).
fn pipe_round_trip() -> f64 {
    use rustix::io::{read, write};
    let (r1, w1) = rustix::pipe::pipe().unwrap();
    let (r2, w2) = rustix::pipe::pipe().unwrap();
    let t = std::thread::spawn(move || {
        let mut b = [0u8; 8];
        for _ in 0..SLEEPY_TRIPS {
            read(&r1, &mut b).unwrap();
            write(&w2, &b).unwrap();
        }
    });
    let mut b = [0u8; 8];
    let start = Instant::now();
    for i in 0..SLEEPY_TRIPS {
        write(&w1, &i.to_le_bytes()).unwrap();
        read(&r2, &mut b).unwrap();
    }
    let ns = start.elapsed().as_nanos() as f64 / SLEEPY_TRIPS as f64;
    t.join().unwrap();
    ns
}

/// `n` messages of `len` bytes streamed one way with loans (the sequence number in
/// the first 8 bytes, the rest written from a buffer); returns messages per second.
fn stream(in_process: bool, name: &str, done: &str, len: usize, n: u64) -> f64 {
    let side = Side::start(
        in_process,
        "sink",
        &[name.into(), done.into(), n.to_string()],
    );
    let mut tx = Sender::open(name).unwrap();
    let mut fin = Receiver::open(done).unwrap();
    tx.set_spin(u32::MAX);
    fin.set_spin(u32::MAX);
    let src = vec![0x5au8; len];
    let start = Instant::now();
    for i in 0..n {
        let mut loan = tx.loan(len).unwrap();
        if len > 64 {
            loan[8..].copy_from_slice(&src[8..]);
        }
        loan[..8].copy_from_slice(&i.to_le_bytes());
        loan.commit();
    }
    let got: u64 = fin.recv_value().unwrap();
    assert_eq!(got, n);
    let rate = n as f64 / start.elapsed().as_secs_f64();
    drop(tx);
    side.join();
    rate
}

/// memcpy of 64 KiB blocks within one thread, in bytes per second.
fn memcpy_bandwidth() -> f64 {
    let src = vec![0x5au8; BIG];
    let mut dst = vec![0u8; 16 * BIG];
    let n = 20_000;
    let start = Instant::now();
    for i in 0..n {
        let off = (i % 16) * BIG;
        dst[off..off + BIG].copy_from_slice(black_box(&src));
        black_box(&mut dst);
    }
    (n * BIG) as f64 / start.elapsed().as_secs_f64()
}

/// Removes the example's objects when dropped, also when a measurement panics.
struct Objects(Vec<String>);

impl Drop for Objects {
    fn drop(&mut self) {
        for n in &self.0 {
            if let Ok(name) = ShmName::new(n) {
                let _ = PosixShm::unlink(&name);
            }
        }
    }
}

fn make(name: &str, capacity: u64, max_message: u64) -> shmkit::Result<()> {
    channel::create(
        name,
        &Options {
            capacity,
            max_message,
            ..Options::default()
        },
    )
}

#[derive(Default)]
struct Figures {
    floor: Vec<f64>,
    rt: Vec<f64>,
    call: Vec<f64>,
    sleepy: Vec<f64>,
    small: Vec<f64>,
    big: Vec<f64>,
}

fn main() -> shmkit::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("peer") {
        peer(&args[2], &args[3..]);
        return Ok(());
    }
    let (a, b, c, d, e) = (
        names("ping"),
        names("pong"),
        names("stream"),
        names("big"),
        names("line"),
    );
    let r = names("call");
    let _objects = Objects(vec![
        a.clone(),
        b.clone(),
        c.clone(),
        d.clone(),
        e.clone(),
        r.clone(),
    ]);
    rpc::create(&r, 64, 0o600)?;
    make(&a, 4096, 1024)?;
    make(&b, 4096, 1024)?;
    make(&c, 256 * 1024, 1024)?;
    make(&d, 1 << 20, BIG as u64)?;
    let line = ShmName::new(&e)?;
    drop(PosixShm::create_with(&line, 4096, &CreateOptions::new())?);
    let mut fig = [Figures::default(), Figures::default()];
    let mut pipe = Vec::new();
    let mut copy = Vec::new();
    for _ in 0..ROUNDS {
        for (k, f) in fig.iter_mut().enumerate() {
            let threads = k == 0;
            f.floor.push(cache_line_round_trip(threads, &e));
            f.rt.push(channel_round_trip(threads, &a, &b, u32::MAX, ROUND_TRIPS));
            f.call
                .push(rpc_round_trip(threads, &r, u32::MAX, ROUND_TRIPS));
            f.sleepy
                .push(channel_round_trip(threads, &a, &b, 0, SLEEPY_TRIPS));
            f.small.push(stream(threads, &c, &b, 64, STREAM));
            f.big.push(stream(threads, &d, &b, BIG, BIG_STREAM));
        }
        pipe.push(pipe_round_trip());
        copy.push(memcpy_bandwidth());
    }
    let (pipe, copy) = (median(pipe), median(copy) / 1e9);
    println!("pipe round trip (threads, sleeping):  {pipe:>8.1} ns");
    println!("memcpy of 64 KiB blocks:              {copy:>8.2} GB/s");
    for (k, f) in fig.into_iter().enumerate() {
        let what = if k == 0 {
            "two threads"
        } else {
            "two processes"
        };
        let floor = median(f.floor);
        let rt = median(f.rt);
        let call = median(f.call);
        let sleepy = median(f.sleepy);
        let small = median(f.small) / 1e6;
        let big = median(f.big) * BIG as f64 / 1e9;
        println!("-- {what}");
        println!("cache line round trip (floor):        {floor:>8.1} ns");
        println!(
            "8-byte channel round trip:            {rt:>8.1} ns  ({:.2}x the floor)",
            rt / floor
        );
        println!(
            "8-byte call (request-reply channel):  {call:>8.1} ns  ({:.2}x the floor)",
            call / floor
        );
        println!(
            "8-byte round trip, both asleep:       {sleepy:>8.1} ns  ({:.2}x the pipe)",
            sleepy / pipe
        );
        println!("64-byte stream with loans:            {small:>8.1} M messages/s");
        println!(
            "64 KiB stream with loans:             {big:>8.2} GB/s  ({:.2}x memcpy)",
            big / copy
        );
    }
    Ok(())
}
