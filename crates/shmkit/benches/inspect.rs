//! How long `shmkit::inspect::list()` (the heart of `shmkit ls`) takes with 10,000
//! System V objects and 1,000 POSIX objects.
//!
//! Run with `cargo bench -p shmkit --bench inspect`. The benchmark re-runs itself in
//! private IPC and mount namespaces (`unshare --ipc --mount`), with a private tmpfs on
//! /dev/shm and `kernel.shmmni` raised there, so the objects it creates are invisible
//! to every other program and vanish with the namespace (it also removes them itself).
//! Where unshare is not permitted it prints why and exits 0.
#![allow(clippy::disallowed_methods)]

use std::process::Command;
use std::time::{Duration, Instant};

use shmkit::inspect::{self, Kind};
use shmkit::sys::ipcinfo::{self, SysvKind};

const IN_NS: &str = "SHMKIT_BENCH_IN_NAMESPACE";
const SHM: usize = 4000;
const SEM: usize = 3000;
const MSG: usize = 3000;
const POSIX: usize = 1000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        // Built and started by `cargo test --all-targets`: nothing to measure there.
        println!("inspect bench: run it with `cargo bench -p shmkit --bench inspect`");
        return;
    }
    if std::env::var_os(IN_NS).is_none() {
        let exe = std::env::current_exe().expect("current_exe");
        let status = Command::new("unshare")
            .args(["--ipc", "--mount", "--propagation", "private"])
            .arg(exe)
            .args(&args[1..])
            .env(IN_NS, "1")
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => {
                println!("inspect bench skipped: unshare --ipc --mount failed ({s}); needs root or user namespaces");
            }
            Err(e) => println!("inspect bench skipped: cannot run unshare: {e}"),
        }
        return;
    }
    let mount = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64m", "tmpfs", "/dev/shm"])
        .status();
    if !mount.map(|s| s.success()).unwrap_or(false) {
        println!("inspect bench skipped: cannot mount a private tmpfs on /dev/shm");
        return;
    }
    std::fs::write("/proc/sys/kernel/shmmni", "32768").expect("raise shmmni in the namespace");
    std::fs::write("/proc/sys/kernel/sem", "32000 1024000000 500 32000").ok();
    std::fs::write("/proc/sys/kernel/msgmni", "32000").ok();

    let t = Instant::now();
    let mut ids = Vec::new();
    for (kind, n, size) in [
        (SysvKind::Shm, SHM, 4096),
        (SysvKind::Sem, SEM, 1),
        (SysvKind::Msg, MSG, 0),
    ] {
        for i in 0..n {
            let key = 0x5348_0000 + i as i32 + 1;
            ids.push((
                kind,
                ipcinfo::create(kind, key, size, 0o600).expect("create"),
            ));
        }
    }
    for i in 0..POSIX {
        std::fs::write(format!("/dev/shm/bench_{i}"), [0u8; 64]).expect("create POSIX object");
    }
    println!(
        "created {} System V and {POSIX} POSIX objects in {:?}",
        SHM + SEM + MSG,
        t.elapsed()
    );

    let mut times: Vec<Duration> = Vec::new();
    let mut count = 0;
    for _ in 0..7 {
        let t = Instant::now();
        let snap = inspect::list();
        times.push(t.elapsed());
        count = snap
            .objects
            .iter()
            .filter(|o| o.kind != Kind::Memfd)
            .count();
    }
    times.sort();
    assert!(
        count >= SHM + SEM + MSG + POSIX,
        "listed only {count} objects"
    );
    println!(
        "inspect::list() of {count} objects: median {:?}, min {:?}, max {:?} (7 runs)",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    );

    for (kind, id) in ids {
        let _ = ipcinfo::remove(kind, id);
    }
    for i in 0..POSIX {
        let _ = std::fs::remove_file(format!("/dev/shm/bench_{i}"));
    }
}
