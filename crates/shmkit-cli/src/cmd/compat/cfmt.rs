//! The bits of C formatting the drop-ins need to match util-linux byte for byte:
//! `ctime(3)` text, `%#o`, strerror text without Rust's "(os error N)", and
//! util-linux's `size_to_human_string` with one-letter suffixes.

use chrono::{Local, TimeZone};

/// `ctime(3)` without the newline: `Mon Nov 30 04:16:15 2026` (24 characters), in the
/// local time zone.
pub fn ctime(t: i64) -> String {
    match Local.timestamp_opt(t, 0).single() {
        Some(d) => d.format("%a %b %e %H:%M:%S %Y").to_string(),
        None => format!("{t}"),
    }
}

/// `printf("%-W.Ps", s)`.
pub fn lpad_trunc(s: &str, width: usize, prec: usize) -> String {
    let t: String = s.chars().take(prec).collect();
    format!("{t:<width$}")
}

/// `printf("%#o", v)`.
pub fn alt_octal(v: u32) -> String {
    if v == 0 {
        "0".into()
    } else {
        format!("0{v:o}")
    }
}

/// strerror(errno) text.
pub fn strerror(errno: i32) -> String {
    let s = std::io::Error::from_raw_os_error(errno).to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// util-linux `size_to_human_string(SIZE_SUFFIX_1LETTER, bytes)`: `4K`, `97.7K`,
/// `1000B`, `16E`.
pub fn human(bytes: u64) -> String {
    let letters = ['B', 'K', 'M', 'G', 'T', 'P', 'E'];
    let mut exp = 10;
    while exp <= 60 {
        if bytes < (1u64 << exp) {
            break;
        }
        exp += 10;
    }
    let exp = exp - 10;
    let c = letters[exp / 10];
    let mut dec = if exp > 0 { bytes >> exp } else { bytes };
    let mut frac = if exp > 0 {
        bytes & ((1u64 << exp) - 1)
    } else {
        0
    };
    if frac != 0 {
        frac = if frac >= u64::MAX / 1000 {
            ((frac / 1024) * 1000) / (1u64 << (exp - 10))
        } else {
            (frac * 1000) / (1u64 << exp)
        };
        frac = (frac + 50) / 100 * 10;
        if frac == 100 {
            dec += 1;
            frac = 0;
        }
    }
    if frac != 0 {
        let mut s = format!("{dec}.{frac:02}");
        if s.ends_with('0') {
            s.pop();
        }
        format!("{s}{c}")
    } else {
        format!("{dec}{c}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_match_util_linux() {
        assert_eq!(human(0), "0B");
        assert_eq!(human(1000), "1000B");
        assert_eq!(human(4096), "4K");
        assert_eq!(human(100000), "97.7K");
        assert_eq!(human(18446744073692774399), "16E");
        assert_eq!(human(5000000), "4.8M");
        assert_eq!(human(4096000), "3.9M");
    }

    #[test]
    fn c_formats() {
        assert_eq!(alt_octal(0), "0");
        assert_eq!(alt_octal(0o644), "0644");
        assert_eq!(lpad_trunc("averyveryverylongname", 10, 10), "averyveryv");
        assert_eq!(strerror(libc::EINVAL), "Invalid argument");
    }
}
