//! Digests: a range of a job's `output.log` rendered for a model within a
//! byte budget.
//!
//! This module owns which parts of a long output a reader with a byte
//! budget gets to see: the start, the end, and the error lines in between,
//! with every left-out stretch accounted for.
//!
//! # Format
//!
//! The digest of bytes `[start, end)` with a budget of `max_bytes` (at least
//! [`MIN_DIGEST_BYTES`]) is:
//!
//! - if the range's text (lossy UTF-8) fits in `max_bytes`, that text,
//!   verbatim;
//! - otherwise, in order:
//!   1. the **head**: whole lines from the start of the range, as many as
//!      fit in a quarter of the budget;
//!   2. **kept middle lines**: lines from the left-out middle that match an
//!      error pattern ([`ERROR_PATTERNS`], case-insensitive), each written as
//!      `[offset 28,000] <line>`, where the offset is the absolute offset of
//!      the first byte shown. A line is shown up to [`MAX_KEPT_LINE`] bytes
//!      (less when a quarter of the budget could not hold that much with
//!      its marker; no middle lines at all below [`MIN_KEPT_LINE`] bytes),
//!      cut at a character boundary, without its `\n` and one trailing `\r`
//!      (a line whose match lies further in is shown from a little before
//!      the match). They share up to a quarter of the budget, counting one
//!      marker per kept line; when more lines match than fit, the first ones (half
//!      the share) and the last ones (the rest) are kept;
//!   3. the **tail**: whole lines ending at the end of the range, with all
//!      the budget the other parts leave, at least half of it. If the last
//!      line alone does not fit, its end is kept, from a character
//!      boundary; the end of the range is always in the digest.
//!
//! Head and tail lines are verbatim (lossy UTF-8, `\r` kept). Every stretch
//! of the range left out is one marker line, between the parts it separates:
//!
//! ```text
//! … 48,213 bytes (1,020 lines) omitted, offsets 8,000–56,213 …
//! ```
//!
//! with U+2026 ellipses, commas between thousands, a U+2013 en dash, and
//! `1 byte` / `1 line` in the singular. The offsets are absolute: the
//! stretch's first byte, and the first byte after it. The line count counts
//! lines left out entirely; a line partly shown (a cut kept line, a cut last
//! line) is not counted, and its left-out part belongs to the marker next to
//! it, which then starts or ends mid-line. Lines are counted from `start`,
//! which is taken as the start of a line.
//!
//! Guarantees: `text.len() <= max_bytes` (bytes, markers included); the text
//! ends with the range's last bytes; the shown parts and the marked stretches
//! cover the range exactly once; [`Digest::omitted_bytes`] and
//! [`Digest::omitted_lines`] are the sums of the markers' counts. When
//! markers are long for the budget (a small budget over a huge log), the
//! head and middle shrink first so the tail keeps half the budget (less
//! only if one marker takes more than half of it).
//!
//! The range is streamed once in O(`max_bytes`) memory, whatever its size:
//! a head buffer, a ring of the latest lines for the tail, and bounded lists
//! of the first and last error lines.

use crate::search::{
    LineMatch, LineScanner, ceil_char, compile_pattern, floor_char, read_some, to_u64, to_usize,
};
use regex::bytes::Regex;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::LazyLock;

/// Smallest budget a digest can be asked for: below it, markers would leave
/// too little room for the output itself.
pub const MIN_DIGEST_BYTES: usize = 256;

/// What makes a line from the middle worth keeping, matched
/// case-insensitively anywhere in the line.
pub const ERROR_PATTERNS: &[&str] = &["error", "failed", "panic", "Traceback"];

/// Most bytes of one kept middle line shown.
pub const MAX_KEPT_LINE: usize = 300;

/// Fewest bytes of a kept middle line worth showing: when the budget
/// leaves less room than this, no middle lines are kept.
pub const MIN_KEPT_LINE: usize = 40;

/// Bytes read at a time.
const READ_BUFFER: usize = 64 * 1024;

static ERROR_REGEX: LazyLock<Result<Regex, regex::Error>> = LazyLock::new(|| {
    let alternatives: Vec<String> = ERROR_PATTERNS.iter().map(|p| regex::escape(p)).collect();
    compile_pattern(&format!("(?i){}", alternatives.join("|")))
});

