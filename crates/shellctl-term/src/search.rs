//! Per-line regex search over a job's `output.log`, streamed from disk.
//!
//! This module owns what "a line matches a pattern" means for shellctl, both
//! for a one-off search of a whole log ([`search_log`]) and for a waiter that
//! watches a growing log ([`LineScanner`], [`scan_range`]):
//!
//! - a line is the bytes between two `\n`; the `\n` and one trailing `\r`
//!   are not part of it, so `done$` matches `done\r\n`;
//! - patterns are [`regex::bytes::Regex`] (UTF-8 aware, but a stray invalid
//!   byte cannot make a line unsearchable), compiled by [`compile_pattern`]
//!   with bounded compile sizes so a hostile pattern cannot exhaust memory;
//! - offsets are absolute byte offsets into the log, line numbers count from
//!   wherever the scanner was started (1 for a whole-log search);
//! - a line is reported once, for its leftmost match, no matter how many
//!   pieces it arrived in.
//!
//! Memory is bounded whatever the log holds: bytes are read through a
//! fixed-size buffer, and an unterminated line is held only up to
//! [`MAX_LINE_BYTES`]. Past that, what is held is matched as a *segment* and
//! only its last [`LINE_OVERLAP`] bytes are kept, so a match that straddles
//! the cut is still found in the next segment. The limits of that scheme,
//! for lines longer than [`MAX_LINE_BYTES`] only:
//!
//! - a single match longer than [`LINE_OVERLAP`] that straddles a cut may be
//!   missed (or found later in the line, if a shorter part of it matches);
//! - the reported [`LineMatch::line`] is the held segment, not the whole
//!   line (see [`LineMatch::line_text_offset`]);
//! - a match that runs up to a cut is accepted only if it carries on past
//!   the cut, so an end-of-line assertion (`$`, `\b`) is not fooled by the
//!   cut (a pattern such as `x.?$` can still be, in principle); when it
//!   does not, that segment is searched no further, and later matches are
//!   looked for only in the part kept for the next segment.

use regex::bytes::{Regex, RegexBuilder};
use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::ControlFlow;
use std::path::Path;

/// Longest pattern [`compile_pattern`] accepts, in bytes.
pub const MAX_PATTERN_LEN: usize = 1000;

/// Most bytes of one unterminated line held before it is matched as a
/// segment and cut (64 KiB).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Bytes of a cut line kept for the next segment, so that a match straddling
/// the cut is still found (4 KiB).
pub const LINE_OVERLAP: usize = 4 * 1024;

/// Longest [`LogLine::line`] returned by [`search_log`], in bytes before the
/// `…` that marks a cut.
pub const MAX_RETURNED_LINE: usize = 4096;

/// Bytes read from disk at a time.
const READ_BUFFER: usize = 64 * 1024;

/// Bytes past a cut borrowed to check a match that runs up to the cut; a
/// few characters is all an assertion like `$` or `\b` looks at.
const CUT_LOOKAHEAD: usize = 64;

/// Bytes shown before the match when a [`LogLine`] comes from a line too
/// long to hold whole, so the match itself is in view.
const LONG_LINE_CONTEXT: usize = 256;

/// Compile limits: the regex crate's defaults are 10 MiB for the program
/// and 2 MiB for the lazy DFA cache; a pattern from a client gets less.
const COMPILE_LIMIT: usize = 1024 * 1024;

/// Compiles a client's `pattern` for line matching, refusing patterns longer
/// than [`MAX_PATTERN_LEN`] bytes and programs larger than 1 MiB.
pub fn compile_pattern(pattern: &str) -> Result<Regex, regex::Error> {
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(regex::Error::Syntax(format!(
            "pattern is {} bytes long; at most {MAX_PATTERN_LEN} are allowed",
            pattern.len()
        )));
    }
    RegexBuilder::new(pattern)
        .size_limit(COMPILE_LIMIT)
        .dfa_size_limit(COMPILE_LIMIT)
        .build()
}

