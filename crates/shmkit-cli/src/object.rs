//! Parsing the objects users name on the command line.
//!
//! - `id:N`: a System V shared-memory id;
//! - `key:K`: a System V key, decimal (possibly negative, as ipcs prints them) or `0x` hex;
//! - `ftok:PATH:PROJ`: the key ftok(PATH, PROJ) gives, PROJ a single character or a
//!   number 0..=255 (decimal or 0x hex);
//! - `/NAME`: a POSIX shared-memory object in /dev/shm.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// An object named on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectSpec {
    /// `id:N`
    SysvId(i32),
    /// `key:K`
    SysvKey(i32),
    /// `ftok:PATH:PROJ`
    Ftok { path: PathBuf, proj: u8 },
    /// `/NAME` (stored without the slash)
    Posix(String),
}

impl fmt::Display for ObjectSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectSpec::SysvId(id) => write!(f, "id:{id}"),
            ObjectSpec::SysvKey(k) => write!(f, "key:0x{:08x}", *k as u32),
            ObjectSpec::Ftok { path, proj } => write!(f, "ftok:{}:{proj}", path.display()),
            ObjectSpec::Posix(name) => write!(f, "/{name}"),
        }
    }
}

impl FromStr for ObjectSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(name) = s.strip_prefix('/') {
            if name.is_empty() {
                return Err("'/' names no POSIX object: give /NAME".into());
            }
            if name.contains('/') {
                return Err(format!(
                    "'{s}': a POSIX object name cannot contain a second '/'"
                ));
            }
            if name.len() > 255 {
                return Err(format!("'{s}': a POSIX object name is at most 255 bytes"));
            }
            return Ok(ObjectSpec::Posix(name.to_string()));
        }
        if let Some(n) = s.strip_prefix("id:") {
            let id = n.parse::<i32>().ok().filter(|id| *id >= 0);
            return id.map(ObjectSpec::SysvId).ok_or_else(|| {
                format!("'{s}': an id is a non-negative decimal number, such as id:32769")
            });
        }
        if let Some(k) = s.strip_prefix("key:") {
            return parse_key(k).map(ObjectSpec::SysvKey).ok_or_else(|| {
                format!(
                    "'{s}': a key is a 32-bit number, decimal or 0x hex, such as key:0x4100c4a7"
                )
            });
        }
        if let Some(rest) = s.strip_prefix("ftok:") {
            let (path, proj) = rest
                .rsplit_once(':')
                .ok_or_else(|| format!("'{s}': write ftok:PATH:PROJ, such as ftok:/tmp:A"))?;
            if path.is_empty() {
                return Err(format!("'{s}': the ftok path is empty"));
            }
            let proj = parse_proj(proj).ok_or_else(|| {
                format!("'{s}': PROJ is one character or a number from 0 to 255, such as A or 65")
            })?;
            return Ok(ObjectSpec::Ftok {
                path: PathBuf::from(path),
                proj,
            });
        }
        Err(format!(
            "'{s}': name an object as id:N, key:K, ftok:PATH:PROJ or /NAME"
        ))
    }
}

/// A key as decimal (ipcs prints negative ones) or 0x hex, in 32 bits.
pub fn parse_key(k: &str) -> Option<i32> {
    if let Some(hex) = k.strip_prefix("0x").or_else(|| k.strip_prefix("0X")) {
        return u32::from_str_radix(hex, 16).ok().map(|v| v as i32);
    }
    if let Ok(v) = k.parse::<i32>() {
        return Some(v);
    }
    k.parse::<u32>().ok().map(|v| v as i32)
}

fn parse_proj(p: &str) -> Option<u8> {
    let mut chars = p.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if !c.is_ascii_digit() => u8::try_from(c as u32).ok(),
        _ => {
            if let Some(hex) = p.strip_prefix("0x") {
                u8::from_str_radix(hex, 16).ok()
            } else {
                p.parse::<u8>().ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!("id:5".parse(), Ok(ObjectSpec::SysvId(5)));
        assert_eq!(
            "key:0x4100c4a7".parse(),
            Ok(ObjectSpec::SysvKey(0x4100c4a7u32 as i32))
        );
        assert_eq!("key:-1".parse(), Ok(ObjectSpec::SysvKey(-1)));
        assert_eq!("key:4294967295".parse(), Ok(ObjectSpec::SysvKey(-1)));
        assert_eq!("key:42".parse(), Ok(ObjectSpec::SysvKey(42)));
        assert_eq!(
            "ftok:/tmp:A".parse(),
            Ok(ObjectSpec::Ftok {
                path: "/tmp".into(),
                proj: b'A'
            })
        );
        assert_eq!(
            "ftok:/a:b:7".parse(),
            Ok(ObjectSpec::Ftok {
                path: "/a:b".into(),
                proj: 7
            })
        );
        assert_eq!(
            "ftok:/tmp:0x41".parse(),
            Ok(ObjectSpec::Ftok {
                path: "/tmp".into(),
                proj: 0x41
            })
        );
        assert_eq!("/psm_1".parse(), Ok(ObjectSpec::Posix("psm_1".into())));
    }

    #[test]
    fn rejects_malformed_with_reasons() {
        for bad in [
            "",
            "5",
            "id:",
            "id:-3",
            "id:x",
            "key:0xZZ",
            "key:",
            "ftok:/tmp",
            "ftok::A",
            "ftok:/tmp:256",
            "ftok:/tmp:AB",
            "/",
            "/a/b",
            "sem:3",
        ] {
            let e = bad.parse::<ObjectSpec>().unwrap_err();
            assert!(e.contains('\''), "{bad}: {e}");
        }
        let long = format!("/{}", "x".repeat(256));
        assert!(long.parse::<ObjectSpec>().is_err());
    }

    #[test]
    fn displays_round_trip() {
        for s in ["id:5", "key:0x4100c4a7", "/psm_1"] {
            assert_eq!(s.parse::<ObjectSpec>().unwrap().to_string(), s);
        }
    }
}