/// A range of output rendered within a byte budget (see the module docs for
/// the format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    /// The digest, at most the budget's bytes.
    pub text: String,
    /// Absolute offset where the digested range ends: the requested end,
    /// or where the data ran out.
    pub end_offset: u64,
    /// Bytes of the range left out (the sum over the markers).
    pub omitted_bytes: u64,
    /// Lines of the range left out entirely (the sum over the markers).
    pub omitted_lines: u64,
}

/// Digests bytes `[start, end)` of the log at `path` within `max_bytes`.
/// `end` defaults to, and is clamped to, the log's size when opened. A
/// missing log reads as empty.
pub fn digest_file(
    path: &Path,
    start: u64,
    end: Option<u64>,
    max_bytes: usize,
) -> io::Result<Digest> {
    let (mut file, size) = match File::open(path) {
        Ok(file) => {
            let size = file.metadata()?.len();
            (Some(file), size)
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => (None, 0),
        Err(err) => return Err(err),
    };
    let end = end.map_or(size, |end| end.min(size));
    check_request(start, end, max_bytes)?;
    match &mut file {
        Some(file) => {
            file.seek(SeekFrom::Start(start))?;
            digest_reader(file, start, end, max_bytes)
        }
        None => digest_reader(io::empty(), start, end, max_bytes),
    }
}

/// Digests the bytes `reader` yields as the range `[start, end)` of a log,
/// within `max_bytes`: at most `end - start` bytes are read, and the range
/// ends early if the reader does.
pub fn digest_reader(
    mut reader: impl Read,
    start: u64,
    end: u64,
    max_bytes: usize,
) -> io::Result<Digest> {
    check_request(start, end, max_bytes)?;
    let errors = ERROR_REGEX
        .as_ref()
        .map_err(|err| io::Error::other(err.clone()))?
        .clone();
    let mut digester = Digester::new(errors, start, end, max_bytes);
    let mut reader = reader.by_ref().take(end - start);
    let mut buffer = vec![0; READ_BUFFER];
    loop {
        let read = read_some(&mut reader, &mut buffer)?;
        if read == 0 {
            break;
        }
        digester.feed(&buffer[..read]);
    }
    Ok(digester.finish())
}

fn check_request(start: u64, end: u64, max_bytes: usize) -> io::Result<()> {
    if max_bytes < MIN_DIGEST_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("digest budget {max_bytes} is below the minimum of {MIN_DIGEST_BYTES} bytes"),
        ));
    }
    if start > end {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("digest start {start} is past its end {end}"),
        ));
    }
    Ok(())
}

/// One line of the range, as held for the head or the tail.
#[derive(Debug)]
struct Line {
    /// Absolute offset of the line's first byte.
    offset: u64,
    /// Absolute offset just after it (after its `\n`, if it has one).
    end: u64,
    /// Its index, from 0 at the range's start.
    index: u64,
    /// The line with its `\n`, or for a long line its last bytes.
    bytes: Vec<u8>,
    /// Absolute offset of `bytes[0]`.
    from: u64,
    /// Length of `bytes` as lossy UTF-8.
    rendered: usize,
    /// How the line is shown should it end up in the middle, if it is an
    /// error line.
    error: Option<Piece>,
}

impl Line {
    fn is_whole(&self) -> bool {
        self.from == self.offset
    }

    fn piece(&self) -> Piece {
        Piece {
            from: self.offset,
            to: self.end,
            index: self.index,
            text: String::from_utf8_lossy(&self.bytes).into_owned(),
        }
    }
}

/// A shown part of the range: bytes `[from, to)` of line `index`, written
/// as `text`.
#[derive(Debug)]
struct Piece {
    from: u64,
    to: u64,
    index: u64,
    text: String,
}

