//! `shmkit ls`, `info` and `rm` on leaked objects of every kind and on objects in use,
//! inside private IPC and mount namespaces (`ls/leaks.sh`): a private tmpfs on /dev/shm
//! and a private mqueue mount, so nothing outside is listed or touched. Skips with a
//! printed reason where the namespaces or python3 are not available.

mod ns;

use std::process::Command;
use std::time::Duration;

#[test]
fn leaks_of_every_kind_are_found_explained_and_removed_safely() {
    if let Some(r) = ns::unavailable(&["--ipc", "--mount", "--propagation", "private"]) {
        eprintln!("SKIPPED leaks test: {r}");
        return;
    }
    let py = Command::new("python3")
        .args(["-c", "import ctypes, mmap"])
        .output();
    if !py.map(|o| o.status.success()).unwrap_or(false) {
        eprintln!("SKIPPED leaks test: python3 with ctypes is needed for the peers");
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ls/leaks.sh");
    let out = ns::run_script(
        &["--ipc", "--mount", "--propagation", "private"],
        script,
        &[],
        Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(" passed, 0 failed"),
        "{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ls_rejects_bad_columns_kinds_and_sort_with_usage_errors() {
    for args in [
        &["ls", "-o", "bogus"][..],
        &["ls", "--kind", "nope"][..],
        &["ls", "--sort", "zz"][..],
        &["rm", "--orphaned", "id:1"][..],
        &["rm", "--older-than", "3x"][..],
        &["rm"][..],
    ] {
        let o = Command::new(ns::SHMKIT)
            .args(args)
            .output()
            .expect("run shmkit");
        assert_eq!(o.status.code(), Some(2), "{args:?}: {o:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.starts_with("shmkit: "), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn limits_reports_numbers_as_numbers() {
    let o = Command::new(ns::SHMKIT)
        .args(["limits", "--json"])
        .output()
        .expect("run");
    assert!(o.status.success(), "{o:?}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(v["shm"]["shmmni"].is_u64(), "{v}");
    assert!(v["sem"]["semmsl"].is_u64(), "{v}");
    assert!(v["msg"]["msgmax"].is_u64(), "{v}");
    assert!(v["dev_shm"]["total"].is_u64(), "{v}");
    assert!(v["problems"].is_array(), "{v}");
    let human = Command::new(ns::SHMKIT)
        .arg("limits")
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&human.stdout).contains("shmmax"));
}

#[test]
fn demo_inspect_section_runs_and_cleans_up() {
    let o = Command::new(ns::SHMKIT)
        .args(["demo", "--only", "inspect"])
        .output()
        .expect("run demo");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("no longer listed"), "{out}");
}
