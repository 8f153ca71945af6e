//! `ipcrm`: removes System V objects by id (-m/-q/-s) or key (-M/-Q/-S), all of them
//! (-a, or -a=shm|msg|sem), verbosely (-v), or in the legacy `ipcrm shm|msg|sem ID…`
//! form, with util-linux 2.38.1's messages and exit codes.
//!
//! Deliberate difference: `ipcrm -a msg` (a space instead of `=`) is refused with an
//! explanation and exit code 1 before anything is removed. util-linux parses it as `-a`
//! (remove everything) followed by a stray operand, removes every object of every kind,
//! and only then reports "unknown argument: msg".

use shmkit::inspect::sysvipc;
use shmkit::sys::ipcinfo::{self, SysvKind};

use super::getopt::{self, HasArg, Item, LongOpt};
use super::Output;

const HELP: &str = "
Usage:
 ipcrm [options]
 ipcrm shm|msg|sem <id>...

Remove certain IPC resources.

Options:
 -m, --shmem-id <id>        remove shared memory segment by id
 -M, --shmem-key <key>      remove shared memory segment by key
 -q, --queue-id <id>        remove message queue by id
 -Q, --queue-key <key>      remove message queue by key
 -s, --semaphore-id <id>    remove semaphore by id
 -S, --semaphore-key <key>  remove semaphore by key
 -a, --all[=shm|msg|sem]    remove all (in the specified category)
 -v, --verbose              explain what is being done

 -h, --help                 display this help
 -V, --version              display version

For more details see ipcrm(1).

Deliberate difference from util-linux (shmkit):
 '-a shm', '-a msg' and '-a sem' (a space instead of '=') are refused before
 anything is removed: util-linux reads them as '-a' (remove everything) and a
 stray word. Write -ashm or --all=shm to remove one kind, or -a alone for all.
";

struct Rm<'a> {
    o: &'a mut Output,
    verbose: bool,
}

impl Rm<'_> {
    /// Removes one object; prints util-linux's message on failure. Returns false then.
    fn remove_id(&mut self, kind: SysvKind, iskey: bool, id: i32, shown: &str) -> bool {
        if self.verbose {
            let what = match kind {
                SysvKind::Shm => "shared memory segment",
                SysvKind::Msg => "message queue",
                SysvKind::Sem => "semaphore",
            };
            self.o.out(&format!("removing {what} id `{id}'\n"));
        }
        let Err(e) = ipcinfo::remove(kind, id) else {
            return true;
        };
        let what = if iskey { "key" } else { "id" };
        let msg = match e.errno() {
            Some(libc::EACCES) | Some(libc::EPERM) => format!("permission denied for {what}"),
            Some(libc::EINVAL) => format!("invalid {what}"),
            Some(libc::EIDRM) => format!("already removed {what}"),
            errno => {
                let r = super::cfmt::strerror(errno.unwrap_or(libc::EIO));
                self.o.err(&format!("ipcrm: {what} failed: {r}\n"));
                std::process::exit(1);
            }
        };
        self.o.err(&format!("ipcrm: {msg} ({shown})\n"));
        false
    }

    fn by_key(&mut self, kind: SysvKind, s: &str) -> bool {
        let Some(key) = strtokey(s) else {
            self.o
                .err(&format!("ipcrm: failed to parse argument: '{s}'\n"));
            std::process::exit(1);
        };
        if key == 0 {
            self.o.err(&format!("ipcrm: illegal key ({s})\n"));
            return false;
        }
        match ipcinfo::id_for_key(kind, key) {
            Ok(id) => self.remove_id(kind, true, id, &id.to_string()),
            Err(e) => {
                let msg = match e.errno() {
                    Some(libc::EACCES) => "permission denied for key",
                    Some(libc::EIDRM) => "already removed key",
                    Some(libc::ENOENT) => "invalid key",
                    errno => {
                        let r = super::cfmt::strerror(errno.unwrap_or(libc::EIO));
                        self.o.err(&format!("ipcrm: key failed: {r}\n"));
                        std::process::exit(1);
                    }
                };
                self.o.err(&format!("ipcrm: {msg} ({s})\n"));
                false
            }
        }
    }

    /// Removes every object of `kinds`, in util-linux's order: shm, sem, msg.
    fn remove_all(&mut self, kinds: &[SysvKind]) -> bool {
        let mut ok = true;
        for kind in [SysvKind::Shm, SysvKind::Sem, SysvKind::Msg] {
            if !kinds.contains(&kind) {
                continue;
            }
            let ids: Vec<i32> = match kind {
                SysvKind::Shm => sysvipc::shm().map(|v| v.iter().map(|e| e.id).collect()),
                SysvKind::Sem => sysvipc::sem().map(|v| v.iter().map(|e| e.id).collect()),
                SysvKind::Msg => sysvipc::msg().map(|v| v.iter().map(|e| e.id).collect()),
            }
            .unwrap_or_default();
            for id in ids {
                ok &= self.remove_id(kind, false, id, &id.to_string());
            }
        }
        ok
    }
}

/// `strtoul(s, 0)` as a key: hex with 0x, octal with 0, else decimal; must be whole.
fn strtokey(s: &str) -> Option<i32> {
    let t = s.trim_start();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let v = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()?
    } else if t.len() > 1 && t.starts_with('0') {
        u64::from_str_radix(&t[1..], 8).ok()?
    } else {
        t.parse::<u64>().ok()?
    };
    let v = if neg { v.wrapping_neg() } else { v };
    Some(v as u32 as i32)
}