impl Piece {
    /// How an error line from the middle is shown, in at most `room`
    /// bytes of text. `line_tail` is the line's last bytes as read, `\n`
    /// included.
    fn middle(found: &LineMatch, line_tail: &[u8], room: usize) -> Self {
        let line = &found.line;
        let match_start = to_usize(found.match_start - found.line_text_offset);
        let match_end = to_usize(found.match_end - found.line_text_offset);
        let from = if match_end <= room {
            0
        } else {
            // A quarter of the room goes to what leads up to the match.
            ceil_char(line, match_start.saturating_sub(room / 4))
        };
        let shown = &line[from..from + fit_prefix(&line[from..], room)];
        let shown_from = found.line_text_offset + to_u64(from);
        let shown_to = shown_from + to_u64(shown.len());
        // Shown up to its end, the line stands for its `\n` (or `\r\n`)
        // too. A match found before a long line ended holds only part of
        // it, hence the check that only the terminator is left.
        let terminator: &[u8] = match found.line_end - shown_to {
            1 => b"\n",
            2 => b"\r\n",
            _ => b"-",
        };
        Self {
            from: shown_from,
            to: if line_tail.ends_with(terminator) {
                found.line_end
            } else {
                shown_to
            },
            index: found.line_number,
            text: format!(
                "[offset {}] {}\n",
                thousands(shown_from),
                String::from_utf8_lossy(shown)
            ),
        }
    }
}

/// The streaming state of one digest.
struct Digester {
    budget: usize,
    /// Upper bound on the length of any marker in this digest.
    marker_max: usize,
    /// Most text shown of one kept middle line; 0 when none are kept.
    kept_line_room: usize,
    start: u64,
    /// Absolute offset of the next byte.
    pos: u64,
    /// Index of the current line.
    index: u64,
    /// The current line so far, or for a long line its last bytes.
    current: Vec<u8>,
    current_offset: u64,
    current_from: u64,
    /// The whole range, while it is no longer than the budget.
    whole: Option<Vec<u8>>,
    head: Vec<Line>,
    head_used: usize,
    head_open: bool,
    /// The latest lines after the head, up to the budget: the tail is
    /// chosen from them at the end.
    ring: VecDeque<Line>,
    ring_used: usize,
    errors: LineScanner,
    /// The first error lines of the middle, up to the middle's share …
    first: Vec<Piece>,
    first_used: usize,
    first_open: bool,
    /// … and the last ones after those, up to the share too.
    last: VecDeque<Piece>,
    last_used: usize,
    /// Whether error lines were dropped between `first` and `last`.
    lost: bool,
}

impl Digester {
    fn new(errors: Regex, start: u64, end: u64, budget: usize) -> Self {
        // A stretch holds at most `end - start` bytes and as many lines; at
        // least 10 so the bound covers "0 lines" and plurals.
        let most = (end - start).max(10);
        let marker_max = marker(most, most, end, end).len();
        // A kept line must fit in the middle's share with its `[offset]`
        // prefix, its `\n` and the marker before it.
        let overhead = marker_max + format!("[offset {}] \n", thousands(end)).len();
        let room = MAX_KEPT_LINE.min((budget / 4).saturating_sub(overhead));
        Self {
            budget,
            marker_max,
            kept_line_room: if room < MIN_KEPT_LINE { 0 } else { room },
            start,
            pos: start,
            index: 0,
            current: Vec::new(),
            current_offset: start,
            current_from: start,
            whole: Some(Vec::new()),
            head: Vec::new(),
            head_used: 0,
            head_open: true,
            ring: VecDeque::new(),
            ring_used: 0,
            errors: LineScanner::new(errors, start, 0),
            first: Vec::new(),
            first_used: 0,
            first_open: true,
            last: VecDeque::new(),
            last_used: 0,
            lost: false,
        }
    }

