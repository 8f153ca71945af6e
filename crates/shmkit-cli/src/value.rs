//! How the CLI reads and writes bytes: formats (`text`, `cstring`, `raw`, `hex`, and
//! the typed values `i8`…`i64`, `u8`…`u64`, `f32`, `f64` in native byte order), and
//! the parsers for sizes, offsets, modes and durations. Every parser returns a message
//! for a usage error.

use std::fmt;
use std::time::Duration;

/// A plain-old-data type a value can be read or written as (native byte order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    F32,
    F64,
}

/// How bytes are shown or given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Text: on reading, up to the first NUL; on writing, the bytes without a NUL.
    Text,
    /// A C string: on writing, the bytes followed by a NUL.
    CString,
    /// Raw bytes: to stdout on reading, from stdin on writing.
    Raw,
    /// Hex: a dump on reading; pairs of hex digits (spaces allowed) on writing.
    Hex,
    /// One typed value.
    Typed(Ty),
}

/// The names `--as` accepts, for messages.
pub const FORMAT_NAMES: &str =
    "text, cstring, raw, hex, i8, i16, i32, i64, u8, u16, u32, u64, f32, f64";

impl Format {
    /// Parses a format name.
    pub fn parse(s: &str) -> Result<Format, String> {
        Ok(match s {
            "text" | "string" => Format::Text,
            "cstring" => Format::CString,
            "raw" => Format::Raw,
            "hex" => Format::Hex,
            _ => {
                Format::Typed(Ty::parse(s).ok_or_else(|| {
                    format!("unknown format or type '{s}' (known: {FORMAT_NAMES})")
                })?)
            }
        })
    }
}

impl Ty {
    fn parse(s: &str) -> Option<Ty> {
        Some(match s {
            "i8" => Ty::I8,
            "i16" => Ty::I16,
            "i32" => Ty::I32,
            "i64" => Ty::I64,
            "u8" => Ty::U8,
            "u16" => Ty::U16,
            "u32" => Ty::U32,
            "u64" => Ty::U64,
            "f32" => Ty::F32,
            "f64" => Ty::F64,
            _ => return None,
        })
    }

    /// Size in bytes.
    pub fn size(self) -> usize {
        match self {
            Ty::I8 | Ty::U8 => 1,
            Ty::I16 | Ty::U16 => 2,
            Ty::I32 | Ty::U32 | Ty::F32 => 4,
            Ty::I64 | Ty::U64 | Ty::F64 => 8,
        }
    }

    /// Parses a value of this type (integers also as 0x hex) into native-order bytes.
    pub fn encode(self, s: &str) -> Result<Vec<u8>, String> {
        let bad = || format!("'{s}' is not a valid {self} value");
        fn int<T: TryFrom<i128>>(s: &str) -> Option<T> {
            let (neg, digits) = match s.strip_prefix('-') {
                Some(d) => (true, d),
                None => (false, s.strip_prefix('+').unwrap_or(s)),
            };
            let v = match digits
                .strip_prefix("0x")
                .or_else(|| digits.strip_prefix("0X"))
            {
                Some(h) => i128::from_str_radix(h, 16).ok()?,
                None => digits.parse::<i128>().ok()?,
            };
            T::try_from(if neg { -v } else { v }).ok()
        }
        let t = s.trim();
        Ok(match self {
            Ty::I8 => int::<i8>(t).ok_or_else(bad)?.to_ne_bytes().to_vec(),
            Ty::I16 => int::<i16>(t).ok_or_else(bad)?.to_ne_bytes().to_vec(),
            Ty::I32 => int::<i32>(t).ok_or_else(bad)?.to_ne_bytes().to_vec(),
            Ty::I64 => int::<i64>(t).ok_or_else(bad)?.to_ne_bytes().to_vec(),
            Ty::U8 => int::<u8>(t).ok_or_else(bad)?.to_ne_bytes().to_vec(),
            Ty::U16 => int::<u16>(t).ok_or_else(bad)?.to_ne_bytes().to_vec(),
            Ty::U32 => int::<u32>(t).ok_or_else(bad)?.to_ne_bytes().to_vec(),
            Ty::U64 => int::<u64>(t).ok_or_else(bad)?.to_ne_bytes().to_vec(),
            Ty::F32 => t.parse::<f32>().map_err(|_| bad())?.to_ne_bytes().to_vec(),
            Ty::F64 => t.parse::<f64>().map_err(|_| bad())?.to_ne_bytes().to_vec(),
        })
    }

    /// Formats native-order bytes (exactly [`Ty::size`] of them) as a value.
    pub fn decode(self, b: &[u8]) -> String {
        fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
            let mut a = [0u8; N];
            a.copy_from_slice(&b[..N]);
            a
        }
        match self {
            Ty::I8 => i8::from_ne_bytes(arr(b)).to_string(),
            Ty::I16 => i16::from_ne_bytes(arr(b)).to_string(),
            Ty::I32 => i32::from_ne_bytes(arr(b)).to_string(),
            Ty::I64 => i64::from_ne_bytes(arr(b)).to_string(),
            Ty::U8 => u8::from_ne_bytes(arr(b)).to_string(),
            Ty::U16 => u16::from_ne_bytes(arr(b)).to_string(),
            Ty::U32 => u32::from_ne_bytes(arr(b)).to_string(),
            Ty::U64 => u64::from_ne_bytes(arr(b)).to_string(),
            Ty::F32 => f32::from_ne_bytes(arr(b)).to_string(),
            Ty::F64 => f64::from_ne_bytes(arr(b)).to_string(),
        }
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ty::I8 => "i8",
            Ty::I16 => "i16",
            Ty::I32 => "i32",
            Ty::I64 => "i64",
            Ty::U8 => "u8",
            Ty::U16 => "u16",
            Ty::U32 => "u32",
            Ty::U64 => "u64",
            Ty::F32 => "f32",
            Ty::F64 => "f64",
        })
    }
}

