//! Black-box tests of MPSC and broadcast channels from the shell: `channel create
//! --kind`, `send`/`recv` on every kind, `channel info`, the overtaken warning, usage
//! errors.

use std::io::Write;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

mod chan;

use chan::{shmkit, Chan, BIN};

/// A child killed on drop, so that a failing test leaves none behind.
struct Kid(Option<Child>);

impl Kid {
    fn spawn(args: &[&str], input: Option<&[u8]>) -> Kid {
        let mut child = Command::new(BIN)
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn shmkit");
        if let Some(data) = input {
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(data).unwrap();
        }
        Kid(Some(child))
    }

    /// The output, waiting at most `deadline` (killed after).
    fn output(mut self, deadline: Duration) -> Output {
        let child = self.0.take().unwrap();
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        match rx.recv_timeout(deadline) {
            Ok(out) => out.expect("wait"),
            Err(_) => {
                // Our own child, still unreaped (the thread holds it): kill it by pid.
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                panic!("shmkit (pid {pid}) did not finish within {deadline:?}");
            }
        }
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn lines(n: std::ops::Range<u32>) -> Vec<u8> {
    n.map(|i| format!("{i}\n")).collect::<String>().into_bytes()
}

#[test]
fn mpsc_from_the_shell() {
    let ch = Chan::new("climulti_mpsc");
    let out = shmkit(&["channel", "create", &ch.0, "--kind", "mpsc", "--lanes", "3"]);
    assert!(out.status.success(), "{out:?}");
    let rx = Kid::spawn(&["recv", &ch.0, "--count", "300", "--timeout", "20s"], None);
    let senders: Vec<_> = (0..3)
        .map(|k| Kid::spawn(&["send", &ch.0], Some(&lines(k * 100..(k + 1) * 100))))
        .collect();
    for s in senders {
        let o = s.output(Duration::from_secs(20));
        assert!(o.status.success(), "{o:?}");
    }
    let o = rx.output(Duration::from_secs(30));
    assert!(o.status.success(), "{o:?}");
    let mut got: Vec<u32> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    got.sort();
    assert_eq!(got, (0..300).collect::<Vec<_>>());
    let info = shmkit(&["channel", "info", &ch.0]);
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(
        text.contains("channel-mpsc") && text.contains("lane 2"),
        "{text}"
    );
    let json = shmkit(&["channel", "info", "--json", &ch.0]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v[0]["kind"], "channel-mpsc");
    assert_eq!(v[0]["lanes"].as_array().unwrap().len(), 3);
}

#[test]
fn broadcast_from_the_shell() {
    let ch = Chan::new("climulti_bc");
    let out = shmkit(&[
        "channel",
        "create",
        &ch.0,
        "--kind",
        "broadcast",
        "--subscribers",
        "2",
    ]);
    assert!(out.status.success(), "{out:?}");
    // Two subscribers, each gets everything. They subscribe before the sender starts:
    // wait until `channel info` lists both.
    let a = Kid::spawn(&["recv", &ch.0, "--timeout", "20s"], None);
    let b = Kid::spawn(&["recv", &ch.0, "--timeout", "20s"], None);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let v: serde_json::Value =
            serde_json::from_slice(&shmkit(&["channel", "info", "--json", &ch.0]).stdout).unwrap();
        if v[0]["receivers"].as_array().map_or(0, |a| a.len()) == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "receivers did not join"
        );
    }
    let tx = Kid::spawn(&["send", &ch.0], Some(&lines(0..500)));
    assert!(tx.output(Duration::from_secs(20)).status.success());
    for r in [a, b] {
        let o = r.output(Duration::from_secs(30));
        assert!(o.status.success(), "{o:?}");
        assert_eq!(o.stdout, lines(0..500));
    }
}

#[test]
fn broadcast_overwrite_warns_with_the_missed_count() {
    let ch = Chan::new("climulti_bcow");
    let out = shmkit(&[
        "channel",
        "create",
        &ch.0,
        "--kind",
        "broadcast",
        "--overwrite",
        "--capacity",
        "64",
        "--max-message",
        "16",
    ]);
    assert!(out.status.success(), "{out:?}");
    let r = Kid::spawn(&["recv", &ch.0, "--timeout", "20s"], None);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let v: serde_json::Value =
            serde_json::from_slice(&shmkit(&["channel", "info", "--json", &ch.0]).stdout).unwrap();
        assert_eq!(v[0]["mode"], "overwrite");
        if v[0]["receivers"].as_array().map_or(0, |a| a.len()) == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "receiver did not join"
        );
    }
    let tx = Kid::spawn(&["send", &ch.0], Some(&lines(0..5000)));
    assert!(tx.output(Duration::from_secs(20)).status.success());
    let o = r.output(Duration::from_secs(30));
    assert!(o.status.success(), "{o:?}");
    let got = String::from_utf8(o.stdout).unwrap().lines().count() as u64;
    let missed: u64 = String::from_utf8(o.stderr)
        .unwrap()
        .lines()
        .map(|l| {
            assert!(l.starts_with("shmkit: recv: "), "{l}");
            let w: Vec<&str> = l.split_whitespace().collect();
            w[w.len() - 3].parse::<u64>().unwrap()
        })
        .sum();
    assert_eq!(got + missed, 5000);
}

#[test]
fn usage_errors_and_full_channels() {
    let ch = Chan::new("climulti_usage");
    let o = shmkit(&["channel", "create", &ch.0, "--overwrite"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("shmkit: "));
    let o = shmkit(&["channel", "create", &ch.0, "--kind", "mpsc", "--lanes", "0"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&ch.0) && err.contains("lanes"), "{err}");
    assert!(
        shmkit(&["channel", "create", &ch.0, "--kind", "mpsc", "--lanes", "1"])
            .status
            .success()
    );
    // The only lane is held by a live sender (its stdin stays open): a second one is
    // refused clearly.
    let first = Command::new(BIN)
        .args(["send", &ch.0])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed on drop, also when an assertion below fails.
    let first = Kid(Some(first));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let v: serde_json::Value =
            serde_json::from_slice(&shmkit(&["channel", "info", "--json", &ch.0]).stdout).unwrap();
        if !v[0]["lanes"][0]["sender"].is_null() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sender did not open"
        );
    }
    let o = Command::new(BIN)
        .args(["send", &ch.0])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    drop(first);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with(&format!("shmkit: send: {}", ch.0)) && err.contains("live producer"),
        "{err}"
    );
}
