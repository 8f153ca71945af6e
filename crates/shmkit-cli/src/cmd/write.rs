//! `shmkit write`: copy bytes into an object: text, a C string, hex bytes, a typed
//! value, or stdin.

use std::io::Read;

use anyhow::{Context, Result};
use clap::Args;

use super::{failed, object, usage};
use crate::report::Usage;
use crate::target;
use crate::value::{parse_hex, parse_usize, Format};

/// Arguments of `shmkit write`.
#[derive(Args, Debug)]
#[command(
    after_help = "Formats: text (the bytes, no NUL), cstring (the bytes and a NUL), \
hex (pairs of hex digits, spaces allowed), raw (DATA or stdin as is), or one of the types \
i8 i16 i32 i64 u8 u16 u32 u64 f32 f64 (decimal or 0x hex, native byte order). Without DATA, \
the bytes come from stdin. \
Four bytes written at a multiple of 4 (such as a u32) also wake the processes that sleep \
on that word in FUTEX_WAIT, so a C program can wait for a script without polling.\n\
Examples:\n  shmkit write id:32769 'hello' --as cstring\n  \
shmkit write key:0x5348 42 --as u32 --offset 64\n  head -c 100 file | shmkit write id:32769"
)]
pub struct WriteArgs {
    /// The object: id:N, key:K, ftok:PATH:PROJ or /NAME.
    object: String,
    /// What to write; read from stdin when absent.
    #[arg(allow_hyphen_values = true)]
    data: Option<String>,
    /// Where to write, in bytes.
    #[arg(short, long, default_value = "0", allow_hyphen_values = true)]
    offset: String,
    /// text, cstring, hex, raw, or a type name.
    #[arg(short = 'a', long = "as", default_value = "text")]
    format: String,
}

/// Runs `shmkit write`.
pub fn run(a: WriteArgs) -> Result<()> {
    let spec = object(&a.object)?;
    let format = usage(Format::parse(&a.format))?;
    let offset = usage(parse_usize(&a.offset))?;
    let data: Vec<u8> = match &a.data {
        Some(d) => d.as_bytes().to_vec(),
        None => {
            let mut v = Vec::new();
            std::io::stdin()
                .read_to_end(&mut v)
                .context("cannot read stdin")?;
            v
        }
    };
    let text = || {
        std::str::from_utf8(&data)
            .map(|s| s.trim_end_matches('\n').to_string())
            .map_err(|_| Usage("the value is not UTF-8 text".into()))
    };
    let bytes = match format {
        Format::Text | Format::Raw => data.clone(),
        Format::CString => {
            if data.contains(&0) {
                return Err(Usage("a C string cannot contain a NUL byte".into()).into());
            }
            let mut v = data.clone();
            v.push(0);
            v
        }
        Format::Hex => usage(parse_hex(&text()?))?,
        Format::Typed(ty) => usage(ty.encode(&text()?))?,
    };
    let region = target::attach(&spec, true).map_err(|e| failed("write", &spec, &e))?;
    region
        .write_at(offset, &bytes)
        .map_err(|e| failed("write", &spec, &e))?;
    // A 4-byte write at an aligned offset may be a futex word: wake whoever sleeps on it
    // (a C program in FUTEX_WAIT, a shmkit primitive) so that it need not poll.
    if bytes.len() == 4 && offset % 4 == 0 {
        let word = region
            .atomic_u32(offset)
            .map_err(|e| failed("write", &spec, &e))?;
        shmkit::sys::futex::wake_all(word);
    }
    Ok(())
}
