//! Black-box tests of `shmkit channel`, `shmkit send` and `shmkit recv`: the pipe through
//! shared memory, its end (sender EOF: exit 0; sender killed: exit 1 after every
//! message), and the error format.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

mod chan;

use chan::{collect, shmkit, Chan, BIN};

/// Waits for a child with a deadline.
fn wait_output(child: Child, deadline: Duration) -> Output {
    collect(child).wait(deadline)
}

#[test]
fn create_info_rm_and_errors() {
    let ch = Chan::new("cli_info");
    let out = shmkit(&[
        "channel",
        "create",
        &ch.0,
        "--capacity",
        "8K",
        "--max-message",
        "1K",
    ]);
    assert!(out.status.success(), "{out:?}");
    let out = shmkit(&["channel", "create", &ch.0]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!("shmkit: channel create: {}: ", ch.0)),
        "{err}"
    );
    let out = shmkit(&["channel", "info", &ch.0, "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["capacity"], 8192);
    assert_eq!(v[0]["max_message"], 1024);
    assert_eq!(v[0]["kind"], "channel-spsc");
    let out = shmkit(&["channel", "create", &ch.0, "--capacity", "lots"]);
    assert_eq!(out.status.code(), Some(2));
    let out = shmkit(&["channel", "rm", &ch.0, "/shmkit_test_none_such"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("shmkit: channel rm: /shmkit_test_none_such: shm_unlink failed"),
        "{err}"
    );
    assert!(!std::path::Path::new(&format!("/dev/shm{}", ch.0)).exists());
}

#[test]
fn a_pipe_through_shared_memory_ends_with_exit_0() {
    let ch = Chan::new("cli_pipe");
    assert!(shmkit(&["channel", "create", &ch.0, "--capacity", "4K"])
        .status
        .success());
    let recv = collect(
        Command::new(BIN)
            .args(["recv", &ch.0])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut send = Command::new(BIN)
        .args(["send", &ch.0])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = String::new();
    for i in 0..20_000 {
        input.push_str(&format!("message {i}\n"));
    }
    input.push_str("\nlast line without newline");
    send.stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let s = wait_output(send, Duration::from_secs(60));
    assert!(s.status.success());
    let out = recv.wait(Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut want = input.clone();
    want.push('\n');
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
}

#[test]
fn frames_and_count() {
    let ch = Chan::new("cli_frames");
    assert!(shmkit(&["channel", "create", &ch.0]).status.success());
    let mut send = Command::new(BIN)
        .args(["send", "--frames", &ch.0])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut frames = Vec::new();
    for m in [&b"a\nb"[..], b"", b"\xff\x00binary"] {
        frames.extend_from_slice(&(m.len() as u32).to_le_bytes());
        frames.extend_from_slice(m);
    }
    send.stdin.take().unwrap().write_all(&frames).unwrap();
    assert!(wait_output(send, Duration::from_secs(30)).status.success());
    let recv = Command::new(BIN)
        .args(["recv", "--frames", "--count", "3", &ch.0])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(recv, Duration::from_secs(30));
    assert!(out.status.success());
    assert_eq!(out.stdout, frames);
}

#[test]
fn a_killed_sender_makes_recv_exit_1_after_every_message() {
    let ch = Chan::new("cli_kill");
    assert!(shmkit(&["channel", "create", &ch.0]).status.success());
    let mut recv = Command::new(BIN)
        .args(["recv", &ch.0])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut send = Command::new(BIN)
        .args(["send", &ch.0])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    // Watchdog: if the exchange below hangs, both processes are killed, the reads end
    // and the test fails instead of waiting forever.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let pids = [recv.id(), send.id()];
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(Duration::from_secs(30)).is_err() {
            for pid in pids {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
    });
    let mut stdin = send.stdin.take().unwrap();
    for i in 0..100 {
        writeln!(stdin, "line {i}").unwrap();
    }
    stdin.flush().unwrap();
    // Read the 100 lines as recv prints them: then they were all committed.
    let mut lines = BufReader::new(recv.stdout.take().unwrap());
    let mut got = Vec::new();
    for _ in 0..100 {
        let mut l = String::new();
        lines.read_line(&mut l).unwrap();
        got.push(l);
    }
    send.kill().unwrap();
    send.wait().unwrap();
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut lines, &mut rest).unwrap();
    let out = wait_output(recv, Duration::from_secs(30));
    let _ = done_tx.send(());
    watchdog.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("died"), "{err}");
    assert!(
        err.starts_with(&format!("shmkit: recv: {}: the sender", ch.0)),
        "{err}"
    );
    assert_eq!(rest, "");
    for (i, l) in got.iter().enumerate() {
        assert_eq!(l, &format!("line {i}\n"));
    }
}
