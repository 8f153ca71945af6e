//! The `shmkit` binary on POSIX objects (`/NAME`): create, info, read, write, wait, rm,
//! chmod and chown, and data exchanged in both directions with a C program (shm_open +
//! mmap) and with Python's `multiprocessing.shared_memory`, all through one object.
//!
//! Every object is named `shmkit_test_<pid>_<n>_<tag>` and removed by a guard, also
//! when a test panics.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const SHMKIT: &str = env!("CARGO_BIN_EXE_shmkit");
const DEADLINE: Duration = Duration::from_secs(60);
const C_PEER: &str = include_str!("../../shmkit/tests/it/c/posix_peer.c");
const PY_PEER: &str = include_str!("../../shmkit/tests/it/py/posix_peer.py");

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A unique object name, without the slash, removed from /dev/shm on drop.
struct Name(String);

impl Name {
    fn new(tag: &str) -> Name {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Name(format!("shmkit_test_{}_{n}_{tag}", std::process::id()))
    }
    fn obj(&self) -> String {
        format!("/{}", self.0)
    }
    fn path(&self) -> PathBuf {
        Path::new("/dev/shm").join(&self.0)
    }
}

impl Drop for Name {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.path());
    }
}

/// Waits for `child` with a deadline on its pidfd; kills it and panics on time-out.
fn finish(mut child: Child, what: &str) -> Output {
    use rustix::event::{poll, PollFd, PollFlags};
    use rustix::process::{pidfd_open, Pid, PidfdFlags};
    let pid = Pid::from_raw(child.id() as i32).expect("pid");
    let fd = pidfd_open(pid, PidfdFlags::empty()).expect("pidfd_open");
    let end = Instant::now() + DEADLINE;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let ts = rustix::time::Timespec::try_from(left).expect("timespec");
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match poll(&mut fds, Some(&ts)) {
            Ok(0) => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("output");
                panic!(
                    "{what} did not finish within {DEADLINE:?}\nstderr:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Ok(_) => return child.wait_with_output().expect("output"),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => panic!("poll on pidfd: {e}"),
        }
    }
}

fn spawn(cmd: &mut Command, what: &str) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"))
}

fn run(cmd: &mut Command, what: &str) -> Output {
    let child = spawn(cmd, what);
    finish(child, what)
}