    fn feed(&mut self, chunk: &[u8]) {
        if let Some(whole) = &mut self.whole {
            if whole.len() + chunk.len() <= self.budget {
                whole.extend_from_slice(chunk);
            } else {
                self.whole = None;
            }
        }
        let mut rest = chunk;
        while !rest.is_empty() {
            let len = rest
                .iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |newline| newline + 1);
            let (piece, after) = rest.split_at(len);
            rest = after;
            let mut found = None;
            let _ = self.errors.feed(piece, |m| {
                found = Some(m.clone());
                ControlFlow::Continue(())
            });
            self.current.extend_from_slice(piece);
            self.pos += to_u64(len);
            if self.current.len() > 2 * self.budget {
                // Only the end of a line this long can ever be shown.
                let cut = ceil_char(&self.current, self.current.len() - self.budget);
                self.current.drain(..cut);
                self.current_from += to_u64(cut);
            }
            if piece.ends_with(b"\n") {
                let error = found
                    .filter(|_| self.kept_line_room > 0)
                    .map(|m| Piece::middle(&m, &self.current, self.kept_line_room));
                self.end_line(error);
            }
        }
    }

    fn end_line(&mut self, error: Option<Piece>) {
        let bytes = std::mem::take(&mut self.current);
        let line = Line {
            offset: self.current_offset,
            end: self.pos,
            index: self.index,
            rendered: lossy_len(&bytes),
            bytes,
            from: self.current_from,
            error,
        };
        self.index += 1;
        self.current_offset = self.pos;
        self.current_from = self.pos;
        if self.head_open {
            if line.is_whole() && self.head_used + line.rendered <= self.budget / 4 {
                self.head_used += line.rendered;
                self.head.push(line);
                return;
            }
            self.head_open = false;
        }
        self.ring_used += line.rendered;
        self.ring.push_back(line);
        while self.ring_used > self.budget && self.ring.len() > 1 {
            if let Some(old) = self.ring.pop_front() {
                self.ring_used -= old.rendered;
                if let Some(error) = old.error {
                    self.offer(error);
                }
            }
        }
    }

    /// Takes an error line known to be in the middle, in range order.
    fn offer(&mut self, piece: Piece) {
        let cost = piece.text.len() + self.marker_max;
        let share = self.budget / 4;
        if self.first_open {
            if self.first_used + cost <= share {
                self.first_used += cost;
                self.first.push(piece);
                return;
            }
            self.first_open = false;
        }
        self.last_used += cost;
        self.last.push_back(piece);
        while self.last_used > share {
            let Some(old) = self.last.pop_front() else {
                break;
            };
            self.last_used -= old.text.len() + self.marker_max;
            self.lost = true;
        }
    }

    fn finish(mut self) -> Digest {
        if !self.current.is_empty() {
            // The last line has no `\n`; it is always in the tail, so it
            // needs no error check.
            self.end_line(None);
        }
        if let Some(whole) = &self.whole {
            let text = String::from_utf8_lossy(whole);
            if text.len() <= self.budget {
                return Digest {
                    text: text.into_owned(),
                    end_offset: self.pos,
                    omitted_bytes: 0,
                    omitted_lines: 0,
                };
            }
        }
        let (budget, marker_max) = (self.budget, self.marker_max);
        let half = budget / 2;

        let head_limit = (budget / 4).min(budget.saturating_sub(half + marker_max));
        while self.head_used > head_limit {
            let Some(line) = self.head.pop() else { break };
            self.head_used -= line.rendered;
        }
        let middle_share =
            (budget / 4).min(budget.saturating_sub(half + self.head_used + marker_max));
        let tail_least = budget.saturating_sub(self.head_used + middle_share + marker_max);

        // Lines of the ring that stay out of the tail even if the middle
        // takes its whole share are middle lines.
        let mut sure = self.ring.len();
        let mut used = 0;
        while let Some(line) = sure.checked_sub(1).map(|i| &self.ring[i]) {
            if !line.is_whole() || used + line.rendered > tail_least {
                break;
            }
            used += line.rendered;
            sure -= 1;
        }
        let middle_end = sure.min(self.ring.len().saturating_sub(1));
        for i in 0..middle_end {
            if let Some(error) = self.ring[i].error.take() {
                self.offer(error);
            }
        }
        let mut middle = self.choose_middle(middle_share);
        let middle_used: usize = middle.iter().map(|p| p.text.len() + marker_max).sum();

        // The tail takes everything left, growing back from the end; a kept
        // middle line it reaches is shown in the tail instead.
        let mut room = budget.saturating_sub(self.head_used + middle_used + marker_max);
        let mut tail = Vec::new();
        for (i, line) in self.ring.iter().enumerate().rev() {
            let freed = match middle.last() {
                Some(piece) if piece.index == line.index => piece.text.len() + marker_max,
                _ => 0,
            };
            if line.is_whole() && line.rendered <= room + freed {
                if freed > 0 {
                    middle.pop();
                }
                room = room + freed - line.rendered;
                tail.push(line.piece());
                continue;
            }
            if i + 1 == self.ring.len() {
                let at = fit_suffix(&line.bytes, room);
                tail.push(Piece {
                    from: line.from + to_u64(at),
                    to: line.end,
                    index: line.index,
                    text: String::from_utf8_lossy(&line.bytes[at..]).into_owned(),
                });
            }
            break;
        }

        let pieces = self
            .head
            .iter()
            .map(Line::piece)
            .chain(middle)
            .chain(tail.into_iter().rev());
        let mut digest = Digest {
            text: String::with_capacity(budget),
            end_offset: self.pos,
            omitted_bytes: 0,
            omitted_lines: 0,
        };
        let mut cursor = self.start;
        let mut next_line = 0;
        for piece in pieces {
            if piece.from > cursor {
                digest.omit(cursor, piece.from, piece.index.saturating_sub(next_line));
            }
            digest.text.push_str(&piece.text);
            cursor = piece.to;
            next_line = piece.index + 1;
        }
        if cursor < self.pos {
            // Unreachable while the tail keeps the range's end; kept so the
            // accounting stays whole regardless.
            digest.omit(cursor, self.pos, self.index.saturating_sub(next_line));
        }
        debug_assert!(digest.text.len() <= budget);
        digest
    }

    /// The error lines to keep from the middle within `share` bytes
    /// (markers counted): all of them if they fit, else the first ones
    /// within half the share and the last ones within the rest.
    fn choose_middle(&mut self, share: usize) -> Vec<Piece> {
        let marker_max = self.marker_max;
        let cost = |piece: &Piece| piece.text.len() + marker_max;
        let first = std::mem::take(&mut self.first);
        let last = std::mem::take(&mut self.last);
        let total: usize = first.iter().chain(&last).map(cost).sum();
        if !self.lost && total <= share {
            return first.into_iter().chain(last).collect();
        }
        let mut chosen = Vec::new();
        let mut used = 0;
        let mut first = first.into_iter().peekable();
        while let Some(piece) = first.next_if(|piece| used + cost(piece) <= share / 2) {
            used += cost(&piece);
            chosen.push(piece);
        }
        // Without a gap, the last ones may reach back into `first`.
        let pool: Vec<Piece> = if self.lost {
            last.into_iter().collect()
        } else {
            first.chain(last).collect()
        };
        let mut latest = Vec::new();
        for piece in pool.into_iter().rev() {
            if used + cost(&piece) > share {
                break;
            }
            used += cost(&piece);
            latest.push(piece);
        }
        chosen.extend(latest.into_iter().rev());
        chosen
    }
}

