//! Black-box tests of the real `shmkit` binary on System V segments: every command,
//! human and `--json` output, malformed input (exit 2), failed operations (exit 1),
//! a C peer meeting the CLI in both directions, and never a panic.
//!
//! Every segment has a key in the test range 0x5348xxxx or is private, and a guard
//! removes it even when the test panics.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use shmkit::sysv::{Key, Segment};

const DEADLINE: Duration = Duration::from_secs(30);
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A key in the test range, unique within this process.
fn unique_key() -> i32 {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let low =
        (std::process::id().wrapping_mul(131) ^ n.wrapping_mul(7919).wrapping_add(0x77)) & 0xffff;
    (0x5348_0000u32 | low) as i32
}

/// Removes a segment by id on drop.
struct SegGuard(i32);
impl Drop for SegGuard {
    fn drop(&mut self) {
        if let Ok(s) = Segment::from_id(self.0) {
            let _ = s.remove();
        }
    }
}

/// Waits for a child with a deadline on its pidfd; kills it and panics on time-out.
fn finish(mut child: Child, what: &str) -> Output {
    use rustix::event::{poll, PollFd, PollFlags};
    use rustix::process::{pidfd_open, Pid, PidfdFlags};
    let fd = pidfd_open(
        Pid::from_raw(child.id() as i32).unwrap(),
        PidfdFlags::empty(),
    )
    .unwrap();
    let end = Instant::now() + DEADLINE;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let ts = rustix::time::Timespec::try_from(left).unwrap();
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match poll(&mut fds, Some(&ts)) {
            Ok(0) => {
                let _ = child.kill();
                panic!("{what} did not finish within {DEADLINE:?}");
            }
            Ok(_) => break,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => panic!("poll: {e}"),
        }
    }
    child.wait_with_output().unwrap()
}

fn shmkit_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_shmkit"));
    c.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Runs `shmkit ARGS` and checks it never panics.
fn shmkit(args: &[&str]) -> Output {
    let out = finish(
        shmkit_cmd(args).spawn().unwrap(),
        &format!("shmkit {args:?}"),
    );
    no_panic(&out, args);
    out
}

fn no_panic(out: &Output, args: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("panicked")
            && !err.contains("internal error")
            && !err.contains("RUST_BACKTRACE"),
        "shmkit {args:?} panicked: {err}"
    );
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs and expects exit 0, returning stdout.
fn ok(args: &[&str]) -> String {
    let o = shmkit(args);
    assert!(
        o.status.success(),
        "shmkit {args:?} failed ({}): {}",
        o.status,
        stderr(&o)
    );
    stdout(&o)
}

/// Runs and expects exit `code` and a message on stderr starting with
/// `shmkit: <verb>: ` and containing `needle`.
fn fails(code: i32, args: &[&str], needle: &str) -> String {
    let o = shmkit(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(code), "shmkit {args:?}: {err}");
    assert!(
        err.starts_with(&format!("shmkit: {}: ", args[0])),
        "shmkit {args:?}: message format: {err}"
    );
    assert!(
        err.contains(needle),
        "shmkit {args:?}: expected '{needle}' in: {err}"
    );
    err
}

/// Creates a keyed segment through the CLI and returns (object `id:N`, key object, guard).
fn create_keyed(size: &str, extra: &[&str]) -> (String, String, SegGuard) {
    let key = format!("key:0x{:08x}", unique_key() as u32);
    let mut args = vec!["create", key.as_str(), "--size", size];
    args.extend_from_slice(extra);
    let line = ok(&args);
    let id = line.split_whitespace().next().unwrap().to_string();
    assert!(id.starts_with("id:"), "{line}");
    let g = SegGuard(id[3..].parse().unwrap());
    (id, key, g)
}

