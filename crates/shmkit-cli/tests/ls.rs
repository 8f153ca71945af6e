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

/// A channel is listed as such: its kind, capacity, fill level and endpoints, in the
/// table, in `info` and in JSON.
#[test]
fn ls_and_info_show_a_channel_with_its_fill_level_and_endpoints() {
    let name = format!("shmkit_test_{}_lsch", std::process::id());
    struct Gone(String);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(format!("/dev/shm/{}", self.0));
        }
    }
    let _g = Gone(name.clone());
    let run = |args: &[&str], input: Option<&str>| {
        use std::io::Write;
        let mut c = Command::new(ns::SHMKIT)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = c.stdin.take().unwrap();
        if let Some(i) = input {
            stdin.write_all(i.as_bytes()).unwrap();
        }
        drop(stdin);
        let o = c.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    };
    run(&["channel", "create", &name, "--capacity", "8KiB"], None);
    run(&["send", &name, "--timeout", "5s"], Some("one\ntwo\n"));

    let json: serde_json::Value =
        serde_json::from_str(&run(&["ls", "--json", "--kind", "posix-shm"], None)).unwrap();
    let obj = json["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == format!("/{name}"))
        .expect("the channel is listed");
    assert_eq!(obj["status"]["shmkit"], "channel-spsc");
    let own: serde_json::Value =
        serde_json::from_str(&run(&["channel", "info", &name, "--json"], None)).unwrap();
    let capacity = own[0]["capacity"].as_u64().unwrap();
    assert!(capacity >= 8192);
    assert_eq!(obj["channel"]["capacity"], capacity);
    assert_eq!(obj["channel"]["messages"], 2);
    assert!(obj["channel"]["used"].as_u64().unwrap() > 0);
    assert_eq!(obj["channel"]["kind"], "spsc");
    // The sender has exited: its slot is empty or names a dead process.
    let s = &obj["channel"]["senders"];
    assert!(
        s.as_array().unwrap().iter().all(|e| e["alive"] == false),
        "{s}"
    );

    let table = run(&["ls", "--kind", "posix-shm"], None);
    let line = table
        .lines()
        .find(|l| l.contains(&name))
        .expect("table row");
    assert!(line.contains(&format!("/{capacity} B (2 msgs)")), "{line}");
    let info = run(&["info", &format!("/{name}")], None);
    assert!(info.contains("channel  fill "), "{info}");

    // The other kinds are described too.
    for (kind, tag) in [("mpsc", "lsmp"), ("broadcast", "lsbc")] {
        let other = format!("shmkit_test_{}_{tag}", std::process::id());
        let _g = Gone(other.clone());
        run(&["channel", "create", &other, "--kind", kind], None);
        if kind == "mpsc" {
            run(&["send", &other, "--timeout", "5s"], Some("x\ny\n"));
        }
        let json: serde_json::Value =
            serde_json::from_str(&run(&["ls", "--json", "--kind", "posix-shm"], None)).unwrap();
        let obj = json["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == format!("/{other}"))
            .expect("the channel is listed");
        assert_eq!(obj["status"]["shmkit"], format!("channel-{kind}"));
        assert_eq!(obj["channel"]["kind"], kind);
        if kind == "mpsc" {
            assert!(obj["channel"]["used"].as_u64().unwrap() > 0, "{obj}");
        }
    }
}
