//! `ipcs`, byte for byte as util-linux 2.38.1 prints it for System V objects: every view
//! (default, -t, -p, -c, -l, -u), units (-b, --human), `-i ID` details, the same
//! headers, widths, trailing spaces, messages and exit codes. The data comes from
//! /proc/sysvipc like util-linux's; semaphore values and a queue's byte limit come from
//! `semctl`/`msgctl`, and usage from `SHM_INFO`/`SEM_INFO`/`MSG_INFO`.
//!
//! Deliberate difference: `-V` names shmkit as well as the util-linux version it
//! follows.

use std::fmt::Write as _;

use shmkit::inspect::sysvipc::{self, MsgEntry, SemEntry, ShmEntry, MODE_DEST, MODE_LOCKED};
use shmkit::sys::ipcinfo;

use super::cfmt::{alt_octal, ctime, human, lpad_trunc};
use super::getopt::{self, HasArg, Item, LongOpt};
use super::{Names, Output};

const HELP: &str = "
Usage:
 ipcs [resource-option...] [output-option]
 ipcs -m|-q|-s -i <id>

Show information on IPC facilities.

Options:
 -i, --id <id>  print details on resource identified by <id>
 -h, --help     display this help
 -V, --version  display version

Resource options:
 -m, --shmems      shared memory segments
 -q, --queues      message queues
 -s, --semaphores  semaphores
 -a, --all         all (default)

Output options:
 -t, --time        show attach, detach and change times
 -p, --pid         show PIDs of creator and last operator
 -c, --creator     show creator and owner
 -l, --limits      show resource limits
 -u, --summary     show status summary
     --human       show sizes in human-readable format
 -b, --bytes       show sizes in bytes

For more details see ipcs(1).
";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Default,
    Time,
    Pid,
    Creator,
    Limits,
    Status,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    Default,
    Kb,
    Bytes,
    Human,
}

/// The `ipcs` command line: options and operands after the program name.
pub fn main(args: &[String], o: &mut Output) -> u8 {
    const LONG: &[LongOpt] = &[
        LongOpt {
            name: "id",
            has_arg: HasArg::Required,
            val: 'i',
        },
        LongOpt {
            name: "queues",
            has_arg: HasArg::No,
            val: 'q',
        },
        LongOpt {
            name: "shmems",
            has_arg: HasArg::No,
            val: 'm',
        },
        LongOpt {
            name: "semaphores",
            has_arg: HasArg::No,
            val: 's',
        },
        LongOpt {
            name: "all",
            has_arg: HasArg::No,
            val: 'a',
        },
        LongOpt {
            name: "time",
            has_arg: HasArg::No,
            val: 't',
        },
        LongOpt {
            name: "pid",
            has_arg: HasArg::No,
            val: 'p',
        },
        LongOpt {
            name: "creator",
            has_arg: HasArg::No,
            val: 'c',
        },
        LongOpt {
            name: "limits",
            has_arg: HasArg::No,
            val: 'l',
        },
        LongOpt {
            name: "summary",
            has_arg: HasArg::No,
            val: 'u',
        },
        LongOpt {
            name: "human",
            has_arg: HasArg::No,
            val: 'H',
        },
        LongOpt {
            name: "bytes",
            has_arg: HasArg::No,
            val: 'b',
        },
        LongOpt {
            name: "version",
            has_arg: HasArg::No,
            val: 'V',
        },
        LongOpt {
            name: "help",
            has_arg: HasArg::No,
            val: 'h',
        },
    ];
    let (items, _operands) = getopt::parse(args, "i:qsmatpcluhVb", LONG);
    let (mut msg, mut shm, mut sem) = (false, false, false);
    let mut format = Format::Default;
    let mut unit = Unit::Default;
    let mut id: Option<i32> = None;
    for it in items {
        match it {
            Item::Error(e) => return o.getopt_error("ipcs", &e),
            Item::Opt(c, arg) => match c {
                'i' => match super::strtos32(arg.as_deref().unwrap_or("")) {
                    Ok(v) => id = Some(v),
                    Err(suffix) => {
                        o.err(&format!(
                            "ipcs: failed to parse id argument: '{}'{suffix}\n",
                            arg.unwrap_or_default()
                        ));
                        return 1;
                    }
                },
                'q' => msg = true,
                'm' => shm = true,
                's' => sem = true,
                'a' => (msg, shm, sem) = (true, true, true),
                't' => format = Format::Time,
                'p' => format = Format::Pid,
                'c' => format = Format::Creator,
                'l' => format = Format::Limits,
                'u' => format = Format::Status,
                'H' => unit = Unit::Human,
                'b' => unit = Unit::Bytes,
                'h' => {
                    o.out(HELP);
                    return 0;
                }
                'V' => {
                    o.out(&super::version("ipcs"));
                    return 0;
                }
                _ => return o.try_help("ipcs", &format!("invalid option -- '{c}'")),
            },
        }
    }
    let names = Names::default();
    if let Some(id) = id {
        if [msg, shm, sem].iter().filter(|x| **x).count() != 1 {
            o.err("ipcs: when using an ID, a single resource must be specified\n");
            return 1;
        }
        if shm {
            print_shm(o, id, unit);
        } else if msg {
            print_msg(o, id, unit);
        } else {
            print_sem(o, id);
        }
        return 0;
    }
    if !msg && !shm && !sem {
        (msg, shm, sem) = (true, true, true);
    }
    o.out("\n");
    if msg {
        do_msg(o, &names, format, unit);
        o.out("\n");
    }
    if shm {
        do_shm(o, &names, format, unit);
        o.out("\n");
    }
    if sem {
        do_sem(o, &names, format);
        o.out("\n");
    }
    0
}

