//! Messages from standard input, as `shmkit send` and `shmkit call` take them: one per
//! line (the newline dropped), or one per frame (a 4-byte little-endian length, then
//! the bytes) with `--frames`.

use std::io::{BufRead, ErrorKind};

/// Reads the next message, number `index` (counted from 1, for errors), into `buf`:
/// `Ok(false)` at the end of the input, `Err` with the reason for a read error, a frame
/// cut short or a message over `max` bytes.
pub fn next(
    input: &mut impl BufRead,
    frames: bool,
    max: usize,
    index: u64,
    buf: &mut Vec<u8>,
) -> Result<bool, String> {
    buf.clear();
    if frames {
        let mut len = [0u8; 4];
        match input.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(false),
            Err(e) => return Err(format!("reading standard input: {e}")),
        }
        let len = u32::from_le_bytes(len) as usize;
        if len > max {
            return Err(format!(
                "frame {index} is {len} bytes, the channel's limit is {max}"
            ));
        }
        buf.resize(len, 0);
        input
            .read_exact(buf)
            .map_err(|e| format!("frame {index} is cut short: {e}"))?;
    } else {
        let got = input
            .read_until(b'\n', buf)
            .map_err(|e| format!("reading standard input: {e}"))?;
        if got == 0 {
            return Ok(false);
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        if buf.len() > max {
            return Err(format!(
                "line {index} is {} bytes, the channel's limit is {max}",
                buf.len()
            ));
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_frames_and_their_errors() {
        let mut buf = Vec::new();
        let mut lines = &b"one\ntwo\nthree"[..];
        let mut got = Vec::new();
        while next(&mut lines, false, 8, got.len() as u64 + 1, &mut buf).unwrap() {
            got.push(String::from_utf8(buf.clone()).unwrap());
        }
        assert_eq!(got, ["one", "two", "three"]);
        assert_eq!(
            next(&mut &b"too long\n"[..], false, 3, 7, &mut buf),
            Err("line 7 is 8 bytes, the channel's limit is 3".into())
        );
        let mut frames = &[2, 0, 0, 0, b'h', b'i', 0, 0, 0, 0][..];
        assert_eq!(next(&mut frames, true, 8, 1, &mut buf), Ok(true));
        assert_eq!(buf, b"hi");
        assert_eq!(next(&mut frames, true, 8, 2, &mut buf), Ok(true));
        assert!(buf.is_empty());
        assert_eq!(next(&mut frames, true, 8, 3, &mut buf), Ok(false));
        let cut = next(&mut &[5, 0, 0, 0, b'x'][..], true, 8, 4, &mut buf).unwrap_err();
        assert!(cut.starts_with("frame 4 is cut short"), "{cut}");
        assert_eq!(
            next(&mut &[9, 0, 0, 0][..], true, 8, 5, &mut buf),
            Err("frame 5 is 9 bytes, the channel's limit is 8".into())
        );
    }
}