/// One matching line found by a [`LineScanner`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineMatch {
    /// Absolute offset of the line's first byte.
    pub line_offset: u64,
    /// The line's number, counted from the scanner's first line number.
    pub line_number: u64,
    /// Absolute offset just after the line's `\n`; for a partial line (see
    /// [`LineScanner::partial_match`]), the end of the data fed so far.
    pub line_end: u64,
    /// Absolute offset of the match's first byte.
    pub match_start: u64,
    /// Absolute offset just after the match.
    pub match_end: u64,
    /// The line's raw bytes, without `\n` and one trailing `\r`. For a line
    /// longer than [`MAX_LINE_BYTES`], only the part held when the match was
    /// found, which starts at [`line_text_offset`](Self::line_text_offset).
    pub line: Vec<u8>,
    /// Absolute offset of `line`'s first byte: `line_offset`, unless the
    /// line was too long to hold whole.
    pub line_text_offset: u64,
    /// The matched text, lossy UTF-8.
    pub text: String,
}

impl LineMatch {
    /// `line` as text, invalid UTF-8 shown as U+FFFD.
    pub fn line_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.line)
    }

    /// Whether `line` is only part of the line's start (the line was longer
    /// than [`MAX_LINE_BYTES`]).
    pub fn is_line_cut(&self) -> bool {
        self.line_text_offset != self.line_offset
    }
}

/// An incremental per-line matcher over a stream of log bytes.
///
/// Feed it the log's bytes in order, in pieces of any size; it reports every
/// complete line that matches, and can say whether the current unterminated
/// line matches so far (a prompt such as `Password: ` has no newline yet).
/// A line that arrives split over many feeds is matched as a whole. Memory
/// is bounded by [`MAX_LINE_BYTES`] plus a little (see the module docs).
#[derive(Debug, Clone)]
pub struct LineScanner {
    regex: Regex,
    /// Absolute offset of the next byte to be fed.
    pos: u64,
    line_offset: u64,
    line_number: u64,
    /// The current line's bytes so far, or for a long line its latest part.
    held: Vec<u8>,
    /// Absolute offset of `held[0]`.
    held_offset: u64,
    /// Where in `held` a match may start: bytes before it are only context
    /// for assertions such as `\b`, left over from the previous segment.
    search_from: usize,
    /// A match found in an earlier segment of the current (long) line,
    /// reported once the line ends; `line_end` is filled in then.
    found: Option<LineMatch>,
}

impl LineScanner {
    /// A scanner whose first fed byte is at absolute offset `start_offset`,
    /// which must be the start of a line, numbered `first_line_number`.
    pub fn new(regex: Regex, start_offset: u64, first_line_number: u64) -> Self {
        Self {
            regex,
            pos: start_offset,
            line_offset: start_offset,
            line_number: first_line_number,
            held: Vec::new(),
            held_offset: start_offset,
            search_from: 0,
            found: None,
        }
    }

    /// Absolute offset of the next byte [`feed`](Self::feed) expects.
    pub fn offset(&self) -> u64 {
        self.pos
    }

    /// The number of the current (not yet terminated) line.
    pub fn line_number(&self) -> u64 {
        self.line_number
    }