/// util-linux `ipc_print_size`. A negative width left-justifies.
fn print_size(s: &mut String, unit: Unit, msg: Option<&str>, size: u64, end: &str, width: i32) {
    if let Some(m) = msg {
        if m.ends_with('=') {
            s.push_str(m);
        } else {
            match unit {
                Unit::Bytes => {
                    let _ = write!(s, "{m} (bytes) = ");
                }
                Unit::Kb => {
                    let _ = write!(s, "{m} (kbytes) = ");
                }
                _ => {
                    let _ = write!(s, "{m} = ");
                }
            }
        }
    }
    let text = match unit {
        Unit::Default | Unit::Bytes => size.to_string(),
        Unit::Kb => (size / 1024).to_string(),
        Unit::Human => human(size),
    };
    let w = width.unsigned_abs() as usize;
    if width < 0 {
        let _ = write!(s, "{text:<w$}");
    } else {
        let _ = write!(s, "{text:>w$}");
    }
    s.push_str(end);
}

fn time16(t: i64) -> String {
    if t != 0 {
        // ctime() + 4, at most 16 characters: "Nov 30 04:16:15 "
        let c = ctime(t);
        lpad_trunc(c.get(4..).unwrap_or(""), 20, 16)
    } else {
        lpad_trunc("Not set", 20, 16)
    }
}

fn time24(t: i64) -> String {
    if t != 0 {
        lpad_trunc(&ctime(t), 26, 24)
    } else {
        lpad_trunc("Not set", 26, 24)
    }
}

fn owner(s: &mut String, names: &Names, id: i32, uid: u32, idw: usize) {
    match names.user(uid) {
        Some(n) => {
            let _ = write!(s, "{id:<idw$} {}", lpad_trunc(&n, 10, 10));
        }
        None => {
            let _ = write!(s, "{id:<idw$} {uid:<10}");
        }
    }
}

fn perms_row(s: &mut String, names: &Names, id: i32, mode: u32, ids: [u32; 4]) {
    let _ = write!(s, "{id:<10} {:<10o}", mode & 0o777);
    let [cuid, cgid, uid, gid] = ids;
    let u = |v: u32| names.user(v).unwrap_or_else(|| v.to_string());
    let g = |v: u32| names.group(v).unwrap_or_else(|| v.to_string());
    let _ = writeln!(
        s,
        " {:<10} {:<10} {:<10} {:<10}",
        u(cuid),
        g(cgid),
        u(uid),
        g(gid)
    );
}

