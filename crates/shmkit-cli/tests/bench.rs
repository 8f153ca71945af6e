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
