//! UTF-8-safe windows over a job's `output.log`.
//!
//! A *forward window* reads at most `limit` bytes from a byte offset; a *tail
//! window* reads the last `limit` bytes. Both cut at character boundaries, so
//! the text is always valid UTF-8 and the returned offset always lies on a
//! character boundary, with the reference's edge rules:
//!
//! - continuation bytes at the start of the window (an offset inside a
//!   character) are skipped;
//! - when the first character is wider than the limit, that one character is
//!   returned whole, so a reader always makes progress;
//! - `truncated` says more bytes already exist past the returned offset;
//! - a forward offset past the end of the log is an error.
//!
//! The log is written by our sanitizer and so is valid UTF-8. Should it hold
//! invalid bytes anyway, each invalid sequence reads as U+FFFD and is
//! consumed, so a reader never stalls on it (the reference returns an empty
//! window forever there).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// Longest UTF-8 encoding of one character.
const MAX_CHAR_BYTES: usize = 4;

/// A UTF-8-safe slice of an output log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputWindow {
    /// The text, valid UTF-8.
    pub output: String,
    /// Byte offset in the log just after `output`.
    pub offset: u64,
    /// Whether the log already holds bytes past `offset`.
    pub truncated: bool,
}

/// Why a window could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    /// The offset lies past the end of the log.
    #[error("offset {offset} exceeds current output size {size}")]
    OffsetPastEnd {
        /// The requested offset.
        offset: u64,
        /// The log's size.
        size: u64,
    },
    /// The limit was zero.
    #[error("output limit must be at least 1 byte")]
    ZeroLimit,
    /// Reading the log failed.
    #[error("reading output log: {0}")]
    Io(#[from] io::Error),
}

/// Reads at most `limit` bytes of `path` from `offset`. A missing log reads
/// as empty.
pub fn read_window(path: &Path, offset: u64, limit: usize) -> Result<OutputWindow, WindowError> {
    if limit == 0 {
        return Err(WindowError::ZeroLimit);
    }
    let Some(mut file) = open_if_exists(path)? else {
        return forward_window(&[], offset, 0, limit);
    };
    let size = file.metadata()?.len();
    if offset > size {
        return Err(WindowError::OffsetPastEnd { offset, size });
    }
    let wanted = (size - offset).min((limit + MAX_CHAR_BYTES) as u64);
    file.seek(SeekFrom::Start(offset))?;
    let raw = read_up_to(&mut file, wanted)?;
    forward_window(&raw, offset, size, limit)
}

/// [`read_window`] from a log already open, with positional reads: the
/// file's cursor is untouched, and a reader that holds the file (a stream)
/// reads it even after its path was unlinked.
pub fn read_window_at(file: &File, offset: u64, limit: usize) -> Result<OutputWindow, WindowError> {
    use std::os::unix::fs::FileExt;
    if limit == 0 {
        return Err(WindowError::ZeroLimit);
    }
    let size = file.metadata()?.len();
    if offset > size {
        return Err(WindowError::OffsetPastEnd { offset, size });
    }
    let wanted = (size - offset).min((limit + MAX_CHAR_BYTES) as u64);
    let mut raw = vec![0; usize::try_from(wanted).unwrap_or(0)];
    let mut filled = 0;
    while filled < raw.len() {
        match file.read_at(&mut raw[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err.into()),
        }
    }
    raw.truncate(filled);
    forward_window(&raw, offset, size, limit)
}

/// Reads the last `limit` bytes of `path` (fewer if that cuts a character).
/// `truncated` is always false. A missing log reads as empty.
pub fn tail_window(path: &Path, limit: usize) -> Result<OutputWindow, WindowError> {
    if limit == 0 {
        return Err(WindowError::ZeroLimit);
    }
    let Some(mut file) = open_if_exists(path)? else {
        return Ok(tail_window_of(&[], 0));
    };
    let size = file.metadata()?.len();
    let start = size.saturating_sub(limit as u64);
    file.seek(SeekFrom::Start(start))?;
    let raw = read_up_to(&mut file, size - start)?;
    Ok(tail_window_of(&raw, start))
}

