//! Black-box tests of the request-reply channel in the CLI: `channel create --kind rpc`,
//! `channel info`, `ls`, `channel rm`; `shmkit call` against `shmkit serve` in two
//! processes, the exit codes when either end is killed or a timeout passes; the error
//! format; and the demo's rpc section.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

mod chan;

use chan::{collect, shmkit, Chan, BIN};

/// How long any one process of these tests may take.
const DEADLINE: Duration = Duration::from_secs(30);

/// Kills the given processes unless the test ends within [`DEADLINE`] (a hang becomes a
/// failure: the killed processes' pipes close), and at once if the test panics (no
/// server is left waiting for a client that will never come).
struct Watchdog {
    done: Option<mpsc::Sender<bool>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    fn new(pids: Vec<u32>) -> Watchdog {
        let (done, rx) = mpsc::channel::<bool>();
        let thread = std::thread::spawn(move || {
            if rx.recv_timeout(DEADLINE) != Ok(true) {
                for pid in pids {
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                }
            }
        });
        Watchdog {
            done: Some(done),
            thread: Some(thread),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(d) = self.done.take() {
            let _ = d.send(!std::thread::panicking());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts `shmkit ARGS` with every stream piped.
fn spawn(args: &[&str]) -> Child {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start shmkit")
}

fn create_rpc(ch: &Chan, max: &str) {
    let out = shmkit(&[
        "channel",
        "create",
        &ch.0,
        "--kind",
        "rpc",
        "--max-message",
        max,
    ]);
    assert!(out.status.success(), "{out:?}");
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Our object in `shmkit ls --json`.
fn listed(name: &str) -> serde_json::Value {
    let out = shmkit(&["ls", "--json", "-k", "posix-shm"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["object"] == name)
        .unwrap_or_else(|| panic!("{name} not listed"))
        .clone()
}

#[test]
fn create_info_ls_rm() {
    let ch = Chan::new("rpc_info");
    create_rpc(&ch, "1K");
    let out = shmkit(&["channel", "create", &ch.0, "--kind", "rpc"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with(&format!("shmkit: channel create: {}: ", ch.0)),
        "{}",
        stderr(&out)
    );

    let out = shmkit(&["channel", "info", &ch.0]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        &format!("{}: channel-rpc", ch.0)[..],
        "up to 1024 bytes",
        "calls        0 answered",
        "pending      no",
        "client       none (opened 0 times)",
        "server       none (opened 0 times)",
    ] {
        assert!(text.contains(needle), "'{needle}' in:\n{text}");
    }
    let out = shmkit(&["channel", "info", "--json", &ch.0]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["kind"], "channel-rpc");
    assert_eq!(v[0]["max_message"], 1024);
    assert_eq!(v[0]["calls"], 0);
    assert_eq!(v[0]["pending"], false);
    assert!(v[0]["client"].is_null() && v[0]["server"].is_null());

    let o = listed(&ch.0);
    assert_eq!(o["status"]["shmkit"], "channel-rpc");
    assert_eq!(o["channel"]["kind"], "rpc");
    assert_eq!(o["channel"]["state"], "idle");
    assert_eq!(o["channel"]["calls"], 0);
    assert_eq!(o["channel"]["max_message"], 1024);
    let out = shmkit(&["ls", "-k", "posix-shm"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text
        .lines()
        .find(|l| l.contains(&ch.0))
        .unwrap_or_else(|| panic!("{} not in:\n{text}", ch.0));
    assert!(row.contains("shmkit:channel-rpc"), "{row}");
    assert!(
        row.contains(
            "rpc: idle, 0 calls answered, messages up to 1024 B, client none, server none"
        ),
        "{row}"
    );

    let out = shmkit(&["channel", "rm", &ch.0]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!std::path::Path::new(&format!("/dev/shm{}", ch.0)).exists());
    let out = shmkit(&["channel", "info", &ch.0]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with(&format!("shmkit: channel info: {}: shm_open failed", ch.0)),
        "{}",
        stderr(&out)
    );
}

#[test]
fn call_against_serve_between_two_processes() {
    let ch = Chan::new("rpc_lines");
    create_rpc(&ch, "64");
    let serve = spawn(&["serve", &ch.0, "--", "tr", "a-z", "A-Z"]);
    let mut call = spawn(&["call", &ch.0]);
    let _watchdog = Watchdog::new(vec![serve.id(), call.id()]);
    let serve = collect(serve);
    let mut input = String::new();
    for i in 0..50 {
        input.push_str(&format!("request {i}\n"));
    }
    input.push_str("\nlast without newline");
    call.stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = collect(call).wait(DEADLINE);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut want = input.to_uppercase();
    want.push('\n');
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
    // The client closed: the server stops with exit 0.
    let s = serve.wait(DEADLINE);
    assert!(s.status.success(), "{}", stderr(&s));
    let out = shmkit(&["channel", "info", "--json", &ch.0]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["calls"], 52);
    assert_eq!(v[0]["client_opens"], 1);
    assert_eq!(v[0]["server_opens"], 1);
}

#[test]
fn frames_raw_and_count() {
    let ch = Chan::new("rpc_frames");
    create_rpc(&ch, "1K");
    let serve = spawn(&["serve", &ch.0, "--raw", "--count", "3", "--", "cat"]);
    let mut call = spawn(&["call", "--frames", &ch.0]);
    let _watchdog = Watchdog::new(vec![serve.id(), call.id()]);
    let serve = collect(serve);
    let msgs: [&[u8]; 3] = [b"", b"two\nlines\0and a zero", &[0xff; 1024]];
    let mut frames = Vec::new();
    for m in msgs {
        frames.extend_from_slice(&(m.len() as u32).to_le_bytes());
        frames.extend_from_slice(m);
    }
    call.stdin.take().unwrap().write_all(&frames).unwrap();
    let out = collect(call).wait(DEADLINE);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, frames);
    let s = serve.wait(DEADLINE);
    assert!(s.status.success(), "{}", stderr(&s));

    // Over the limit: refused before anything is sent.
    let mut call = spawn(&["call", &ch.0]);
    call.stdin.take().unwrap().write_all(&[b'x'; 1025]).unwrap();
    let out = collect(call).wait(DEADLINE);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "shmkit: call: {}: line 1 is 1025 bytes, the channel's limit is 1024\n",
            ch.0
        )
    );
}

#[test]
fn a_failing_command_drops_its_request_and_serving_goes_on() {
    let ch = Chan::new("rpc_fail");
    create_rpc(&ch, "64");
    let script = r#"read x; [ "$x" = bad ] && exit 3; echo "ok $x""#;
    let serve = spawn(&["serve", &ch.0, "--", "sh", "-c", script]);
    let mut call = spawn(&["call", &ch.0]);
    let _watchdog = Watchdog::new(vec![serve.id(), call.id()]);
    let serve = collect(serve);
    call.stdin
        .take()
        .unwrap()
        .write_all(b"a\nbad\nb\n")
        .unwrap();
    let out = collect(call).wait(DEADLINE);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok a\nok b\n");
    assert_eq!(
        stderr(&out),
        format!(
            "shmkit: call: {0}: request 2 was dropped unanswered by the server\n\
             shmkit: call: {0}: 1 of 3 requests were dropped unanswered\n",
            ch.0
        )
    );
    let s = serve.wait(DEADLINE);
    assert!(s.status.success(), "{}", stderr(&s));
    assert!(
        stderr(&s).contains(&format!(
            "shmkit: serve: {}: request 2: sh failed (exit status: 3); dropped unanswered",
            ch.0
        )),
        "{}",
        stderr(&s)
    );
}

/// Writes `line` to `call`'s input and reads its reply line.
fn round_trip(stdin: &mut ChildStdin, replies: &mut impl BufRead, line: &str) -> String {
    writeln!(stdin, "{line}").unwrap();
    stdin.flush().unwrap();
    let mut l = String::new();
    replies.read_line(&mut l).unwrap();
    l
}

#[test]
fn a_killed_server_makes_call_exit_1() {
    let ch = Chan::new("rpc_kill_server");
    create_rpc(&ch, "64");
    let mut serve = spawn(&["serve", &ch.0, "--echo"]);
    let mut call = spawn(&["call", &ch.0]);
    let _watchdog = Watchdog::new(vec![serve.id(), call.id()]);
    let mut stdin = call.stdin.take().unwrap();
    let mut replies = BufReader::new(call.stdout.take().unwrap());
    // A reply proves the server is up and serving.
    assert_eq!(round_trip(&mut stdin, &mut replies, "one"), "one\n");
    let server_pid = serve.id();
    serve.kill().unwrap();
    serve.wait().unwrap();
    writeln!(stdin, "two").unwrap();
    drop(stdin);
    let out = collect(call).wait(DEADLINE);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "shmkit: call: {}: the server (pid {server_pid}) died before answering request 2\n",
            ch.0
        )
    );
    // The request stays pending, as `info` shows.
    let out = shmkit(&["channel", "info", "--json", &ch.0]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["pending"], true);
    assert_eq!(v[0]["calls"], 1);
    assert_ne!(v[0]["server"]["alive"], true);
    assert_eq!(listed(&ch.0)["channel"]["state"], "pending");
}

#[test]
fn a_killed_client_makes_serve_exit_1() {
    let ch = Chan::new("rpc_kill_client");
    create_rpc(&ch, "64");
    let serve = spawn(&["serve", &ch.0, "--echo"]);
    let mut call = spawn(&["call", &ch.0]);
    let _watchdog = Watchdog::new(vec![serve.id(), call.id()]);
    let serve = collect(serve);
    let mut stdin = call.stdin.take().unwrap();
    let mut replies = BufReader::new(call.stdout.take().unwrap());
    assert_eq!(round_trip(&mut stdin, &mut replies, "one"), "one\n");
    let client_pid = call.id();
    call.kill().unwrap();
    call.wait().unwrap();
    let s = serve.wait(DEADLINE);
    assert_eq!(s.status.code(), Some(1));
    assert_eq!(
        stderr(&s),
        format!(
            "shmkit: serve: {}: the client (pid {client_pid}) died after 1 requests\n",
            ch.0
        )
    );
}

#[test]
fn timeouts() {
    let ch = Chan::new("rpc_timeout");
    create_rpc(&ch, "64");
    // No server: the call gives up.
    let mut call = spawn(&["call", "--timeout", "100ms", &ch.0]);
    call.stdin.take().unwrap().write_all(b"anyone?\n").unwrap();
    let out = collect(call).wait(DEADLINE);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "shmkit: call: {}: no reply to request 1 within 100ms\n",
            ch.0
        )
    );
    // The request it left pending is received by the next server.
    let serve = collect(spawn(&["serve", &ch.0, "--echo", "--count", "1"]));
    let s = serve.wait(DEADLINE);
    assert!(s.status.success(), "{}", stderr(&s));
    // No client: the server gives up.
    let serve = collect(spawn(&["serve", &ch.0, "--echo", "--timeout", "100ms"]));
    let s = serve.wait(DEADLINE);
    assert_eq!(s.status.code(), Some(1));
    assert_eq!(
        stderr(&s),
        format!(
            "shmkit: serve: {}: no request for 100ms (after 0 requests)\n",
            ch.0
        )
    );
}

#[test]
fn error_format() {
    let missing = Chan::new("rpc_missing");
    let out = shmkit(&["call", &missing.0]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with(&format!(
            "shmkit: call: {}: shm_open failed: No such file or directory",
            missing.0
        )),
        "{}",
        stderr(&out)
    );
    let out = shmkit(&["serve", &missing.0, "--echo"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with(&format!("shmkit: serve: {}: shm_open failed", missing.0)),
        "{}",
        stderr(&out)
    );

    let spsc = Chan::new("rpc_not");
    assert!(shmkit(&["channel", "create", &spsc.0]).status.success());
    for (verb, how) in [("call", "--frames"), ("serve", "--echo")] {
        let out = shmkit(&[verb, &spsc.0, how]);
        assert_eq!(out.status.code(), Some(1), "{verb}");
        assert!(
            stderr(&out).starts_with(&format!(
                "shmkit: {verb}: {}: not a request-reply channel (it is a channel-spsc",
                spsc.0
            )),
            "{}",
            stderr(&out)
        );
    }
    // serve needs a command or --echo, not both.
    let out = shmkit(&["serve", &spsc.0]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("shmkit: serve: "),
        "{}",
        stderr(&out)
    );
    let out = shmkit(&["serve", &spsc.0, "--echo", "--", "cat"]);
    assert_eq!(out.status.code(), Some(2));
    // send and recv refuse an rpc channel and say what to use instead.
    let ch = Chan::new("rpc_send");
    create_rpc(&ch, "64");
    let out = shmkit(&["recv", &ch.0, "--timeout", "1s"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "shmkit: recv: {}: a request-reply channel: answer it with `shmkit serve`\n",
            ch.0
        )
    );
    let out = shmkit(&["send", &ch.0]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "shmkit: send: {}: a request-reply channel: call it with `shmkit call`\n",
            ch.0
        )
    );
}

#[test]
fn demo_rpc_section_runs_and_cleans_up() {
    let child = Command::new(BIN)
        .args(["demo", "--only", "rpc"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = collect(child).wait(DEADLINE);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    for needle in [
        "the reply is \"HELLO\"",
        "the reply is \"SHARED MEMORY\"",
        "called with the number 41, the reply is 42",
        "the client closed after 4 calls; stopping",
        "everything it created has been removed",
    ] {
        assert!(text.contains(needle), "'{needle}' in:\n{text}");
    }
    assert!(!std::path::Path::new(&format!("/dev/shm/shmkit_demo_{pid}_rpc")).exists());
}