fn do_shm(o: &mut Output, names: &Names, format: Format, unit: Unit) {
    let mut s = String::new();
    match format {
        Format::Limits => {
            let k = "/proc/sys/kernel";
            let rd = |f: &str| -> Option<u64> {
                std::fs::read_to_string(format!("{k}/{f}"))
                    .ok()?
                    .trim()
                    .parse()
                    .ok()
            };
            let (Some(shmmax), Some(shmall), Some(shmmni)) =
                (rd("shmmax"), rd("shmall"), rd("shmmni"))
            else {
                o.out("unable to fetch shared memory limits\n");
                return;
            };
            let pgsz = shmkit::sys::page_size() as u64;
            s.push_str("------ Shared Memory Limits --------\n");
            let _ = writeln!(s, "max number of segments = {shmmni}");
            let u = if unit == Unit::Default {
                Unit::Kb
            } else {
                unit
            };
            print_size(&mut s, u, Some("max seg size"), shmmax, "\n", 0);
            if u == Unit::Kb {
                // util-linux multiplies the page count by the page size in KiB here,
                // saturating on overflow.
                let f = (pgsz / 1024).max(1);
                let v = shmall.checked_mul(f).unwrap_or(u64::MAX - u64::MAX % f);
                let _ = writeln!(s, "max total shared memory (kbytes) = {v}");
            } else {
                let v = shmall
                    .checked_mul(pgsz)
                    .unwrap_or(u64::MAX - u64::MAX % pgsz);
                print_size(&mut s, u, Some("max total shared memory"), v, "\n", 0);
            }
            let u = if unit == Unit::Default {
                Unit::Bytes
            } else {
                unit
            };
            print_size(&mut s, u, Some("min seg size"), 1, "\n", 0);
            o.out(&s);
            return;
        }
        Format::Status => {
            let Ok(i) = ipcinfo::shm_usage() else {
                o.out("kernel not configured for shared memory\n");
                return;
            };
            s.push_str("------ Shared Memory Status --------\n");
            let _ = write!(
                s,
                "segments allocated {}\npages allocated {}\npages resident  {}\npages swapped   {}\nSwap performance: {} attempts\t {} successes\n",
                i.used_ids, i.shm_tot, i.shm_rss, i.shm_swp, i.swap_attempts, i.swap_successes
            );
            o.out(&s);
            return;
        }
        Format::Creator => {
            s.push_str("------ Shared Memory Segment Creators/Owners --------\n");
            let _ = writeln!(
                s,
                "{:<10} {:<10} {:<10} {:<10} {:<10} {:<10}",
                "shmid", "perms", "cuid", "cgid", "uid", "gid"
            );
        }
        Format::Time => {
            s.push_str("------ Shared Memory Attach/Detach/Change Times --------\n");
            let _ = writeln!(
                s,
                "{:<10} {:<10} {:<20} {:<20} {:<20}",
                "shmid", "owner", "attached", "detached", "changed"
            );
        }
        Format::Pid => {
            s.push_str("------ Shared Memory Creator/Last-op PIDs --------\n");
            let _ = writeln!(
                s,
                "{:<10} {:<10} {:<10} {:<10}",
                "shmid", "owner", "cpid", "lpid"
            );
        }
        Format::Default => {
            s.push_str("------ Shared Memory Segments --------\n");
            let size = if unit == Unit::Human { "size" } else { "bytes" };
            let _ = writeln!(
                s,
                "{:<10} {:<10} {:<10} {:<10} {:<10} {:<10} {:<12}",
                "key", "shmid", "owner", "perms", size, "nattch", "status"
            );
        }
    }
    for e in sysvipc::shm().unwrap_or_default() {
        match format {
            Format::Creator => {
                perms_row(&mut s, names, e.id, e.mode, [e.cuid, e.cgid, e.uid, e.gid])
            }
            Format::Time => {
                owner(&mut s, names, e.id, e.uid, 10);
                let _ = writeln!(
                    s,
                    " {} {} {}",
                    time16(e.atime),
                    time16(e.dtime),
                    time16(e.ctime)
                );
            }
            Format::Pid => {
                owner(&mut s, names, e.id, e.uid, 10);
                let _ = writeln!(s, " {:<10} {:<10}", e.cpid, e.lpid);
            }
            _ => {
                let _ = write!(s, "0x{:08x} ", e.key as u32);
                owner(&mut s, names, e.id, e.uid, 10);
                let _ = write!(s, " {:<10o} ", e.mode & 0o777);
                if unit == Unit::Human {
                    print_size(&mut s, unit, None, e.size, "    ", 6);
                } else {
                    print_size(&mut s, unit, None, e.size, "", -10);
                }
                let _ = writeln!(
                    s,
                    " {:<10} {:<6} {:<6}",
                    e.nattch,
                    if e.mode & MODE_DEST != 0 { "dest" } else { " " },
                    if e.mode & MODE_LOCKED != 0 {
                        "locked"
                    } else {
                        " "
                    }
                );
            }
        }
    }
    o.out(&s);
}