impl Digest {
    fn omit(&mut self, from: u64, to: u64, lines: u64) {
        self.text.push_str(&marker(to - from, lines, from, to));
        self.omitted_bytes += to - from;
        self.omitted_lines += lines;
    }
}

/// The marker line for a left-out stretch, `\n` included.
fn marker(bytes: u64, lines: u64, from: u64, to: u64) -> String {
    let mut text = String::from("… ");
    let _ = writeln!(
        text,
        "{} {} ({} {}) omitted, offsets {}–{} …",
        thousands(bytes),
        if bytes == 1 { "byte" } else { "bytes" },
        thousands(lines),
        if lines == 1 { "line" } else { "lines" },
        thousands(from),
        thousands(to),
    );
    text
}

/// `n` with commas between thousands: `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut text = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

fn lossy_len(bytes: &[u8]) -> usize {
    String::from_utf8_lossy(bytes).len()
}

/// Length of a prefix of `bytes` ending at a character boundary whose lossy
/// text fits in `room` bytes: the longest one, unless invalid bytes (which
/// grow into U+FFFD) make it a little shorter.
fn fit_prefix(bytes: &[u8], room: usize) -> usize {
    let mut end = floor_char(bytes, room);
    loop {
        let len = lossy_len(&bytes[..end]);
        if len <= room {
            return end;
        }
        // Invalid bytes grew into U+FFFD; shrink by the excess.
        end = floor_char(bytes, end.saturating_sub(len - room));
    }
}

