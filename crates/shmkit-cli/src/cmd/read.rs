//! `shmkit read`: copy bytes out of an object and show them as text, raw bytes, a hex
//! dump or typed values.

use std::io::Write;

use anyhow::Result;
use clap::Args;

use super::{failed, Window};
use crate::report::Usage;
use crate::target;
use crate::value::{hex_dump, Format};

/// Arguments of `shmkit read`.
#[derive(Args, Debug)]
#[command(
    after_help = "Formats: text (up to the first NUL, then a newline), raw (the bytes \
as they are), hex (a dump), or one of the types i8 i16 i32 i64 u8 u16 u32 u64 f32 f64 \
(native byte order; with --length, one value per line).\n\
Examples:\n  shmkit read id:32769\n  shmkit read key:0x5348 --offset 64 --as u32\n  \
shmkit read ftok:/tmp:A --as hex --length 32"
)]
pub struct ReadArgs {
    /// The object: id:N, key:K, ftok:PATH:PROJ or /NAME.
    object: String,
    /// Where to start, in bytes.
    #[arg(short, long, default_value = "0", allow_hyphen_values = true)]
    offset: String,
    /// How many bytes (default: to the end, or one value for a type).
    #[arg(short, long, allow_hyphen_values = true)]
    length: Option<String>,
    /// text, raw, hex, or a type name.
    #[arg(short = 'a', long = "as", default_value = "text")]
    format: String,
}

/// Runs `shmkit read`.
pub fn run(a: ReadArgs) -> Result<()> {
    let Window {
        spec,
        format,
        offset,
        length,
    } = Window::parse(&a.object, &a.format, &a.offset, a.length.as_deref())?;
    if format == Format::CString {
        return Err(Usage("cstring is a format for writing; read it as text".into()).into());
    }
    if let (Format::Typed(ty), Some(l)) = (format, length) {
        if l % ty.size() != 0 {
            return Err(Usage(format!(
                "--length {l} is not a multiple of the size of {ty} ({} bytes)",
                ty.size()
            ))
            .into());
        }
    }
    let region = target::attach(&spec, false).map_err(|e| failed("read", &spec, &e))?;
    let len = match (format, length) {
        (Format::Typed(ty), None) => ty.size(),
        (_, Some(l)) => l,
        (_, None) => region.len().saturating_sub(offset),
    };
    let bytes = region
        .read_vec(offset, len)
        .map_err(|e| failed("read", &spec, &e))?;
    let mut out = std::io::stdout().lock();
    match format {
        Format::Text | Format::CString => {
            let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
            out.write_all(&bytes[..end])?;
            out.write_all(b"\n")?;
        }
        Format::Raw => out.write_all(&bytes)?,
        Format::Hex => out.write_all(hex_dump(offset, &bytes).as_bytes())?,
        Format::Typed(ty) => {
            for chunk in bytes.chunks(ty.size()) {
                writeln!(out, "{}", ty.decode(chunk))?;
            }
        }
    }
    out.flush()?;
    Ok(())
}
