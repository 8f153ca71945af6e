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

/// C `strtoumax(s, &end, 0)`: leading blanks, an optional sign, then `0x` hex, `0`
/// octal or decimal digits. Returns the value (saturated, with `Err(ERANGE)` on
/// overflow) and the unparsed rest; `None` when no digit was read.
fn strtoumax(s: &str) -> Option<(Result<u64, i32>, &str)> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let b = t.as_bytes();
    let (radix, digits) =
        if b.len() > 2 && b[0] == b'0' && (b[1] | 0x20) == b'x' && b[2].is_ascii_hexdigit() {
            (16, &t[2..])
        } else if b.first() == Some(&b'0') {
            (8, t)
        } else {
            (10, t)
        };
    let end = digits
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(digits.len());
    if end == 0 {
        return None;
    }
    let mut v: Result<u64, i32> = Ok(0);
    for c in digits[..end].chars() {
        let d = u64::from(c.to_digit(radix).unwrap_or(0));
        v = v.and_then(|v| {
            v.checked_mul(u64::from(radix))
                .and_then(|v| v.checked_add(d))
                .ok_or(libc::ERANGE)
        });
    }
    Some((
        v.map(|v| if neg { v.wrapping_neg() } else { v }),
        &digits[end..],
    ))
}

/// util-linux `parse_size` (lib/strutils.c, 2.38) in the C locale: a number as
/// `strtoumax` reads it (decimal, 0x hex, 0 octal), an optional fraction after '.', and
/// an optional suffix K, M, G, T, P, E, Z, Y (powers of 1024, also spelt KiB) or KB, MB …
/// (powers of 1000). The error is the errno util-linux reports: EINVAL or ERANGE.
fn strtosize(s: &str) -> Result<u64, i32> {
    if s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r'])
        .starts_with('-')
    {
        return Err(libc::EINVAL);
    }
    let (x, mut p) = strtoumax(s).ok_or(libc::EINVAL)?;
    let mut x = x?;
    if p.is_empty() {
        return Ok(x);
    }
    let (mut frac, mut frac_zeros) = (0u64, 0u32);
    let base: u64 = loop {
        let b = p.as_bytes();
        let at = |i: usize| b.get(i).copied().unwrap_or(0);
        if at(1) == b'i' && (at(2) == b'B' || at(2) == b'b') && at(3) == 0 {
            break 1024;
        } else if (at(1) == b'B' || at(1) == b'b') && at(2) == 0 {
            break 1000;
        } else if at(1) != 0 {
            // A fraction: "1.5K". Only once, and only before a suffix.
            if frac == 0 && at(0) == b'.' {
                let f = &p[1..];
                let digits = f.trim_start_matches('0');
                frac_zeros = (f.len() - digits.len()) as u32;
                if digits.as_bytes().first().is_some_and(u8::is_ascii_digit) {
                    let (v, rest) = strtoumax(digits).ok_or(libc::EINVAL)?;
                    frac = v?;
                    if frac != 0 && rest.is_empty() {
                        return Err(libc::EINVAL);
                    }
                    p = rest;
                } else {
                    p = digits;
                }
                if p.is_empty() {
                    return Err(libc::EINVAL);
                }
                continue;
            }
            return Err(libc::EINVAL);
        } else {
            break 1024;
        }
    };
    let pwr = match "KMGTPEZY".find(p.as_bytes()[0].to_ascii_uppercase() as char) {
        Some(i) if p.as_bytes()[0].is_ascii_alphabetic() => i as u32 + 1,
        _ => return Err(libc::EINVAL),
    };
    let scale = |mut v: u64| -> Result<u64, i32> {
        for _ in 0..pwr {
            v = v.checked_mul(base).ok_or(libc::ERANGE)?;
        }
        Ok(v)
    };
    let scaled = scale(x);
    if frac != 0 {
        // As util-linux: each digit of the fraction adds frac_base / (divisor / digit).
        let frac_base = scale(1).unwrap_or(u64::MAX);
        let mut frac_div: u64 = 10;
        while frac_div < frac {
            if frac_div <= u64::MAX / 10 {
                frac_div *= 10;
            } else {
                frac /= 10;
            }
        }
        for _ in 0..frac_zeros {
            if frac_div <= u64::MAX / 10 {
                frac_div *= 10;
            } else {
                frac /= 10;
            }
        }
        x = scaled.unwrap_or(u64::MAX);
        let mut frac_poz: u64 = 1;
        loop {
            let seg = frac % 10;
            let seg_div = frac_div / frac_poz;
            frac /= 10;
            frac_poz = frac_poz.saturating_mul(10);
            if seg != 0 && seg_div / seg != 0 {
                x = x.wrapping_add(frac_base / (seg_div / seg));
            }
            if frac == 0 {
                break;
            }
        }
        return scaled.map(|_| x);
    }
    scaled
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
                        Ok(v) => size = Some(v),
                        Err(errno) => {
                            o.err(&format!(
                                "ipcmk: failed to parse size: '{arg}': {}\n",
                                strerror(errno)
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
        assert_eq!(strtosize("4096"), Ok(4096));
        assert_eq!(strtosize("1K"), Ok(1024));
        assert_eq!(strtosize("1KiB"), Ok(1024));
        assert_eq!(strtosize("2KB"), Ok(2000));
        assert_eq!(strtosize("x"), Err(libc::EINVAL));
        assert_eq!(strtosize("1Q"), Err(libc::EINVAL));
    }

    /// Each value is what util-linux 2.38.1's ipcmk made of the argument (checked
    /// against the real tool: the segment's size, or its error).
    #[test]
    fn sizes_as_util_linux_parses_them() {
        use libc::{EINVAL, ERANGE};
        for (arg, want) in [
            ("010", Ok(8)),
            ("08", Err(EINVAL)),
            ("0x10", Ok(16)),
            ("0x1K", Ok(1024)),
            (" 5", Ok(5)),
            ("+5", Ok(5)),
            ("-5", Err(EINVAL)),
            ("1.5K", Ok(1536)),
            ("0.5K", Ok(512)),
            ("1.25M", Ok(1310719)),
            ("1.05K", Ok(1075)),
            ("1.999K", Ok(2150)),
            ("1.K", Ok(1024)),
            ("1.5", Err(EINVAL)),
            (".5K", Err(EINVAL)),
            ("K", Err(EINVAL)),
            ("1 K", Err(EINVAL)),
            ("1KIB", Err(EINVAL)),
            ("1kB", Ok(1000)),
            ("5kiB", Ok(5120)),
            ("1X", Err(EINVAL)),
            ("16E", Err(ERANGE)),
            ("1Z", Err(ERANGE)),
            ("17179869184G", Err(ERANGE)),
            ("99999999999999999999", Err(ERANGE)),
            ("99999999999999999999K", Err(ERANGE)),
        ] {
            assert_eq!(strtosize(arg), want, "{arg:?}");
        }
    }
}