#[test]
fn create_write_read_info_chmod_rm_round_trip() {
    let (id, key, _g) = create_keyed("4K", &["--mode", "640"]);
    ok(&["write", &id, "hello", "--as", "cstring"]);
    assert_eq!(ok(&["read", &key]), "hello\n");
    ok(&["write", &key, "0x2a", "--as", "u32", "--offset", "64"]);
    assert_eq!(ok(&["read", &id, "--offset", "64", "--as", "u32"]), "42\n");
    ok(&["write", &id, "-7", "--as", "i16", "-o", "80"]);
    ok(&["write", &id, "2.5", "--as", "f64", "-o", "88"]);
    assert_eq!(ok(&["read", &id, "-o", "80", "--as", "i16"]), "-7\n");
    assert_eq!(ok(&["read", &id, "-o", "88", "--as", "f64"]), "2.5\n");
    assert_eq!(
        ok(&["read", &id, "-o", "64", "-l", "8", "--as", "u8"]),
        "42\n0\n0\n0\n0\n0\n0\n0\n"
    );
    ok(&["write", &id, "de ad be ef", "--as", "hex", "-o", "100"]);
    let dump = ok(&["read", &id, "--as", "hex", "-o", "96", "-l", "16"]);
    assert!(
        dump.starts_with("00000060  00 00 00 00 de ad be ef"),
        "{dump}"
    );
    let raw = shmkit(&["read", &id, "--as", "raw", "-l", "6"]);
    assert_eq!(raw.stdout, b"hello\0");

    let human = ok(&["info", &id]);
    for needle in [
        format!("{id}  (System V shared memory)"),
        format!("key      {}", &key[4..]),
        "size     4096 bytes".into(),
        "mode     0640".into(),
        "nattch   0".into(),
        "cpid     ".into(),
    ] {
        assert!(human.contains(&needle), "'{needle}' in:\n{human}");
    }
    let json: serde_json::Value = serde_json::from_str(&ok(&["info", &key, "--json"])).unwrap();
    let i = &json[0];
    assert_eq!(i["kind"], "sysv");
    assert_eq!(i["id"].as_i64().unwrap().to_string(), id[3..]);
    assert_eq!(i["key"], key[4..]);
    assert_eq!(i["size"], 4096);
    assert_eq!(i["mode"], 0o640);
    assert_eq!(i["nattch"], 0);
    assert_eq!(i["dest"], false);
    assert!(
        i["atime"].as_i64().unwrap() > 0,
        "numbers stay numbers: {i}"
    );

    ok(&["chmod", "600", &id]);
    let json: serde_json::Value = serde_json::from_str(&ok(&["info", &id, "--json"])).unwrap();
    assert_eq!(json[0]["mode"], 0o600);
    if rustix::process::getuid().is_root() {
        ok(&["chown", "nobody:65534", &id]);
        let json: serde_json::Value = serde_json::from_str(&ok(&["info", &id, "--json"])).unwrap();
        assert_eq!(
            (json[0]["uid"].as_u64(), json[0]["gid"].as_u64()),
            (Some(65534), Some(65534))
        );
        assert_eq!(json[0]["cuid"], 0);
        ok(&["chown", "0", &id]);
        ok(&["chown", ":root", &id]);
        let human = ok(&["info", &id]);
        assert!(human.contains("owner    root (0) / root (0)"), "{human}");
    }
    ok(&["rm", &id]);
    fails(1, &["info", &id], "no segment has this id");
    fails(1, &["read", &key], "no segment has this key");
}