/// Start of a suffix of `bytes` beginning at a character boundary whose
/// lossy text fits in `room` bytes: the longest one, unless invalid bytes
/// make it a little shorter.
fn fit_suffix(bytes: &[u8], room: usize) -> usize {
    let mut start = ceil_char(bytes, bytes.len().saturating_sub(room));
    loop {
        let len = lossy_len(&bytes[start..]);
        if len <= room {
            return start;
        }
        start = ceil_char(bytes, start + (len - room));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(text: &str, start: u64, budget: usize) -> Digest {
        let end = start + to_u64(text.len());
        digest_reader(text.as_bytes(), start, end, budget).unwrap()
    }

    #[test]
    fn numbers_and_markers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(56_213), "56,213");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(
            marker(48_213, 1020, 8000, 56_213),
            "… 48,213 bytes (1,020 lines) omitted, offsets 8,000–56,213 …\n"
        );
        assert_eq!(
            marker(1, 1, 5, 6),
            "… 1 byte (1 line) omitted, offsets 5–6 …\n"
        );
    }

    #[test]
    fn a_range_that_fits_is_verbatim() {
        let text = "one\ntwo\r\nthree";
        let d = digest(text, 100, MIN_DIGEST_BYTES);
        assert_eq!(d.text, text);
        assert_eq!(d.end_offset, 114);
        assert_eq!((d.omitted_bytes, d.omitted_lines), (0, 0));
    }

    #[test]
    fn small_budgets_and_bad_ranges_are_refused() {
        assert!(digest_reader(&b"x"[..], 0, 1, MIN_DIGEST_BYTES - 1).is_err());
        assert!(digest_reader(&b"x"[..], 2, 1, MIN_DIGEST_BYTES).is_err());
    }

    #[test]
    fn a_long_last_line_keeps_its_end() {
        let mut text = "start\n".to_owned();
        text.push_str(&"x".repeat(10_000));
        text.push_str(" the end");
        let d = digest(&text, 0, 300);
        assert!(d.text.len() <= 300);
        assert!(d.text.starts_with("start\n… "));
        assert!(d.text.ends_with("x the end"));
        assert_eq!(d.omitted_lines, 0);
        let shown = d.text.lines().last().unwrap().len();
        assert_eq!(d.omitted_bytes, to_u64(text.len() - 6 - shown));
    }

    #[test]
    fn a_kept_line_whose_match_is_far_in_is_shown_from_near_the_match() {
        let mut text = "a\n".repeat(1000);
        let long_line_at = text.len();
        text.push_str(&"y".repeat(1000));
        text.push_str(" ERROR here\n");
        text.push_str(&"b\n".repeat(1000));
        let d = digest(&text, 0, 2000);
        // The match starts at the `E`, after the space.
        let context = MAX_KEPT_LINE / 4;
        let shown = long_line_at + 1001 - context;
        assert!(
            d.text.contains(&format!(
                "[offset {}] {} ERROR here\n",
                thousands(to_u64(shown)),
                "y".repeat(context - 1)
            )),
            "{}",
            d.text
        );
        // Shown up to its end, the line covers its newline: the next
        // stretch left out starts at the next line.
        let next_line = long_line_at + 1000 + " ERROR here\n".len();
        assert!(
            d.text
                .contains(&format!("offsets {}–", thousands(to_u64(next_line)))),
            "{}",
            d.text
        );
    }

    #[test]
    fn lossy_fitting() {
        for bytes in [&b"\xff\xffab"[..], b"ab\xff\xff", b"\xffa\xffb\xff"] {
            for room in 0..12 {
                assert!(lossy_len(&bytes[..fit_prefix(bytes, room)]) <= room);
                assert!(lossy_len(&bytes[fit_suffix(bytes, room)..]) <= room);
            }
        }
        assert_eq!(fit_prefix(b"abc\xff", 5), 3);
        assert_eq!(fit_suffix("a\u{1F642}".as_bytes(), 3), 5);
    }
}