fn legacy_kind(s: &str) -> Option<SysvKind> {
    match s {
        "shm" => Some(SysvKind::Shm),
        "msg" => Some(SysvKind::Msg),
        "sem" => Some(SysvKind::Sem),
        _ => None,
    }
}

/// The `ipcrm` command line.
pub fn main(args: &[String], o: &mut Output) -> u8 {
    if args.is_empty() {
        return 0;
    }
    // The legacy form: ipcrm shm|msg|sem ID...
    if let Some(kind) = legacy_kind(&args[0]) {
        if args.len() < 2 {
            o.err("ipcrm: not enough arguments\n");
            return o.try_help_only("ipcrm");
        }
        let mut rm = Rm { o, verbose: false };
        let mut errors = 0;
        for a in &args[1..] {
            match a.parse::<u64>() {
                Ok(v) => {
                    let id = v as u32 as i32;
                    if !rm.remove_id(kind, false, id, &id.to_string()) {
                        errors += 1;
                    }
                }
                Err(_) => {
                    rm.o.err(&format!("ipcrm: invalid id: {a}\n"));
                    errors += 1;
                }
            }
        }
        if errors > 0 {
            return 1;
        }
        o.out("resource(s) deleted\n");
        return 0;
    }
    const LONG: &[LongOpt] = &[
        LongOpt {
            name: "shmem-id",
            has_arg: HasArg::Required,
            val: 'm',
        },
        LongOpt {
            name: "shmem-key",
            has_arg: HasArg::Required,
            val: 'M',
        },
        LongOpt {
            name: "queue-id",
            has_arg: HasArg::Required,
            val: 'q',
        },
        LongOpt {
            name: "queue-key",
            has_arg: HasArg::Required,
            val: 'Q',
        },
        LongOpt {
            name: "semaphore-id",
            has_arg: HasArg::Required,
            val: 's',
        },
        LongOpt {
            name: "semaphore-key",
            has_arg: HasArg::Required,
            val: 'S',
        },
        LongOpt {
            name: "all",
            has_arg: HasArg::Optional,
            val: 'a',
        },
        LongOpt {
            name: "verbose",
            has_arg: HasArg::No,
            val: 'v',
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
    let (items, operands) = getopt::parse(args, "q:m:s:Q:M:S:a::vhV", LONG);
    // The foot-gun guard: `-a` without `=` followed by a kind word as an operand.
    let bare_all = items.iter().any(|i| matches!(i, Item::Opt('a', None)));
    if bare_all {
        if let Some(word) = operands.iter().find(|w| legacy_kind(w).is_some()) {
            o.err(&format!(
                "ipcrm: refusing '-a {word}': it would remove ALL System V objects of every kind \
                 and then complain about '{word}'; write '-a{word}' or '--all={word}' to remove \
                 only the {word} objects, or '-a' alone to remove everything\n"
            ));
            return 1;
        }
    }
    let mut rm = Rm { o, verbose: false };
    let mut ret = 0;
    let mut all: Option<Vec<SysvKind>> = None;
    for it in items {
        match it {
            Item::Error(e) => return rm.o.getopt_error("ipcrm", &e),
            Item::Opt(c, arg) => {
                let arg = arg.unwrap_or_default();
                let kind = match c.to_ascii_lowercase() {
                    'm' => Some(SysvKind::Shm),
                    'q' => Some(SysvKind::Msg),
                    's' => Some(SysvKind::Sem),
                    _ => None,
                };
                match (c, kind) {
                    ('M' | 'Q' | 'S', Some(k)) => {
                        if !rm.by_key(k, &arg) {
                            ret += 1;
                        }
                    }
                    ('m' | 'q' | 's', Some(k)) => match super::strtos32(&arg) {
                        Ok(id) => {
                            if !rm.remove_id(k, false, id, &id.to_string()) {
                                ret += 1;
                            }
                        }
                        Err(suffix) => {
                            rm.o.err(&format!(
                                "ipcrm: failed to parse argument: '{arg}'{suffix}\n"
                            ));
                            return 1;
                        }
                    },
                    ('a', _) => {
                        all = Some(match arg.as_str() {
                            "" => vec![SysvKind::Shm, SysvKind::Msg, SysvKind::Sem],
                            w => match legacy_kind(w) {
                                Some(k) => vec![k],
                                None => {
                                    rm.o.err(&format!("ipcrm: unknown argument: {w}\n"));
                                    return 1;
                                }
                            },
                        })
                    }
                    ('v', _) => rm.verbose = true,
                    ('h', _) => {
                        rm.o.out(HELP);
                        return 0;
                    }
                    ('V', _) => {
                        rm.o.out(&super::version("ipcrm"));
                        return 0;
                    }
                    _ => return rm.o.try_help("ipcrm", &format!("invalid option -- '{c}'")),
                }
            }
        }
    }
    if let Some(kinds) = all {
        if !rm.remove_all(&kinds) {
            ret += 1;
        }
    }
    if let Some(first) = operands.first() {
        return rm
            .o
            .try_help("ipcrm", &format!("unknown argument: {first}"));
    }
    if ret > 0 {
        1
    } else {
        0
    }
}