#[test]
fn private_and_ftok_segments_and_json_create() {
    let out = ok(&["create", "--size", "100", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let id = v["id"].as_i64().unwrap() as i32;
    let _g = SegGuard(id);
    assert_eq!(v["key"], "0x00000000");
    assert_eq!(v["size"], 100);
    assert_eq!(v["mode"], 0o600);
    assert_eq!(v["object"], format!("id:{id}"));

    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let file = dir.join(format!("shmkit_test_{}_ftok_cli", std::process::id()));
    std::fs::write(&file, b"x").unwrap();
    let _rm = Guard(file.clone());
    let (obj, _g2) = (1..=40)
        .find_map(|proj| {
            let obj = format!("ftok:{}:{proj}", file.display());
            let o = shmkit(&["create", &obj, "--size", "64"]);
            o.status.success().then(|| {
                let id: i32 = stdout(&o).split_whitespace().next().unwrap()[3..]
                    .parse()
                    .unwrap();
                (obj, SegGuard(id))
            })
        })
        .expect("a free ftok key");
    // The key shown is ftok's (the library's ftok is checked against C's in its tests).
    let proj: i32 = obj.rsplit(':').next().unwrap().parse().unwrap();
    let key = Key::ftok(&file, proj).unwrap();
    let json: serde_json::Value = serde_json::from_str(&ok(&["info", &obj, "--json"])).unwrap();
    assert_eq!(json[0]["key"], key.to_string());
    ok(&["write", &obj, "via ftok"]);
    assert_eq!(ok(&["read", &obj, "-l", "8"]), "via ftok\n");
    // Exclusive by default; --or-open opens the same one.
    fails(1, &["create", &obj, "--size", "64"], "exists");
    let again = ok(&["create", &obj, "--size", "32", "--or-open"]);
    assert!(again.contains("size 64"), "{again}");
    fails(
        1,
        &["create", &obj, "--size", "65", "--or-open"],
        "larger than the existing segment",
    );
    ok(&["rm", &obj]);
}

struct Guard(PathBuf);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn usage_errors_exit_2_with_clear_messages() {
    for (args, needle) in [
        (
            &["read", "5"][..],
            "name an object as id:N, key:K, ftok:PATH:PROJ or /NAME",
        ),
        (&["read", "id:-1"], "non-negative"),
        (&["read", "key:0xZZ"], "a key is a 32-bit number"),
        (&["read", "ftok:/tmp"], "ftok:PATH:PROJ"),
        (&["read", "ftok:/tmp:256"], "PROJ is one character"),
        (&["info", "id:1", "bogus"], "name an object"),
        (&["rm", "id:x"], "non-negative"),
        (
            &["read", "id:1", "--as", "u33"],
            "unknown format or type 'u33'",
        ),
        (
            &["write", "id:1", "1", "--as", "int"],
            "unknown format or type 'int'",
        ),
        (&["wait", "id:1", "--as", "float"], "unknown format or type"),
        (
            &["write", "id:1", "300", "--as", "u8"],
            "not a valid u8 value",
        ),
        (&["write", "id:1", "abc", "--as", "hex"], "hex"),
        (&["read", "id:1", "--offset", "-3"], "not a size"),
        (
            &["read", "id:1", "--as", "cstring"],
            "cstring is a format for writing",
        ),
        (
            &["read", "id:1", "--as", "u32", "-l", "6"],
            "not a multiple",
        ),
        (&["create", "--size", "12Q"], "not a size"),
        (&["create", "--size", "1", "--mode", "999"], "not a mode"),
        (&["chmod", "rw", "id:1"], "not a mode"),
        (&["chown", "no_such_user_shmkit", "id:1"], "no user named"),
        (
            &["chown", ":no_such_group_shmkit", "id:1"],
            "no group named",
        ),
        (&["wait", "id:1", "--timeout", "soon"], "not a duration"),
    ] {
        fails(2, args, needle);
    }
    // clap's own usage errors also exit 2 without a panic.
    let o = shmkit(&["read"]);
    assert_eq!(o.status.code(), Some(2));
    let o = shmkit(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn malformed_objects_change_nothing() {
    let (id, _key, _g) = create_keyed("64", &[]);
    fails(2, &["rm", &id, "id:oops"], "non-negative");
    ok(&["info", &id]);
}

#[test]
fn failures_exit_1_name_the_object_and_reason() {
    let missing_key = format!("key:0x{:08x}", unique_key() as u32);
    fails(
        1,
        &["info", "id:2147483647"],
        "id:2147483647: shmctl(IPC_STAT) failed",
    );
    fails(
        1,
        &["read", &missing_key],
        &format!("{missing_key}: shmget failed: No such file"),
    );
    fails(
        1,
        &["create", "id:3", "--size", "1"],
        "an id names an existing segment",
    );
    fails(1, &["create", "--size", "0"], "size 0");
    fails(
        1,
        &["create", "--size", "0xffffffffffffffff"],
        "shmget failed",
    );
    let missing_posix = format!("/shmkit_test_{}_missing", std::process::id());
    fails(1, &["info", &missing_posix], &format!("{missing_posix}: "));

    let (id, _key, _g) = create_keyed("100", &[]);
    fails(1, &["read", &id, "-o", "101"], "exceeds the size 100");
    fails(
        1,
        &["read", &id, "-o", "96", "--as", "u64"],
        "offset 96 + length 8 exceeds the size 100",
    );
    fails(
        1,
        &["write", &id, "hello", "-o", "98"],
        "exceeds the size 100",
    );
    assert_eq!(
        ok(&["read", &id, "--as", "hex"]).matches(" 00").count(),
        100,
        "nothing written"
    );

    // Several objects: continue past failures, exit 1 at the end.
    let (id2, _k2, _g2) = create_keyed("64", &[]);
    let err = fails(
        1,
        &["rm", &missing_key, &id2, "id:2147483647"],
        &missing_key,
    );
    assert!(err.contains("id:2147483647"), "{err}");
    assert_eq!(err.lines().count(), 2, "{err}");
    fails(1, &["info", &id2], "no segment has this id");
    let o = shmkit(&["info", &id, &missing_key]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains(&id), "the good one is shown");
}

#[test]
fn wait_for_a_change_an_equal_value_and_a_timeout() {
    let (id, _key, _g) = create_keyed("64", &[]);
    fails(1, &["wait", &id, "--timeout", "50ms"], "timed out after");
    let err = fails(
        1,
        &["wait", &id, "--equals", "5", "--timeout", "50ms"],
        "to equal 5; it is 0",
    );
    assert!(err.contains(&id), "{err}");
    // Already equal: returns at once and prints the value.
    assert_eq!(
        ok(&["wait", &id, "--equals", "0", "--timeout", "1s"]),
        "0\n"
    );

    // A writer changes the word while `wait` watches.
    let waiter = shmkit_cmd(&[
        "wait",
        &id,
        "--as",
        "u32",
        "-o",
        "8",
        "--equals",
        "77",
        "--timeout",
        "20s",
    ])
    .spawn()
    .unwrap();
    // Waiting for a change from a known value: a waiter that started late would take
    // "ping" as its starting point and wait for ever (this test was flaky so).
    ok(&["write", &id, "pong", "-o", "16"]);
    let changer = shmkit_cmd(&[
        "wait",
        &id,
        "--as",
        "text",
        "-o",
        "16",
        "-l",
        "4",
        "--from",
        "pong",
        "--timeout",
        "20s",
    ])
    .spawn()
    .unwrap();
    ok(&["write", &id, "77", "--as", "u32", "-o", "8"]);
    ok(&["write", &id, "ping", "-o", "16"]);
    let o = finish(waiter, "wait --equals");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "77\n");
    let o = finish(changer, "wait for a change");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "ping\n");
}

#[test]
fn write_from_stdin_and_a_closed_stdout() {
    let (id, _key, _g) = create_keyed("64K", &[]);
    let mut child = shmkit_cmd(&["write", &id, "-o", "10"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"from stdin\0")
        .unwrap();
    let o = finish(child, "write from stdin");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(ok(&["read", &id, "-o", "10"]), "from stdin\n");

    // A reader that went away is not an error.
    let (r, w) = rustix::pipe::pipe().unwrap();
    drop(r);
    let child = Command::new(env!("CARGO_BIN_EXE_shmkit"))
        .args(["read", &id, "--as", "hex"])
        .stdout(Stdio::from(w))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let o = finish(child, "read into a closed pipe");
    no_panic(&o, &["read"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
}

#[test]
fn no_permission_for_user_nobody() {
    if !rustix::process::getuid().is_root() {
        eprintln!("skipping: running shmkit as nobody needs root");
        return;
    }
    let (id, _key, _g) = create_keyed("64", &[]);
    ok(&["write", &id, "secret"]);
    for args in [
        vec!["read", id.as_str()],
        vec!["write", id.as_str(), "x"],
        vec!["rm", id.as_str()],
        vec!["chmod", "666", id.as_str()],
    ] {
        let child = match shmkit_cmd(&args).uid(65534).gid(65534).spawn() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                eprintln!("skipping: user nobody cannot execute the binary here ({e})");
                return;
            }
            Err(e) => panic!("spawn shmkit as nobody: {e}"),
        };
        let o = finish(child, "shmkit as nobody");
        no_panic(&o, &args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("Permission denied") || err.contains("Operation not permitted"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(ok(&["read", &id]), "secret\n", "nothing changed");
    let json: serde_json::Value = serde_json::from_str(&ok(&["info", &id, "--json"])).unwrap();
    assert_eq!(json[0]["mode"], 0o600);
}

fn compile_peer() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c-peers");
    std::fs::create_dir_all(&dir).unwrap();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let src = dir.join(format!("sysv_cli_peer.{}.{n}.c", std::process::id()));
    // One C peer serves the library's tests ("rust") and these ("shell").
    std::fs::write(&src, include_str!("../../shmkit/tests/it/c/sysv_peer.c")).unwrap();
    let exe = dir.join(format!("sysv_cli_peer.{}.{n}", std::process::id()));
    let out = Command::new("cc")
        .args(["-O1", "-Wall", "-Werror", "-std=gnu11", "-o"])
        .arg(&exe)
        .arg(&src)
        .output()
        .expect("run cc");
    assert!(
        out.status.success(),
        "cc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(&src);
    exe
}

#[test]
fn c_peer_and_cli_handshake_through_an_ftok_key() {
    let peer = compile_peer();
    let _rm_peer = Guard(peer.clone());
    let file = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("shmkit_test_{}_ftok_c", std::process::id()));
    std::fs::write(&file, b"x").unwrap();
    let _rm = Guard(file.clone());
    let (obj, proj, _g) = (41..=80)
        .find_map(|proj| {
            let obj = format!("ftok:{}:{proj}", file.display());
            let o = shmkit(&["create", &obj, "--size", "4096"]);
            o.status.success().then(|| {
                let id: i32 = stdout(&o).split_whitespace().next().unwrap()[3..]
                    .parse()
                    .unwrap();
                (obj, proj, SegGuard(id))
            })
        })
        .expect("a free ftok key");
    let child = Command::new(&peer)
        .args(["ftok", file.to_str().unwrap(), &proj.to_string(), "shell"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Shell side: message, then the flag, whose write wakes the C side sleeping in
    // FUTEX_WAIT on it; then wait for the C side's answer.
    ok(&["write", &obj, "from shell", "--as", "cstring", "-o", "8"]);
    ok(&["write", &obj, "1", "--as", "u32"]);
    assert_eq!(
        ok(&[
            "wait",
            &obj,
            "--as",
            "u32",
            "--equals",
            "2",
            "--timeout",
            "20s"
        ]),
        "2\n"
    );
    assert_eq!(ok(&["read", &obj, "-o", "64"]), "from c\n");
    let o = finish(child, "sysv_cli_peer ftok");
    assert!(o.status.success(), "peer: {}", stderr(&o));
    ok(&["rm", &obj]);
}

#[test]
fn c_peer_private_segment_read_and_answered_by_the_cli() {
    let peer = compile_peer();
    let _rm_peer = Guard(peer.clone());
    let mut child = Command::new(&peer)
        .args(["private", "shell"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let id: i32 = line.trim().parse().expect("the peer prints its id");
    let _g = SegGuard(id);
    let obj = format!("id:{id}");
    assert_eq!(
        ok(&["wait", &obj, "--equals", "1", "--timeout", "20s"]),
        "1\n"
    );
    assert_eq!(ok(&["read", &obj, "-o", "8"]), "hello from c\n");
    ok(&[
        "write",
        &obj,
        "reply from shell",
        "--as",
        "cstring",
        "-o",
        "64",
    ]);
    ok(&["write", &obj, "2", "--as", "u32"]);
    let o = finish(child, "sysv_cli_peer private");
    assert!(o.status.success(), "peer: {}", stderr(&o));
    // The peer removed it at the end.
    fails(1, &["info", &obj], "no segment has this id");
}

#[test]
fn demo_sysv_section_runs_and_cleans_up() {
    let out = ok(&["demo", "--only", "sysv"]);
    for needle in [
        "peer] woken: read the request",
        "tour] woken: state is 2",
        "marked dest (true), key now 0x00000000",
        "the kernel destroyed the segment",
        "everything it created has been removed",
    ] {
        assert!(out.contains(needle), "'{needle}' in:\n{out}");
    }
    let id: i32 = out
        .split("created id ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .expect("the tour names its segment");
    assert!(Segment::from_id(id).is_err(), "segment {id} left behind");
    fails(
        2,
        &["demo", "--only", "nosuch"],
        "no demo section named 'nosuch'",
    );
}

#[test]
fn readme_cli_tour_runs() {
    let readme = include_str!("../../../README.md");
    let block = readme
        .split("<!-- cli-tour:start -->")
        .nth(1)
        .and_then(|s| s.split("<!-- cli-tour:end -->").next())
        .expect("the README marks its CLI tour");
    let script = block
        .lines()
        .filter(|l| !l.starts_with("```"))
        .collect::<Vec<_>>()
        .join("\n");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_shmkit")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let child = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let o = finish(child, "the README's CLI tour");
    no_panic(&o, &["README tour"]);
    assert!(
        o.status.success(),
        "README tour failed: {}\n{}",
        stdout(&o),
        stderr(&o)
    );
    let out = stdout(&o);
    for needle in ["hello, segment\n42\n", "\"kind\": \"sysv\"", "43\n"] {
        assert!(out.contains(needle), "'{needle}' in:\n{out}");
    }
}

#[test]
fn timeouts_beyond_the_clock_are_usage_errors_not_panics() {
    let (id, _key, _g) = create_keyed("4096", &[]);
    // 300000000000000000 minutes fit a Duration but not `now + timeout`: this panicked.
    fails(
        2,
        &["wait", &id, "--timeout", "300000000000000000m"],
        "longer than 100 years",
    );
    fails(
        2,
        &[
            "lock",
            "/shmkit_test_never_made",
            "--timeout",
            "300000000000000000m",
            "--",
            "true",
        ],
        "longer than 100 years",
    );
}

#[test]
fn argument_errors_read_shmkit_verb_reason() {
    // clap's own messages ("error: ...") used to reach the user as they were.
    let err = fails(
        2,
        &["create"],
        "required arguments were not provided: --size",
    );
    assert!(err.contains("Usage: shmkit create"), "{err}");
    fails(2, &["read", "id:1", "--offset"], "a value is required");
    fails(
        2,
        &["wait", "id:1", "--timeout", "-1s"],
        "unexpected argument '-1'",
    );
    let o = shmkit(&["bogus"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with("shmkit: usage: unrecognized subcommand 'bogus'"),
        "{}",
        stderr(&o)
    );
    assert_eq!(shmkit(&["--help"]).status.code(), Some(0));
}

#[test]
fn create_whose_output_is_lost_removes_what_it_made() {
    // With stdout on /dev/full nobody learns the id: the segment used to stay behind.
    let raw = unique_key();
    let key = format!("key:0x{raw:08x}", raw = raw as u32);
    struct KeyGuard(i32);
    impl Drop for KeyGuard {
        fn drop(&mut self) {
            if let Ok(seg) = Segment::open(Key::new(self.0)) {
                let _ = seg.remove();
            }
        }
    }
    let _g = KeyGuard(raw);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let child = shmkit_cmd(&["create", &key, "--size", "4096"])
        .stdout(full)
        .spawn()
        .unwrap();
    let o = finish(child, "create >/dev/full");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("shmkit: create: id:") && stderr(&o).contains("removed it again"),
        "{}",
        stderr(&o)
    );
    fails(1, &["info", &key], "no segment has this key");
}