fn do_msg(o: &mut Output, names: &Names, format: Format, unit: Unit) {
    let mut s = String::new();
    match format {
        Format::Limits => {
            let k = "/proc/sys/kernel";
            let rd = |f: &str| -> Option<u64> {
                std::fs::read_to_string(format!("{k}/{f}"))
                    .ok()?
                    .trim()
                    .parse()
                    .ok()
            };
            let (Some(mni), Some(max), Some(mnb)) = (rd("msgmni"), rd("msgmax"), rd("msgmnb"))
            else {
                o.out("unable to fetch message limits\n");
                return;
            };
            s.push_str("------ Messages Limits --------\n");
            let _ = writeln!(s, "max queues system wide = {mni}");
            let u = if unit == Unit::Default {
                Unit::Bytes
            } else {
                unit
            };
            print_size(&mut s, u, Some("max size of message"), max, "\n", 0);
            print_size(&mut s, u, Some("default max size of queue"), mnb, "\n", 0);
            o.out(&s);
            return;
        }
        Format::Status => {
            let Ok(i) = ipcinfo::msg_usage() else {
                o.out("kernel not configured for message queues\n");
                return;
            };
            s.push_str("------ Messages Status --------\n");
            let _ = writeln!(s, "allocated queues = {}", i.queues);
            let _ = writeln!(s, "used headers = {}", i.headers);
            let end = if unit == Unit::Default {
                " bytes\n"
            } else {
                "\n"
            };
            print_size(
                &mut s,
                unit,
                Some("used space"),
                i.bytes as u32 as u64,
                end,
                0,
            );
            o.out(&s);
            return;
        }
        Format::Creator => {
            s.push_str("------ Message Queues Creators/Owners --------\n");
            let _ = writeln!(
                s,
                "{:<10} {:<10} {:<10} {:<10} {:<10} {:<10}",
                "msqid", "perms", "cuid", "cgid", "uid", "gid"
            );
        }
        Format::Time => {
            s.push_str("------ Message Queues Send/Recv/Change Times --------\n");
            let _ = writeln!(
                s,
                "{:<8} {:<10} {:<20} {:<20} {:<20}",
                "msqid", "owner", "send", "recv", "change"
            );
        }
        Format::Pid => {
            s.push_str("------ Message Queues PIDs --------\n");
            let _ = writeln!(
                s,
                "{:<10} {:<10} {:<10} {:<10}",
                "msqid", "owner", "lspid", "lrpid"
            );
        }
        Format::Default => {
            s.push_str("------ Message Queues --------\n");
            let size = if unit == Unit::Human {
                "size"
            } else {
                "used-bytes"
            };
            let _ = writeln!(
                s,
                "{:<10} {:<10} {:<10} {:<10} {:<12} {:<12}",
                "key", "msqid", "owner", "perms", size, "messages"
            );
        }
    }
    for e in sysvipc::msg().unwrap_or_default() {
        match format {
            Format::Creator => {
                perms_row(&mut s, names, e.id, e.mode, [e.cuid, e.cgid, e.uid, e.gid])
            }
            Format::Time => {
                owner(&mut s, names, e.id, e.uid, 8);
                let _ = writeln!(
                    s,
                    " {} {} {}",
                    time16(e.stime),
                    time16(e.rtime),
                    time16(e.ctime)
                );
            }
            Format::Pid => {
                owner(&mut s, names, e.id, e.uid, 8);
                let _ = writeln!(s, "  {:>5}     {:>5}", e.lspid, e.lrpid);
            }
            _ => {
                let _ = write!(s, "0x{:08x} ", e.key as u32);
                owner(&mut s, names, e.id, e.uid, 10);
                let _ = write!(s, " {:<10o} ", e.mode & 0o777);
                if unit == Unit::Human {
                    print_size(&mut s, unit, None, e.cbytes, "      ", 6);
                } else {
                    print_size(&mut s, unit, None, e.cbytes, "", -12);
                }
                let _ = writeln!(s, " {:<12}", e.qnum);
            }
        }
    }
    o.out(&s);
}