    /// Feeds the next `bytes` of the log, which continue exactly where the
    /// previous feed stopped, and calls `on_match` for each complete line
    /// that matches, in order.
    ///
    /// When `on_match` breaks, feeding stops right after that line's `\n`:
    /// the rest of `bytes` is not consumed, and [`offset`](Self::offset)
    /// says where to resume.
    pub fn feed<F>(&mut self, bytes: &[u8], mut on_match: F) -> ControlFlow<()>
    where
        F: FnMut(&LineMatch) -> ControlFlow<()>,
    {
        let mut rest = bytes;
        while !rest.is_empty() {
            let Some(newline) = rest.iter().position(|&b| b == b'\n') else {
                self.hold(rest);
                return ControlFlow::Continue(());
            };
            let body = &rest[..newline];
            rest = &rest[newline + 1..];
            let line_end = self.pos + to_u64(newline) + 1;
            let found = if self.pos == self.line_offset && body.len() <= MAX_LINE_BYTES {
                // The whole line is in this piece: match it where it lies.
                self.pos = line_end;
                self.match_line(body, self.line_offset, 0, line_end)
            } else {
                self.hold(body);
                self.pos = line_end;
                match self.found.take() {
                    Some(mut found) => {
                        found.line_end = line_end;
                        Some(found)
                    }
                    None => self.match_held(line_end),
                }
            };
            self.start_line();
            if found
                .as_ref()
                .is_some_and(|found| on_match(found).is_break())
            {
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }

    /// The match in the current unterminated line, treating the data fed so
    /// far as the whole line (so `$` matches at its end). `None` when no
    /// byte of the line has been fed yet.
    pub fn partial_match(&self) -> Option<LineMatch> {
        if self.pos == self.line_offset {
            return None;
        }
        if let Some(found) = &self.found {
            return Some(LineMatch {
                line_end: self.pos,
                ..found.clone()
            });
        }
        self.match_held(self.pos)
    }

    fn start_line(&mut self) {
        self.line_offset = self.pos;
        self.line_number += 1;
        self.held.clear();
        self.held_offset = self.pos;
        self.search_from = 0;
        self.found = None;
    }

    /// Appends `body` (bytes of the current line, no `\n`) to what is held,
    /// matching and cutting segments whenever the line outgrows the limit.
    fn hold(&mut self, mut body: &[u8]) {
        while !body.is_empty() {
            if self.found.is_some() {
                // The line already matched; the rest need not be looked at.
                self.pos += to_u64(body.len());
                return;
            }
            let room = MAX_LINE_BYTES.saturating_sub(self.held.len());
            if body.len() <= room {
                self.held.extend_from_slice(body);
                self.pos += to_u64(body.len());
                return;
            }
            let (now, later) = body.split_at(room);
            self.held.extend_from_slice(now);
            self.pos += to_u64(room);
            body = later;
            self.cut_segment(&later[..later.len().min(CUT_LOOKAHEAD)]);
        }
    }

    /// Matches the full held buffer as a segment of a longer line, then
    /// keeps only its last [`LINE_OVERLAP`] bytes (plus one character of
    /// context). `lookahead` is the line's next bytes, past the cut.
    fn cut_segment(&mut self, lookahead: &[u8]) {
        let len = self.held.len();
        let keep_from = ceil_char(&self.held, len.saturating_sub(LINE_OVERLAP));
        // A match starting at or after `keep_from` is left for the next
        // segment, which sees it with more of the line after it.
        if let Some(m) = self
            .regex
            .find_at(&self.held, self.search_from)
            .filter(|m| m.start() < keep_from)
        {
            let (start, end) = (m.start(), m.end());
            if end < len {
                self.found = Some(self.segment_match(start, end));
                return;
            }
            // The match runs up to the cut: real only if it carries on past
            // it (`error.*` does; `error$` is fooled by the cut).
            self.held.extend_from_slice(lookahead);
            let extended = self
                .regex
                .find_at(&self.held, start)
                .filter(|m| m.start() == start && m.end() > len)
                .map(|m| m.end());
            if let Some(end) = extended {
                self.found = Some(self.segment_match(start, end));
                return;
            }
            self.held.truncate(len);
        }
        let context = floor_char(&self.held, keep_from.saturating_sub(1));
        self.held.drain(..context);
        self.held_offset += to_u64(context);
        self.search_from = keep_from - context;
    }

    fn segment_match(&self, start: usize, end: usize) -> LineMatch {
        LineMatch {
            line_offset: self.line_offset,
            line_number: self.line_number,
            line_end: self.held_offset + to_u64(self.held.len()),
            match_start: self.held_offset + to_u64(start),
            match_end: self.held_offset + to_u64(end),
            line: self.held.clone(),
            line_text_offset: self.held_offset,
            text: String::from_utf8_lossy(&self.held[start..end]).into_owned(),
        }
    }

    /// Matches the held bytes as the end of the current line.
    fn match_held(&self, line_end: u64) -> Option<LineMatch> {
        self.match_line(&self.held, self.held_offset, self.search_from, line_end)
    }

    /// Matches `bytes`, the current line's text from absolute offset
    /// `bytes_offset` to its end, looking for matches from `search_from`.
    fn match_line(
        &self,
        bytes: &[u8],
        bytes_offset: u64,
        search_from: usize,
        line_end: u64,
    ) -> Option<LineMatch> {
        let line = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let m = self.regex.find_at(line, search_from.min(line.len()))?;
        Some(LineMatch {
            line_offset: self.line_offset,
            line_number: self.line_number,
            line_end,
            match_start: bytes_offset + to_u64(m.start()),
            match_end: bytes_offset + to_u64(m.end()),
            line: line.to_vec(),
            line_text_offset: bytes_offset,
            text: String::from_utf8_lossy(m.as_bytes()).into_owned(),
        })
    }
}

/// The result of [`search_log`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogSearch {
    /// The matching lines, in log order, at most `limit` of them.
    pub matches: Vec<LogLine>,
    /// Whether more matching lines exist past the last one returned.
    pub truncated: bool,
}

/// One matching line returned by [`search_log`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Absolute offset of the line's first byte.
    pub offset: u64,
    /// The line's number, counted from 1.
    pub line_number: u64,
    /// The line without its `\n` (and one trailing `\r`), lossy UTF-8, cut
    /// at a character boundary after at most [`MAX_RETURNED_LINE`] bytes
    /// with `…` appended when cut. For a line longer than
    /// [`MAX_LINE_BYTES`], it shows the match's surroundings instead of the
    /// line's start, with a leading `…`.
    pub line: String,
}