/// The forward window over `raw`, the log's bytes from `offset` on (at least
/// `limit + 4` of them, or all up to `size`).
pub fn forward_window(
    raw: &[u8],
    offset: u64,
    size: u64,
    limit: usize,
) -> Result<OutputWindow, WindowError> {
    if limit == 0 {
        return Err(WindowError::ZeroLimit);
    }
    if offset > size {
        return Err(WindowError::OffsetPastEnd { offset, size });
    }
    let skip = leading_continuations(raw);
    let data = &raw[skip..];
    let budget = limit.saturating_sub(skip).min(data.len());
    let (mut output, mut consumed) = decode_prefix(&data[..budget]);
    if consumed == 0 && !data.is_empty() {
        // The first character is wider than what is left of the limit.
        (output, consumed) = first_char(data);
    }
    let new_offset = offset + (skip + consumed) as u64;
    Ok(OutputWindow {
        output,
        offset: new_offset,
        truncated: new_offset < size,
    })
}

/// The tail window over `raw`, the log's bytes from `start` to its end.
pub fn tail_window_of(raw: &[u8], start: u64) -> OutputWindow {
    let skip = leading_continuations(raw);
    let (output, consumed) = decode_prefix(&raw[skip..]);
    OutputWindow {
        output,
        offset: start + (skip + consumed) as u64,
        truncated: false,
    }
}