fn do_sem(o: &mut Output, names: &Names, format: Format) {
    let mut s = String::new();
    match format {
        Format::Limits => {
            let lim = std::fs::read_to_string("/proc/sys/kernel/sem").unwrap_or_default();
            let v: Vec<i64> = lim
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            let semvmx = ipcinfo::sem_usage().map(|u| u.semvmx).unwrap_or(32767);
            if v.len() != 4 {
                o.out("unable to fetch semaphore limits\n");
                return;
            }
            s.push_str("------ Semaphore Limits --------\n");
            let _ = writeln!(s, "max number of arrays = {}", v[3] as i32);
            let _ = writeln!(s, "max semaphores per array = {}", v[0] as i32);
            let _ = writeln!(s, "max semaphores system wide = {}", v[1] as i32);
            let _ = writeln!(s, "max ops per semop call = {}", v[2] as i32);
            let _ = writeln!(s, "semaphore max value = {}", semvmx as u32);
            o.out(&s);
            return;
        }
        Format::Status => {
            let Ok(i) = ipcinfo::sem_usage() else {
                o.out("kernel not configured for semaphores\n");
                return;
            };
            s.push_str("------ Semaphore Status --------\n");
            let _ = writeln!(s, "used arrays = {}", i.used_arrays);
            let _ = writeln!(s, "allocated semaphores = {}", i.allocated_sems);
            o.out(&s);
            return;
        }
        // util-linux prints nothing for semaphores in the PID view.
        Format::Pid => return,
        Format::Creator => {
            s.push_str("------ Semaphore Arrays Creators/Owners --------\n");
            let _ = writeln!(
                s,
                "{:<10} {:<10} {:<10} {:<10} {:<10} {:<10}",
                "semid", "perms", "cuid", "cgid", "uid", "gid"
            );
        }
        Format::Time => {
            s.push_str("------ Semaphore Operation/Change Times --------\n");
            let _ = writeln!(
                s,
                "{:<8} {:<10} {:<26} {:<26}",
                "semid", "owner", "last-op", "last-changed"
            );
        }
        Format::Default => {
            s.push_str("------ Semaphore Arrays --------\n");
            let _ = writeln!(
                s,
                "{:<10} {:<10} {:<10} {:<10} {:<10}",
                "key", "semid", "owner", "perms", "nsems"
            );
        }
    }
    for e in sysvipc::sem().unwrap_or_default() {
        match format {
            Format::Creator => {
                perms_row(&mut s, names, e.id, e.mode, [e.cuid, e.cgid, e.uid, e.gid])
            }
            Format::Time => {
                owner(&mut s, names, e.id, e.uid, 8);
                let _ = writeln!(s, "  {} {}", time24(e.otime), time24(e.ctime));
            }
            _ => {
                let _ = write!(s, "0x{:08x} ", e.key as u32);
                owner(&mut s, names, e.id, e.uid, 10);
                let _ = writeln!(s, " {:<10o} {:<10}", e.mode & 0o777, e.nsems);
            }
        }
    }
    o.out(&s);
}

/// util-linux looks an id up in the /proc list; a negative id matches the first entry.
fn pick<T: Clone>(v: Vec<T>, id: i32, get: impl Fn(&T) -> i32) -> Option<T> {
    if id < 0 {
        v.first().cloned()
    } else {
        v.iter().find(|e| get(e) == id).cloned()
    }
}

