//! `shmkit wait`: block until the bytes or the typed value at an offset change, or
//! equal a given value, with a timeout, so that shell scripts can take part in a
//! handshake through a segment without sleeping blindly.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;

use super::{failed, usage, Window};
use crate::report::{self, Usage};
use crate::target;
use crate::value::{hex_dump, parse_duration, parse_hex, Format};

/// How often the bytes are compared: a plain segment has no wake-up mechanism.
const POLL_INTERVAL: Duration = Duration::from_millis(1);
/// The most bytes compared when the length is not given.
const DEFAULT_MAX_LEN: usize = 64 * 1024;

/// Arguments of `shmkit wait`.
#[derive(Args, Debug)]
#[command(
    after_help = "A plain segment has no wake-up mechanism, so wait copies the bytes \
every millisecond and compares them; it stops when they differ from what it first saw \
(or, with --from, from VALUE), or, with --equals, when they equal VALUE. A script that \
must not miss a change made before wait starts reads the value first and passes it to \
--from. It prints the final value and exits 0, or exits \
1 with a message when the timeout passes.\n\
Examples:\n  shmkit wait id:32769 --as u32 --offset 64 --equals 1 --timeout 10s\n  \
shmkit wait key:0x5348 --as text --length 5 --equals hello"
)]
pub struct WaitArgs {
    /// The object: id:N, key:K, ftok:PATH:PROJ or /NAME.
    object: String,
    /// Where the watched bytes start.
    #[arg(short, long, default_value = "0", allow_hyphen_values = true)]
    offset: String,
    /// text, cstring, hex, raw, or a type name (the size of the watched bytes for a type).
    #[arg(short = 'a', long = "as", default_value = "u32")]
    format: String,
    /// Number of bytes watched for text, raw and hex (default: the length of VALUE, or
    /// to the end of the object, at most 64 KiB).
    #[arg(short, long, allow_hyphen_values = true)]
    length: Option<String>,
    /// Wait until the bytes equal this value instead of until they change.
    #[arg(short, long, value_name = "VALUE", allow_hyphen_values = true)]
    equals: Option<String>,
    /// Wait until the bytes differ from this value (default: from what wait first reads,
    /// which misses a change made before wait started).
    #[arg(
        short,
        long,
        value_name = "VALUE",
        allow_hyphen_values = true,
        conflicts_with = "equals"
    )]
    from: Option<String>,
    /// Give up after this long: 500ms, 5s, 2m.
    #[arg(short, long, default_value = "60s")]
    timeout: String,
}

/// Runs `shmkit wait`.
pub fn run(a: WaitArgs) -> Result<()> {
    let Window {
        spec,
        format,
        offset,
        length,
    } = Window::parse(&a.object, &a.format, &a.offset, a.length.as_deref())?;
    let timeout = usage(parse_duration(&a.timeout))?;
    let encode = |v: &str| -> Result<Vec<u8>> {
        Ok(match format {
            Format::Text | Format::Raw => v.as_bytes().to_vec(),
            Format::CString => {
                let mut b = v.as_bytes().to_vec();
                b.push(0);
                b
            }
            Format::Hex => usage(parse_hex(v))?,
            Format::Typed(ty) => usage(ty.encode(v))?,
        })
    };
    let target_bytes = a.equals.as_deref().map(encode).transpose()?;
    let from_bytes = a.from.as_deref().map(encode).transpose()?;
    if let (Some(t), Some(l)) = (target_bytes.as_ref().or(from_bytes.as_ref()), length) {
        if l != t.len() && !matches!(format, Format::Typed(_)) {
            return Err(Usage(format!(
                "--length {l} differs from the length of the value ({} bytes)",
                t.len()
            ))
            .into());
        }
    }
    let region = target::attach(&spec, false).map_err(|e| failed("wait", &spec, &e))?;
    let len = match (format, &target_bytes, length) {
        (Format::Typed(ty), _, _) => ty.size(),
        (_, Some(t), None) => t.len(),
        (_, None, None) if from_bytes.is_some() => from_bytes.as_ref().map_or(0, Vec::len),
        (_, _, Some(l)) => l,
        (_, None, None) => region.len().saturating_sub(offset).min(DEFAULT_MAX_LEN),
    };
    let read = || {
        region
            .read_vec(offset, len)
            .map_err(|e| failed("wait", &spec, &e))
    };
    let first = match from_bytes {
        Some(f) => f,
        None => read()?,
    };
    let done = |now: &[u8]| match &target_bytes {
        Some(t) => now == t.as_slice(),
        None => now != first.as_slice(),
    };
    let deadline = Instant::now() + timeout;
    let mut now = read()?;
    loop {
        if done(&now) {
            let mut out = std::io::stdout().lock();
            out.write_all(show(format, offset, &now).as_bytes())?;
            out.flush()?;
            return Ok(());
        }
        if Instant::now() >= deadline {
            let what = match &a.equals {
                Some(v) => format!("to equal {v}"),
                None => "to change".into(),
            };
            report::error(
                "wait",
                format!(
                    "{spec}: timed out after {timeout:?} waiting for the {} at offset {offset} \
                     {what}; it is {}",
                    describe(format, len),
                    show(format, offset, &now).trim_end()
                ),
            );
            return Err(report::Reported.into());
        }
        std::thread::sleep(POLL_INTERVAL);
        now = read()?;
    }
}

fn describe(format: Format, len: usize) -> String {
    match format {
        Format::Typed(ty) => format!("{ty} value"),
        _ => format!("{len} bytes"),
    }
}

fn show(format: Format, offset: usize, bytes: &[u8]) -> String {
    match format {
        Format::Typed(ty) => format!("{}\n", ty.decode(bytes)),
        Format::Hex | Format::Raw => hex_dump(offset, bytes),
        Format::Text | Format::CString => {
            let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
            format!("{}\n", String::from_utf8_lossy(&bytes[..end]))
        }
    }
}