fn open_if_exists(path: &Path) -> io::Result<Option<File>> {
    match File::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

fn read_up_to(file: &mut File, len: u64) -> io::Result<Vec<u8>> {
    let mut raw = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(len).read_to_end(&mut raw)?;
    Ok(raw)
}

fn leading_continuations(raw: &[u8]) -> usize {
    raw.iter()
        .take(MAX_CHAR_BYTES - 1)
        .take_while(|b| (**b & 0b1100_0000) == 0b1000_0000)
        .count()
}

/// The first character of `data` and its length: a whole character, or
/// U+FFFD for an invalid sequence (judged with the bytes that follow it),
/// or nothing for a character cut off by the end of `data`.
fn first_char(data: &[u8]) -> (String, usize) {
    let head = &data[..data.len().min(MAX_CHAR_BYTES)];
    let valid = match std::str::from_utf8(head) {
        Ok(text) => text,
        Err(err) if err.valid_up_to() > 0 => {
            std::str::from_utf8(&head[..err.valid_up_to()]).unwrap_or_default()
        }
        Err(err) => {
            return match err.error_len() {
                Some(len) => ('\u{FFFD}'.to_string(), len),
                None => (String::new(), 0),
            };
        }
    };
    valid
        .chars()
        .next()
        .map_or((String::new(), 0), |c| (c.to_string(), c.len_utf8()))
}

/// Decodes as much of `data` as forms whole characters, invalid sequences as
/// U+FFFD; stops before a character cut off at the end. Returns the text and
/// the bytes consumed.
fn decode_prefix(data: &[u8]) -> (String, usize) {
    let mut text = String::new();
    let mut rest = data;
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                text.push_str(valid);
                return (text, data.len());
            }
            Err(err) => {
                let (valid, after) = rest.split_at(err.valid_up_to());
                text.push_str(std::str::from_utf8(valid).unwrap_or_default());
                match err.error_len() {
                    Some(bad) => {
                        text.push('\u{FFFD}');
                        rest = &after[bad..];
                    }
                    None => return (text, data.len() - after.len()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMILE: &str = "\u{1F642}";

    fn fwd(content: &str, offset: u64, limit: usize) -> OutputWindow {
        let bytes = content.as_bytes();
        let raw = &bytes[usize::try_from(offset).unwrap().min(bytes.len())..];
        forward_window(raw, offset, bytes.len() as u64, limit).unwrap()
    }

    fn win(output: &str, offset: u64, truncated: bool) -> OutputWindow {
        OutputWindow {
            output: output.to_owned(),
            offset,
            truncated,
        }
    }

    #[test]
    fn forward_cuts_before_a_character_that_does_not_fit() {
        let text = format!("A{SMILE}B");
        assert_eq!(fwd(&text, 0, 3), win("A", 1, true));
        assert_eq!(fwd(&text, 0, 4), win("A", 1, true));
        assert_eq!(fwd(&text, 0, 5), win(&format!("A{SMILE}"), 5, true));
        assert_eq!(fwd(&text, 0, 8), win(&text, 6, false));
    }

    #[test]
    fn forward_returns_a_wide_first_character_whole() {
        let text = format!("{SMILE}B");
        let first = fwd(&text, 0, 1);
        assert_eq!(first, win(SMILE, 4, true));
        assert_eq!(fwd(&text, first.offset, 1), win("B", 5, false));
    }

    #[test]
    fn forward_skips_leading_continuation_bytes() {
        let text = format!("A{SMILE}B");
        assert_eq!(fwd(&text, 2, 8), win("B", 6, false));
        assert_eq!(fwd(&text, 2, 1), win("B", 6, false));
    }

    #[test]
    fn forward_at_end_is_empty_and_past_end_is_an_error() {
        assert_eq!(fwd("abc", 3, 10), win("", 3, false));
        assert!(matches!(
            forward_window(b"", 4, 3, 10),
            Err(WindowError::OffsetPastEnd { offset: 4, size: 3 })
        ));
        assert!(matches!(
            forward_window(b"a", 0, 1, 0),
            Err(WindowError::ZeroLimit)
        ));
    }

    #[test]
    fn tail_skips_a_cut_character() {
        let text = format!("a{SMILE}b");
        let bytes = text.as_bytes();
        assert_eq!(tail_window_of(&bytes[3..], 3), win("b", 6, false));
        assert_eq!(
            tail_window_of(&bytes[1..], 1),
            win(&format!("{SMILE}b"), 6, false)
        );
        assert_eq!(tail_window_of(b"", 0), win("", 0, false));
    }

    #[test]
    fn invalid_bytes_in_a_log_are_replaced_and_consumed() {
        let raw = b"\xffab";
        let w = forward_window(raw, 0, 3, 1).unwrap();
        assert_eq!(w, win("\u{FFFD}", 1, true));
        let w = forward_window(b"a\xffb", 0, 3, 8).unwrap();
        assert_eq!(w, win("a\u{FFFD}b", 3, false));
    }

    #[test]
    fn an_invalid_lead_byte_wider_than_the_limit_is_consumed() {
        // Found by fuzzing: 0xC2 followed by a byte that cannot continue it,
        // read with limit 1, used to return an empty window forever.
        let raw = b"\xc2\x00\x00";
        assert_eq!(
            forward_window(raw, 0, 3, 1).unwrap(),
            win("\u{FFFD}", 1, true)
        );
    }

    #[test]
    fn a_character_cut_by_the_end_of_the_log_is_left_for_later() {
        // A writer may be mid-way through appending a character.
        let w = forward_window(b"a\xf0\x9f", 0, 3, 8).unwrap();
        assert_eq!(w, win("a", 1, true));
        let w = forward_window(b"\xf0\x9f", 0, 2, 8).unwrap();
        assert_eq!(w, win("", 0, true));
    }

    #[test]
    fn files_are_read_with_the_same_rules() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("output.log");
        assert_eq!(read_window(&path, 0, 10).unwrap(), win("", 0, false));
        assert!(read_window(&path, 1, 10).is_err());
        assert_eq!(tail_window(&path, 3).unwrap(), win("", 0, false));
        std::fs::write(&path, format!("a{SMILE}b")).unwrap();
        assert_eq!(tail_window(&path, 3).unwrap(), win("b", 6, false));
        assert_eq!(
            tail_window(&path, 100).unwrap().output,
            format!("a{SMILE}b")
        );
        assert_eq!(read_window(&path, 0, 3).unwrap(), win("a", 1, true));
        assert_eq!(read_window(&path, 1, 1).unwrap(), win(SMILE, 5, true));
        assert!(matches!(
            read_window(&path, 7, 3),
            Err(WindowError::OffsetPastEnd { offset: 7, size: 6 })
        ));
    }
}
