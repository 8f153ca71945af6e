//! Black-box tests of `shmkit bench`: a tiny end-to-end run of the real binary (two
//! processes per transport) whose output must name every transport and whose JSON must
//! parse. No timing is asserted.

use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(120);

/// Runs shmkit with `args`, killing it if it overruns the deadline.
fn shmkit(args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_shmkit"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start shmkit");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(out) => out.expect("wait for shmkit"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("shmkit {args:?} did not finish within {DEADLINE:?}");
        }
    }
}

fn transports() -> Vec<String> {
    let out = shmkit(&["bench", "--list"]);
    assert!(out.status.success(), "{out:?}");
    let names: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect();
    for must in [
        "floor",
        "floor-pair",
        "shmkit-spin",
        "shmkit",
        "shmkit-block",
        "shmkit-loan",
        "shmkit-rpc",
        "shmkit-rpc-spin",
        "shmkit-mpsc",
        "shmkit-broadcast",
        "shmkit-broadcast-4",
        "pipe",
        "unix-stream",
        "unix-seqpacket",
        "tcp",
        "mq",
        "memcpy",
    ] {
        assert!(
            names.iter().any(|n| n == must),
            "{must} missing from {names:?}"
        );
    }
    names
}

#[test]
fn quick_run_reports_every_transport_and_writes_parsable_json() {
    let names = transports();
    let dir = std::env::temp_dir().join(format!("shmkit_bench_test_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _rm = Remove(dir.clone());
    let json = dir.join("out.json");
    let md = dir.join("out.md");
    let svg = dir.join("out.svg");
    let out = shmkit(&[
        "bench",
        "--quick",
        "--quiet",
        "--rounds",
        "1",
        "--iterations",
        "20",
        "--stream-messages",
        "50",
        "--wake-messages",
        "3",
        "--sizes",
        "8,4K,1M",
        "--json",
        json.to_str().unwrap(),
        "--markdown",
        md.to_str().unwrap(),
        "--plot",
        svg.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for n in &names {
        assert!(
            stdout.contains(n.as_str()),
            "{n} missing from the tables:\n{stdout}"
        );
    }
    for title in [
        "Round trip, 8 B",
        "Round trip, 1 MiB",
        "One-way stream",
        "Wake-up",
    ] {
        assert!(stdout.contains(title), "{title} missing:\n{stdout}");
    }

    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap())
        .expect("the JSON report parses");
    assert_eq!(v["failures"].as_array().map(Vec::len), Some(0), "{v:#}");
    let reported = v["transports"].as_array().expect("transports array");
    for n in &names {
        let t = reported
            .iter()
            .find(|t| t["name"] == n.as_str())
            .unwrap_or_else(|| panic!("{n} missing from the JSON"));
        assert_eq!(t["rounds_ok"], 1, "{n}: {t:#}");
        if n == "memcpy" {
            assert_eq!(t["throughput"].as_array().map(Vec::len), Some(2), "{t:#}");
            continue;
        }
        if n == "sync" {
            let ops = t["uncontended"].as_array().unwrap();
            for name in [
                "shmkit-mutex",
                "shmkit-sem",
                "sysv-semop",
                "pthread-mutex",
                "posix-sem",
            ] {
                assert!(ops.iter().any(|o| o["name"] == name), "{name}: {t:#}");
            }
            for o in ops {
                assert!(o["ns_per_pair"].as_f64().unwrap() > 0.0, "{o:#}");
            }
            continue;
        }
        let rt = t["round_trip"].as_array().unwrap();
        let sizes: Vec<u64> = rt.iter().map(|r| r["size"].as_u64().unwrap()).collect();
        assert!(sizes.contains(&8), "{n}: {sizes:?}");
        for r in rt {
            assert_eq!(r["samples"], 20, "{n}: {r:#}");
            let med = r["median_ns"].as_f64().unwrap();
            let p99 = r["p99_ns"].as_f64().unwrap();
            assert!(med > 0.0 && p99 >= med, "{n}: {r:#}");
        }
        // Sizes a transport cannot carry are listed, not silently dropped.
        let skipped = t["skipped_sizes"].as_array().unwrap();
        assert_eq!(
            rt.len()
                + skipped
                    .iter()
                    .filter(|s| [8, 4096, 1 << 20].contains(&s.as_u64().unwrap()))
                    .count(),
            3,
            "{n}: {t:#}"
        );
        assert_eq!(t["wakeup"]["samples"], 3, "{n}: {t:#}");
        // A request-reply channel carries round trips only: no stream figures.
        let streams = t["throughput"].as_array().map(Vec::len);
        if n.starts_with("shmkit-rpc") {
            assert_eq!(streams, Some(0), "{n}: {t:#}");
        } else {
            assert!(streams.is_some_and(|s| s > 0), "{n}: {t:#}");
        }
    }
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(md.contains("| floor"), "{md}");
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
        "{svg}"
    );
}

#[test]
fn unknown_transport_is_a_usage_error() {
    let out = shmkit(&["bench", "--quick", "-q", "-t", "carrier-pigeon"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("shmkit: bench: unknown transport 'carrier-pigeon'"),
        "{stderr}"
    );
}

#[test]
fn too_small_size_is_a_usage_error() {
    let out = shmkit(&["bench", "--quick", "-q", "-t", "pipe", "--sizes", "4"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("minimum of 8 bytes"));
}

struct Remove(std::path::PathBuf);
impl Drop for Remove {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The pids of the direct children of `pid`.
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // pid (comm) state ppid …: comm may hold spaces, so split after the last ')'.
            let Some((_, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            let ppid = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok());
            if ppid == Some(pid) {
                if let Ok(p) = e.file_name().to_string_lossy().parse() {
                    out.push(p);
                }
            }
        }
    }
    out
}

/// Whether `pid` is still a running (not zombie) process.
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().next().map(|s| s != "Z"))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Polls `cond` every few milliseconds until it holds or the deadline passes. This
/// observes another process's state through /proc; there is no event to wait on.
fn eventually(what: &str, deadline: Duration, mut cond: impl FnMut() -> bool) {
    let end = std::time::Instant::now() + deadline;
    while !cond() {
        assert!(
            std::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn ctrl_c_stops_the_peer_and_removes_the_queues() {
    let child = Command::new(env!("CARGO_BIN_EXE_shmkit"))
        .args([
            "bench",
            "-q",
            "-t",
            "mq",
            "--rounds",
            "3",
            "--sizes",
            "8",
            "--iterations",
            "100000000",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start shmkit bench");
    let pid = child.id();
    let mut kill = KillOnDrop(pid);
    // The peer process exists once the queues do.
    let mut peer = 0;
    eventually("the peer process", Duration::from_secs(60), || {
        peer = children(pid).into_iter().next().unwrap_or(0);
        peer != 0
    });
    let queues: Vec<String> = ['a', 'b']
        .iter()
        .map(|&d| shmkit_bench::transport::mq::queue_name(pid, 0, d))
        .collect();
    assert!(
        queues
            .iter()
            .all(|q| shmkit_bench::transport::mq::exists(q)),
        "{queues:?}"
    );

    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::INT,
    )
    .expect("SIGINT to shmkit bench");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(DEADLINE)
        .expect("shmkit bench exits after SIGINT")
        .unwrap();
    kill.0 = 0; // reaped: the pid is no longer ours
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("shmkit: bench: interrupted"));
    eventually("the peer to die", Duration::from_secs(30), || {
        !running(peer)
    });
    for q in &queues {
        assert!(!shmkit_bench::transport::mq::exists(q), "{q} left behind");
    }
}

struct KillOnDrop(u32);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // 0 (disarmed) gives None.
        if let Some(p) = rustix::process::Pid::from_raw(self.0 as i32) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        }
    }
}

#[test]
fn unavailable_core_is_a_usage_error() {
    let out = shmkit(&["bench", "--quick", "-q", "-t", "pipe", "--cores", "0,4000"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("core 4000 is not available"), "{stderr}");
    let out = shmkit(&["bench", "--quick", "-q", "-t", "pipe", "--cores", "zero"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}