impl LogLine {
    fn from_match(found: &LineMatch) -> Self {
        let mut line = String::new();
        let mut shown = &found.line[..];
        if found.is_line_cut() {
            let at = to_usize(found.match_start - found.line_text_offset);
            shown = &shown[ceil_char(shown, at.saturating_sub(LONG_LINE_CONTEXT))..];
            line.push('…');
        }
        if shown.len() > MAX_RETURNED_LINE {
            line.push_str(&String::from_utf8_lossy(
                &shown[..floor_char(shown, MAX_RETURNED_LINE)],
            ));
            line.push('…');
        } else {
            line.push_str(&String::from_utf8_lossy(shown));
        }
        Self {
            offset: found.line_offset,
            line_number: found.line_number,
            line,
        }
    }
}

/// Searches the whole log at `path` for lines matching `regex`: at most
/// `limit` lines, including a final line without `\n`. Reading stops as
/// soon as a match past the limit shows the result is truncated. A missing
/// log reads as empty.
pub fn search_log(path: &Path, regex: &Regex, limit: usize) -> io::Result<LogSearch> {
    let mut result = LogSearch::default();
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(result),
        Err(err) => return Err(err),
    };
    let mut scanner = LineScanner::new(regex.clone(), 0, 1);
    let mut collect = |found: &LineMatch| {
        if result.matches.len() == limit {
            result.truncated = true;
            return ControlFlow::Break(());
        }
        result.matches.push(LogLine::from_match(found));
        ControlFlow::Continue(())
    };
    let mut buffer = vec![0; READ_BUFFER];
    loop {
        let read = read_some(&mut file, &mut buffer)?;
        if read == 0 {
            break;
        }
        if scanner.feed(&buffer[..read], &mut collect).is_break() {
            return Ok(result);
        }
    }
    if let Some(found) = scanner.partial_match() {
        let _ = collect(&found);
    }
    Ok(result)
}

