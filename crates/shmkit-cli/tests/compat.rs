//! The drop-in `ipcs`, `ipcrm` and `ipcmk` against util-linux's, byte for byte: stdout,
//! stderr and exit code of every view and option (see `compat/compare.sh`), inside a
//! private IPC namespace so that other programs' objects neither interfere nor get
//! touched. Skips with a printed reason where the namespace, util-linux 2.38.1 or
//! python3 (for the peer that attaches and operates) is missing.

mod ns;

use std::process::Command;
use std::time::Duration;

fn skip_reason() -> Option<String> {
    if let Some(r) = ns::unavailable(&["--ipc"]) {
        return Some(r);
    }
    match Command::new("/usr/bin/ipcs").arg("-V").output() {
        Ok(o) if String::from_utf8_lossy(&o.stdout).contains("util-linux 2.38.1") => {}
        Ok(o) => {
            return Some(format!(
                "the reference is util-linux 2.38.1; found {}",
                String::from_utf8_lossy(&o.stdout).trim()
            ))
        }
        Err(e) => return Some(format!("util-linux ipcs not found: {e}")),
    }
    if Command::new("python3")
        .arg("-c")
        .arg("import ctypes")
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        return Some("python3 with ctypes is needed for the attaching peer".into());
    }
    None
}

#[test]
fn drop_ins_match_util_linux_byte_for_byte() {
    if let Some(r) = skip_reason() {
        eprintln!("SKIPPED drop_ins_match_util_linux_byte_for_byte: {r}");
        return;
    }
    let dir = ns::tool_dir("compat");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/compat/compare.sh");
    let out = ns::run_script(
        &["--ipc"],
        script,
        &[dir.to_str().expect("utf-8 path")],
        Duration::from_secs(300),
    );
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "differences:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}

#[test]
fn ipcrm_refuses_the_all_space_kind_foot_gun() {
    if let Some(r) = ns::unavailable(&["--ipc"]) {
        eprintln!("SKIPPED ipcrm_refuses_the_all_space_kind_foot_gun: {r}");
        return;
    }
    let dir = ns::tool_dir("footgun");
    let script =
        std::env::temp_dir().join(format!("shmkit_test_{}_footgun.sh", std::process::id()));
    std::fs::write(
        &script,
        "set -u\nipcmk -M 4096 -Q -S 1 >/dev/null\n\"$1/ipcrm\" -a msg\necho rc=$?\nipcs -a | grep -c '^0x'\n",
    )
    .expect("write script");
    let out = ns::run_script(
        &["--ipc"],
        script.to_str().expect("utf-8"),
        &[dir.to_str().expect("utf-8")],
        Duration::from_secs(60),
    );
    let _ = std::fs::remove_file(&script);
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("rc=1"), "{stdout}");
    // All three objects are still there.
    assert!(stdout.trim_end().ends_with('3'), "{stdout}");
    assert!(stderr.contains("ipcrm: refusing '-a msg'"), "{stderr}");
    assert!(stderr.contains("--all=msg"), "{stderr}");
}

#[test]
fn symlinked_binary_and_subcommand_agree() {
    // Usage output needs no namespace: -h prints help and touches nothing.
    let dir = ns::tool_dir("help");
    let a = Command::new(dir.join("ipcs"))
        .arg("--help")
        .output()
        .expect("run ipcs");
    let b = Command::new(ns::SHMKIT)
        .args(["ipcs", "--help"])
        .output()
        .expect("run shmkit ipcs");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(a.stdout, b.stdout);
    assert!(String::from_utf8_lossy(&a.stdout).contains("ipcs -m|-q|-s -i <id>"));
    assert_eq!(a.status.code(), Some(0));
    assert_eq!(b.status.code(), Some(0));
}