fn print_shm(o: &mut Output, id: i32, unit: Unit) {
    let Some(e): Option<ShmEntry> = pick(sysvipc::shm().unwrap_or_default(), id, |e| e.id) else {
        o.err(&format!("ipcs: id {id} not found\n"));
        return;
    };
    let mut s = String::new();
    let _ = writeln!(s, "\nShared memory Segment shmid={id}");
    let _ = writeln!(
        s,
        "uid={}\tgid={}\tcuid={}\tcgid={}",
        e.uid, e.gid, e.cuid, e.cgid
    );
    let _ = writeln!(
        s,
        "mode={}\taccess_perms={}",
        alt_octal(e.mode),
        alt_octal(e.mode & 0o777)
    );
    let label = if unit == Unit::Human {
        "size="
    } else {
        "bytes="
    };
    print_size(&mut s, unit, Some(label), e.size, "\t", 0);
    let _ = writeln!(s, "lpid={}\tcpid={}\tnattch={}", e.lpid, e.cpid, e.nattch);
    let _ = writeln!(s, "att_time={}", time24(e.atime));
    let _ = writeln!(s, "det_time={}", time24(e.dtime));
    let _ = writeln!(s, "change_time={}", time24(e.ctime));
    s.push('\n');
    o.out(&s);
}

fn print_msg(o: &mut Output, id: i32, unit: Unit) {
    let Some(e): Option<MsgEntry> = pick(sysvipc::msg().unwrap_or_default(), id, |e| e.id) else {
        o.err(&format!("ipcs: id {id} not found\n"));
        return;
    };
    // util-linux asks msgctl(IPC_STAT) with the id as given: for a negative id, which
    // otherwise shows the first queue, that fails and the limit shows as 0.
    let qbytes = ipcinfo::msg_qbytes(id).unwrap_or(0);
    let mut s = String::new();
    let _ = writeln!(s, "\nMessage Queue msqid={id}");
    let _ = writeln!(
        s,
        "uid={}\tgid={}\tcuid={}\tcgid={}\tmode={}",
        e.uid,
        e.gid,
        e.cuid,
        e.cgid,
        alt_octal(e.mode)
    );
    let (c, q) = if unit == Unit::Human {
        ("csize=", "qsize=")
    } else {
        ("cbytes=", "qbytes=")
    };
    print_size(&mut s, unit, Some(c), e.cbytes, "\t", 0);
    print_size(&mut s, unit, Some(q), qbytes, "\t", 0);
    let _ = writeln!(s, "qnum={}\tlspid={}\tlrpid={}", e.qnum, e.lspid, e.lrpid);
    let _ = writeln!(s, "send_time={}", time24(e.stime));
    let _ = writeln!(s, "rcv_time={}", time24(e.rtime));
    let _ = writeln!(s, "change_time={}", time24(e.ctime));
    s.push('\n');
    o.out(&s);
}

fn print_sem(o: &mut Output, id: i32) {
    let Some(e): Option<SemEntry> = pick(sysvipc::sem().unwrap_or_default(), id, |e| e.id) else {
        o.err(&format!("ipcs: id {id} not found\n"));
        return;
    };
    let mut s = String::new();
    let _ = writeln!(s, "\nSemaphore Array semid={id}");
    let _ = writeln!(
        s,
        "uid={}\t gid={}\t cuid={}\t cgid={}",
        e.uid, e.gid, e.cuid, e.cgid
    );
    let _ = writeln!(
        s,
        "mode={}, access_perms={}",
        alt_octal(e.mode),
        alt_octal(e.mode & 0o777)
    );
    let _ = writeln!(s, "nsems = {}", e.nsems);
    let _ = writeln!(s, "otime = {}", time24(e.otime));
    let _ = writeln!(s, "ctime = {}", time24(e.ctime));
    let _ = writeln!(
        s,
        "{:<10} {:<10} {:<10} {:<10} {:<10}",
        "semnum", "value", "ncount", "zcount", "pid"
    );
    let vals = ipcinfo::sem_values(e.id, e.nsems as usize).unwrap_or_default();
    for (i, v) in vals.iter().enumerate() {
        let _ = writeln!(
            s,
            "{i:<10} {:<10} {:<10} {:<10} {:<10}",
            v.value, v.ncount, v.zcount, v.pid
        );
    }
    s.push('\n');
    o.out(&s);
}
