//! `ipcmk`: creates a System V segment (-M SIZE), queue (-Q) or semaphore set
//! (-S NUMBER) with mode -p (octal, default 0644) and prints their ids exactly as
//! util-linux 2.38.1 does.
//!
//! Deliberate difference: util-linux picks a random key and calls `shmget` without
//! `IPC_EXCL`, so a collision silently returns somebody else's object. This one creates
//! with `IPC_EXCL` and draws a new key on `EEXIST`.

use shmkit::sys::ipcinfo::{self, SysvKind};

use super::cfmt::strerror;
use super::getopt::{self, HasArg, Item, LongOpt};
use super::Output;

const HELP: &str = "
Usage:
 ipcmk [options]

Create various IPC resources.

Options:
 -M, --shmem <size>       create shared memory segment of size <size>
 -S, --semaphore <number> create semaphore array with <number> elements
 -Q, --queue              create message queue
 -p, --mode <mode>        permission for the resource (default is 0644)

 -h, --help               display this help
 -V, --version            display version

Arguments:
 <size> arguments may be followed by the suffixes for
   GiB, TiB, PiB, EiB, ZiB, and YiB (the \"iB\" is optional)

For more details see ipcmk(1).
";

/// util-linux `strtosize`: a number with an optional suffix K, M, G, T, P, E (powers of
/// 1024, also spelt KiB …) or KB, MB … (powers of 1000).
fn strtosize(s: &str) -> Option<u64> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    let n: u64 = s[..end].parse().ok()?;
    let suffix = &s[end..];
    if suffix.is_empty() {
        return Some(n);
    }
    let letters = "KMGTPEZY";
    let mut chars = suffix.chars();
    let l = chars.next()?.to_ascii_uppercase();
    let pow = letters.find(l)? as u32 + 1;
    let base: u64 = match chars.as_str() {
        "" | "iB" | "IB" | "ib" => 1024,
        "B" | "b" => 1000,
        _ => return None,
    };
    n.checked_mul(base.checked_pow(pow)?)
}

fn random_key() -> i32 {
    let mut b = [0u8; 4];
    let got = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b));
    if got.is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        b = (t ^ std::process::id().rotate_left(16)).to_ne_bytes();
    }
    i32::from_ne_bytes(b)
}

fn create(kind: SysvKind, size: usize, perm: u32) -> Result<i32, i32> {
    for _ in 0..64 {
        let key = random_key();
        if key == libc::IPC_PRIVATE {
            continue;
        }
        match ipcinfo::create(kind, key, size, perm) {
            Ok(id) => return Ok(id),
            Err(e) if e.errno() == Some(libc::EEXIST) => continue,
            Err(e) => return Err(e.errno().unwrap_or(libc::EIO)),
        }
    }
    Err(libc::EEXIST)
}

/// The `ipcmk` command line.
pub fn main(args: &[String], o: &mut Output) -> u8 {
    const LONG: &[LongOpt] = &[
        LongOpt {
            name: "shmem",
            has_arg: HasArg::Required,
            val: 'M',
        },
        LongOpt {
            name: "semaphore",
            has_arg: HasArg::Required,
            val: 'S',
        },
        LongOpt {
            name: "queue",
            has_arg: HasArg::No,
            val: 'Q',
        },
        LongOpt {
            name: "mode",
            has_arg: HasArg::Required,
            val: 'p',
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
    let (items, _) = getopt::parse(args, "hM:QS:p:Vh", LONG);
    let mut perm: u32 = 0o644;
    let (mut size, mut nsems) = (None::<u64>, None::<i32>);
    let mut queue = false;
    for it in items {
        match it {
            Item::Error(e) => return o.getopt_error("ipcmk", &e),
            Item::Opt(c, arg) => {
                let arg = arg.unwrap_or_default();
                match c {
                    'M' => match strtosize(&arg) {
                        Some(v) => size = Some(v),
                        None => {
                            o.err(&format!(
                                "ipcmk: failed to parse size: '{arg}': {}\n",
                                strerror(libc::EINVAL)
                            ));
                            return 1;
                        }
                    },
                    'Q' => queue = true,
                    'S' => match super::strtos32(&arg) {
                        Ok(v) => nsems = Some(v),
                        Err(suffix) => {
                            o.err(&format!(
                                "ipcmk: failed to parse elements: '{arg}'{suffix}\n"
                            ));
                            return 1;
                        }
                    },
                    'p' => match u64::from_str_radix(&arg, 8) {
                        Ok(v) => perm = v as u32,
                        Err(_) => {
                            // util-linux reports errno, which strtoul left at 0.
                            o.err("ipcmk: failed to parse mode: Success\n");
                            return 1;
                        }
                    },
                    'h' => {
                        o.out(HELP);
                        return 0;
                    }
                    'V' => {
                        o.out(&super::version("ipcmk"));
                        return 0;
                    }
                    _ => return o.try_help("ipcmk", &format!("invalid option -- '{c}'")),
                }
            }
        }
    }
    if size.is_none() && nsems.is_none() && !queue {
        return o.try_help("ipcmk", "bad usage");
    }
    if let Some(sz) = size {
        match create(
            SysvKind::Shm,
            usize::try_from(sz).unwrap_or(usize::MAX),
            perm,
        ) {
            Ok(id) => o.out(&format!("Shared memory id: {id}\n")),
            Err(e) => {
                o.err(&format!(
                    "ipcmk: create share memory failed: {}\n",
                    strerror(e)
                ));
                return 1;
            }
        }
    }
    if queue {
        match create(SysvKind::Msg, 0, perm) {
            Ok(id) => o.out(&format!("Message queue id: {id}\n")),
            Err(e) => {
                o.err(&format!(
                    "ipcmk: create message queue failed: {}\n",
                    strerror(e)
                ));
                return 1;
            }
        }
    }
    if let Some(n) = nsems {
        // A negative count reaches semget as a huge unsigned value: EINVAL, as there.
        let n = if n < 0 { usize::MAX } else { n as usize };
        match create(SysvKind::Sem, n, perm) {
            Ok(id) => o.out(&format!("Semaphore id: {id}\n")),
            Err(e) => {
                o.err(&format!(
                    "ipcmk: create semaphore failed: {}\n",
                    strerror(e)
                ));
                return 1;
            }
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::strtosize;

    #[test]
    fn sizes() {
        assert_eq!(strtosize("4096"), Some(4096));
        assert_eq!(strtosize("1K"), Some(1024));
        assert_eq!(strtosize("1KiB"), Some(1024));
        assert_eq!(strtosize("2KB"), Some(2000));
        assert_eq!(strtosize("x"), None);
        assert_eq!(strtosize("1Q"), None);
    }
}