/// Feeds bytes `[from, to)` of the log at `path` to `scanner` and returns
/// the first complete line that matches; failing that, the current partial
/// line's match ([`LineScanner::partial_match`]).
///
/// `from` must be where the scanner stopped ([`LineScanner::offset`]), so a
/// waiter keeps one scanner and hands it each newly appended range. After a
/// complete-line match the scanner stops just past that line; bytes of the
/// range after it are not consumed. If the log is shorter than `to`, what
/// there is is fed.
pub fn scan_range(
    path: &Path,
    scanner: &mut LineScanner,
    from: u64,
    to: u64,
) -> io::Result<Option<LineMatch>> {
    if from != scanner.offset() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "scan from offset {from}, but the scanner stopped at {}",
                scanner.offset()
            ),
        ));
    }
    if to > from {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(from))?;
        let mut file = file.take(to - from);
        let mut buffer = vec![0; READ_BUFFER];
        let mut first = None;
        loop {
            let read = read_some(&mut file, &mut buffer)?;
            if read == 0 {
                break;
            }
            let flow = scanner.feed(&buffer[..read], |found| {
                first = Some(found.clone());
                ControlFlow::Break(())
            });
            if flow.is_break() {
                return Ok(first);
            }
        }
    }
    Ok(scanner.partial_match())
}

/// Reads into `buffer`, retrying on interruption; 0 means end of data.
pub(crate) fn read_some(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buffer) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

fn is_continuation(byte: u8) -> bool {
    byte & 0b1100_0000 == 0b1000_0000
}

/// The first character boundary at or after `at` (at most three bytes on,
/// so invalid UTF-8 cannot push it far).
pub(crate) fn ceil_char(bytes: &[u8], mut at: usize) -> usize {
    let stop = (at + 3).min(bytes.len());
    while at < stop && is_continuation(bytes[at]) {
        at += 1;
    }
    at.min(bytes.len())
}

/// The last character boundary at or before `at` (at most three bytes
/// back).
pub(crate) fn floor_char(bytes: &[u8], mut at: usize) -> usize {
    at = at.min(bytes.len());
    let stop = at.saturating_sub(3);
    while at > stop && at < bytes.len() && is_continuation(bytes[at]) {
        at -= 1;
    }
    at
}