/// Hex digit pairs (spaces, `:` and a leading `0x` allowed) as bytes.
pub fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let t = s.trim();
    let t = t.strip_prefix("0x").unwrap_or(t);
    let digits: Vec<u8> = t
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b':')
        .collect();
    if digits.len() % 2 != 0 {
        return Err(format!("'{s}': hex bytes need an even number of digits"));
    }
    digits
        .chunks(2)
        .map(|p| {
            std::str::from_utf8(p)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| format!("'{s}': not hex bytes such as 'de ad be ef'"))
        })
        .collect()
}

/// A hex dump: `00000010  68 65 6c 6c 6f 00 …  |hello.|`, offsets counted from `base`.
pub fn hex_dump(base: usize, bytes: &[u8]) -> String {
    let mut out = String::new();
    for (i, chunk) in bytes.chunks(16).enumerate() {
        out.push_str(&format!("{:08x} ", base + i * 16));
        for j in 0..16 {
            if j == 8 {
                out.push(' ');
            }
            match chunk.get(j) {
                Some(b) => out.push_str(&format!(" {b:02x}")),
                None => out.push_str("   "),
            }
        }
        out.push_str("  |");
        for b in chunk {
            out.push(if b.is_ascii_graphic() || *b == b' ' {
                *b as char
            } else {
                '.'
            });
        }
        out.push_str("|\n");
    }
    out
}

/// A size or offset: decimal or 0x hex, with an optional suffix K, M, G (powers of
/// 1024; `KiB` etc. also accepted).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let bad = || format!("'{s}' is not a size such as 4096, 0x1000, 64K or 2M");
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(h, 16).map_err(|_| bad());
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mul: u64 = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    n.checked_mul(mul).ok_or_else(bad)
}

/// An offset or length that must fit in memory.
pub fn parse_usize(s: &str) -> Result<usize, String> {
    let v = parse_size(s)?;
    usize::try_from(v).map_err(|_| format!("'{s}' is too large"))
}

/// Octal permission bits such as 600 or 0640, at most 0777.
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let t = s.trim().trim_start_matches("0o");
    match u32::from_str_radix(t, 8) {
        Ok(m) if m <= 0o777 && !t.is_empty() => Ok(m),
        _ => Err(format!(
            "'{s}' is not a mode: give octal permission bits from 000 to 777, such as 600"
        )),
    }
}

/// A duration: a number with an optional unit ms, s (default), m.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let bad = || format!("'{s}' is not a duration such as 500ms, 5s or 2m");
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        _ => return Err(bad()),
    };
    let d = Duration::try_from_secs_f64(secs).map_err(|_| bad())?;
    // Deadlines are `now + d`: beyond this they could overflow the clock (a panic).
    if d > MAX_DURATION {
        return Err(format!(
            "'{s}' is longer than 100 years, the longest timeout"
        ));
    }
    Ok(d)
}

/// The longest duration [`parse_duration`] accepts: 100 years.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_past_100_years_are_refused_not_overflowed() {
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        let e = parse_duration("300000000000000000m").unwrap_err();
        assert!(e.contains("longer than 100 years"), "{e}");
        assert_eq!(parse_duration("52560000m"), Ok(MAX_DURATION));
    }

    #[test]
    fn formats_and_values() {
        assert_eq!(Format::parse("u32"), Ok(Format::Typed(Ty::U32)));
        assert!(Format::parse("u33").unwrap_err().contains("unknown"));
        assert_eq!(Ty::U16.encode("0x1234").unwrap(), 0x1234u16.to_ne_bytes());
        assert_eq!(Ty::I8.encode("-128").unwrap(), [0x80]);
        assert!(Ty::U8.encode("256").is_err());
        assert!(Ty::U8.encode("-1").is_err());
        assert_eq!(Ty::F64.decode(&1.5f64.to_ne_bytes()), "1.5");
        assert_eq!(Ty::I32.decode(&(-7i32).to_ne_bytes()), "-7");
    }

    #[test]
    fn sizes_modes_durations_hex() {
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("0x10"), Ok(16));
        assert!(parse_size("12Q").is_err());
        assert_eq!(parse_mode("640"), Ok(0o640));
        assert!(parse_mode("800").is_err());
        assert!(parse_mode("1777").is_err());
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("x").is_err());
        assert_eq!(parse_hex("de ad:BE ef"), Ok(vec![0xde, 0xad, 0xbe, 0xef]));
        assert!(parse_hex("abc").is_err());
        assert!(hex_dump(0, b"hi\0").starts_with("00000000  68 69 00"));
    }
}