/// Runs `shmkit ARGS` and returns (exit code, stdout, stderr).
fn shmkit(args: &[&str]) -> (i32, String, String) {
    let out = run(Command::new(SHMKIT).args(args), &format!("shmkit {args:?}"));
    (
        out.status.code().expect("exit code, not a signal"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `shmkit ARGS`, asserting success, and returns stdout.
fn ok(args: &[&str]) -> String {
    let (code, out, err) = shmkit(args);
    assert_eq!(code, 0, "shmkit {args:?} failed:\n{err}");
    assert!(err.is_empty(), "shmkit {args:?} printed on stderr:\n{err}");
    out
}

fn c_peer() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c-peers");
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join(format!("cli_posix_peer.{}", std::process::id()));
    if !exe.exists() {
        // Per-call file names: tests running in parallel may both compile it.
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let src = dir.join(format!("cli_posix_peer.{}.{n}.c", std::process::id()));
        std::fs::write(&src, C_PEER).unwrap();
        let tmp = dir.join(format!("cli_posix_peer.{}.{n}.out", std::process::id()));
        let out = Command::new("cc")
            .args(["-O1", "-Wall", "-Werror", "-std=gnu11", "-o"])
            .arg(&tmp)
            .arg(&src)
            .arg("-lrt")
            .output()
            .expect("run cc");
        assert!(
            out.status.success(),
            "cc failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::rename(&tmp, &exe).unwrap();
        let _ = std::fs::remove_file(&src);
    }
    exe
}

fn c(args: &[&str]) -> String {
    let out = run(
        Command::new(c_peer()).args(args),
        &format!("C peer {args:?}"),
    );
    assert!(
        out.status.success(),
        "C peer {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn python_available() -> bool {
    match Command::new("python3")
        .args(["-c", "import multiprocessing.shared_memory"])
        .output()
    {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            eprintln!(
                "skipped: python3 lacks multiprocessing.shared_memory: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            false
        }
        Err(e) => {
            eprintln!("skipped: python3 is not available: {e}");
            false
        }
    }
}

fn py(args: &[&str]) -> String {
    let out = run(
        Command::new("python3").arg("-c").arg(PY_PEER).args(args),
        &format!("python peer {args:?}"),
    );
    assert!(
        out.status.success(),
        "python peer {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn cli_c_and_python_exchange_through_one_object() {
    let n = Name::new("triangle");
    let obj = n.obj();
    assert_eq!(
        ok(&["create", &obj, "--size", "4K"]).trim(),
        format!("{obj} size 4096 mode 0600")
    );

    // CLI -> C
    ok(&["write", &obj, "from the CLI", "--as", "cstring"]);
    assert_eq!(c(&["read", &obj, "64"]), "from the CLI");
    // C -> CLI
    c(&["write", &obj, "from C"]);
    assert_eq!(ok(&["read", &obj]), "from C\n");

    if python_available() {
        // CLI -> Python
        ok(&["write", &obj, "to python", "--as", "cstring"]);
        assert_eq!(py(&["read", &n.0, "64"]), "to python");
        // Python -> CLI
        py(&["write", &n.0, "from python"]);
        assert_eq!(ok(&["read", &obj]), "from python\n");
        // C -> Python and Python -> C, for good measure.
        c(&["write", &obj, "C to python"]);
        assert_eq!(py(&["read", &n.0, "64"]), "C to python");
        py(&["write", &n.0, "python to C"]);
        assert_eq!(c(&["read", &obj, "64"]), "python to C");
        // Python's exit did not unlink the object.
        assert!(n.path().exists());
    }
    ok(&["rm", &obj]);
    assert!(!n.path().exists());
}

#[test]
fn objects_made_by_c_and_python_work_in_the_cli() {
    let n = Name::new("c_made");
    let obj = n.obj();
    c(&["create", &obj, "C made this"]);
    assert_eq!(
        ok(&["read", &obj, "--length", "11", "--as", "raw"]),
        "C made this"
    );
    ok(&["write", &obj, "42", "--as", "u32", "--offset", "64"]);
    assert_eq!(
        ok(&["read", &obj, "--offset", "64", "--as", "u32"]).trim(),
        "42"
    );
    let info = ok(&["info", &obj]);
    assert!(info.contains("size     4096 bytes"), "{info}");
    assert!(info.contains("mode     0600"), "{info}");

    if python_available() {
        let p = Name::new("py_made");
        py(&["create", &p.0, "python made this"]);
        assert_eq!(ok(&["read", &p.obj()]), "python made this\n");
        ok(&["write", &p.obj(), "the CLI answers", "--as", "cstring"]);
        assert_eq!(py(&["read", &p.0, "64"]), "the CLI answers");
        // multiprocessing.shared_memory creates with mode 0600 as well.
        let json: serde_json::Value =
            serde_json::from_str(&ok(&["info", "--json", &p.obj()])).unwrap();
        assert_eq!(json[0]["kind"], "posix");
        assert_eq!(json[0]["mode"], 0o600);
        assert_eq!(json[0]["size"], 4096);
    }
}

#[test]
fn create_mode_or_open_info_chmod_chown() {
    let n = Name::new("meta");
    let obj = n.obj();
    // 666 survives the umask: the mode is applied with fchmod.
    assert_eq!(
        ok(&["create", &obj, "--size", "100", "--mode", "666"]).trim(),
        format!("{obj} size 100 mode 0666")
    );
    let (code, _, err) = shmkit(&["create", &obj, "--size", "100"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with(&format!(
            "shmkit: create: {obj}: shm_open failed: File exists"
        )),
        "{err}"
    );
    assert!(err.contains("exclusive creation"), "{err}");
    // --or-open opens it, keeping its mode, growing it to the asked size.
    assert_eq!(
        ok(&["create", &obj, "--size", "200", "--or-open"]).trim(),
        format!("{obj} size 200 mode 0666")
    );

    ok(&["chmod", "640", &obj]);
    let me = rustix::process::geteuid().as_raw().to_string();
    ok(&["chown", &format!("{me}:{me}"), &obj]);
    let json: serde_json::Value = serde_json::from_str(&ok(&["info", "--json", &obj])).unwrap();
    assert_eq!(json[0]["name"], obj.as_str());
    assert_eq!(json[0]["mode"], 0o640);
    assert_eq!(json[0]["uid"].to_string(), me);
    assert_eq!(json[0]["path"], n.path().display().to_string());
    assert!(json[0]["mtime"].as_i64().unwrap() > 0);
}

#[test]
fn wait_sees_a_write_by_a_c_program() {
    let n = Name::new("wait");
    let obj = n.obj();
    ok(&["create", &obj, "--size", "4K"]);
    let waiter = spawn(
        Command::new(SHMKIT).args([
            "wait",
            &obj,
            "--as",
            "text",
            "--length",
            "5",
            "--equals",
            "ready",
            "--timeout",
            "30s",
        ]),
        "shmkit wait",
    );
    c(&["write", &obj, "ready"]);
    let out = finish(waiter, "shmkit wait");
    assert!(
        out.status.success(),
        "wait failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ready"));

    // A wait that nothing satisfies times out with exit 1 and a message.
    let (code, _, err) = shmkit(&[
        "wait",
        &obj,
        "--as",
        "u32",
        "--offset",
        "128",
        "--equals",
        "9",
        "--timeout",
        "50ms",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with("shmkit: wait: "), "{err}");
}

#[test]
fn rm_continues_past_failures_and_errors_name_the_object() {
    let a = Name::new("rm_a");
    let missing = Name::new("rm_missing");
    ok(&["create", &a.obj(), "--size", "1"]);
    let (code, _, err) = shmkit(&["rm", &missing.obj(), &a.obj()]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!(
            "shmkit: rm: {}: shm_unlink failed: No such file or directory",
            missing.obj()
        )),
        "{err}"
    );
    assert!(!a.path().exists(), "rm stopped at the first failure");

    let (code, _, err) = shmkit(&["read", &missing.obj()]);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        format!(
            "shmkit: read: {}: shm_open failed: No such file or directory (os error 2) \
             (no object has this name)",
            missing.obj()
        )
    );
}

#[test]
fn bad_names_are_usage_errors() {
    let long = format!("/{}", "x".repeat(256));
    for bad in ["/a/b", "/", long.as_str()] {
        let (code, _, err) = shmkit(&["info", bad]);
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(err.starts_with("shmkit: info: "), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn a_symlink_at_the_name_is_refused_and_its_target_untouched() {
    let n = Name::new("symlink");
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{}.victim", n.0));
    std::fs::write(&target, b"precious").unwrap();
    std::os::unix::fs::symlink(&target, n.path()).unwrap();
    for args in [
        vec!["read", n.obj().as_str()],
        vec!["write", n.obj().as_str(), "overwritten"],
        vec!["chmod", "666", n.obj().as_str()],
        vec!["info", n.obj().as_str()],
        vec!["create", n.obj().as_str(), "--size", "1", "--or-open"],
    ] {
        let (code, _, err) = shmkit(&args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains("symbolic link"), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
    assert_ne!(mode, 0o666);
    std::fs::remove_file(&target).unwrap();
}

#[test]
fn writing_past_the_end_is_an_error_naming_the_object() {
    let n = Name::new("bounds");
    let obj = n.obj();
    ok(&["create", &obj, "--size", "8"]);
    let (code, _, err) = shmkit(&["write", &obj, "123456789"]);
    assert_eq!(code, 1);
    assert!(err.starts_with(&format!("shmkit: write: {obj}: ")), "{err}");
    assert!(err.contains("exceeds"), "{err}");
}