pub(crate) fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Converts a length known to index an in-memory buffer.
pub(crate) fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanner(pattern: &str) -> LineScanner {
        LineScanner::new(compile_pattern(pattern).unwrap(), 0, 1)
    }

    fn feed_all(scanner: &mut LineScanner, bytes: &[u8]) -> Vec<LineMatch> {
        let mut found = Vec::new();
        let flow = scanner.feed(bytes, |m| {
            found.push(m.clone());
            ControlFlow::Continue(())
        });
        assert!(flow.is_continue());
        found
    }

    #[test]
    fn a_pattern_split_across_two_feeds_matches() {
        let mut s = scanner("password:");
        assert!(feed_all(&mut s, b"ok\nEnter pass").is_empty());
        assert_eq!(s.partial_match(), None);
        assert!(feed_all(&mut s, b"word:").is_empty());
        let partial = s.partial_match().unwrap();
        assert_eq!(partial.line_offset, 3);
        assert_eq!(partial.line_number, 2);
        assert_eq!((partial.match_start, partial.match_end), (9, 18));
        assert_eq!(partial.line_end, 18);
        assert_eq!(partial.line, b"Enter password:");
        assert_eq!(partial.text, "password:");
        let complete = feed_all(&mut s, b" \r\nnext");
        assert_eq!(complete.len(), 1);
        assert_eq!(complete[0].line_end, 21);
        assert_eq!(complete[0].line, b"Enter password: ");
        assert_eq!(s.partial_match(), None);
        assert_eq!(s.offset(), 25);
        assert_eq!(s.line_number(), 3);
    }

    #[test]
    fn complete_and_partial_lines_are_told_apart() {
        let mut s = scanner(r"^\$ $");
        assert!(feed_all(&mut s, b"$ ls\n").is_empty());
        assert!(feed_all(&mut s, b"$ ").is_empty());
        let partial = s.partial_match().unwrap();
        assert_eq!((partial.line_offset, partial.line_end), (5, 7));
        // The line goes on, so `$` no longer holds.
        assert!(feed_all(&mut s, b"make").is_empty());
        assert_eq!(s.partial_match(), None);
        assert!(feed_all(&mut s, b"\n").is_empty());
    }

    #[test]
    fn each_line_is_reported_once_and_a_break_stops_after_it() {
        let mut s = scanner("a");
        let mut seen = Vec::new();
        let flow = s.feed(b"aaa\nb\nxa\nya\n", |m| {
            seen.push(m.line_number);
            if m.line_number == 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert!(flow.is_break());
        assert_eq!(seen, [1, 3]);
        assert_eq!(s.offset(), 9);
        let rest = feed_all(&mut s, b"ya\n");
        assert_eq!(rest[0].line_offset, 9);
        assert_eq!(rest[0].line_number, 4);
    }

    #[test]
    fn a_match_straddling_a_segment_cut_is_found_once() {
        let mut s = scanner("needle");
        let mut line = vec![b'x'; MAX_LINE_BYTES - 3];
        line.extend_from_slice(b"needle");
        line.extend(std::iter::repeat_n(b'y', MAX_LINE_BYTES * 3));
        line.extend_from_slice(b"needle\n");
        let mut found = Vec::new();
        for piece in line.chunks(1000) {
            found.extend(feed_all(&mut s, piece));
            assert!(s.held.len() <= MAX_LINE_BYTES + CUT_LOOKAHEAD);
        }
        assert_eq!(found.len(), 1);
        let m = &found[0];
        assert_eq!(m.line_offset, 0);
        assert_eq!(m.match_start, to_u64(MAX_LINE_BYTES - 3));
        assert_eq!(m.line_end, to_u64(line.len()));
        assert!(m.is_line_cut());
        assert!(m.line.len() <= MAX_LINE_BYTES + CUT_LOOKAHEAD);
    }

    #[test]
    fn a_cut_does_not_look_like_the_end_of_the_line() {
        // `x$` must not match where a segment happens to end in `x`.
        let mut s = scanner("x$");
        let mut line = vec![b'x'; MAX_LINE_BYTES * 2 + 10];
        line.push(b'y');
        assert!(feed_all(&mut s, &line).is_empty());
        assert!(feed_all(&mut s, b"\n").is_empty());
        // A greedy match that runs into the cut is real.
        let mut s = scanner("start.*");
        let mut line = b"start".to_vec();
        line.extend(std::iter::repeat_n(b'z', MAX_LINE_BYTES * 2));
        let found = feed_all(&mut s, &line);
        assert!(found.is_empty());
        let partial = s.partial_match().unwrap();
        assert_eq!(partial.match_start, 0);
        assert!(feed_all(&mut s, b"\n").len() == 1);
    }

    #[test]
    fn anchors_see_the_line_not_the_segment() {
        let mut s = scanner("^y");
        let mut line = vec![b'x'; MAX_LINE_BYTES + 1];
        line.extend(std::iter::repeat_n(b'y', MAX_LINE_BYTES * 2));
        line.push(b'\n');
        assert!(feed_all(&mut s, &line).is_empty());
        assert_eq!(feed_all(&mut s, b"yes\n")[0].line_number, 2);
    }

    #[test]
    fn long_patterns_are_refused() {
        assert!(compile_pattern(&"a".repeat(MAX_PATTERN_LEN)).is_ok());
        assert!(compile_pattern(&"a".repeat(MAX_PATTERN_LEN + 1)).is_err());
        assert!(compile_pattern(r"\w{1000}\w{1000}").is_err());
    }

    #[test]
    fn char_boundaries() {
        let s = "a\u{1F642}b".as_bytes();
        assert_eq!(ceil_char(s, 2), 5);
        assert_eq!(floor_char(s, 2), 1);
        assert_eq!(floor_char(s, 9), 6);
        assert_eq!(ceil_char(s, 9), 6);
    }
}
