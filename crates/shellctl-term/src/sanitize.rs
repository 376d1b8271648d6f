//! The streaming PTY sanitizer: raw terminal bytes in, clean UTF-8 lines out.
//!
//! Escape sequences are parsed by the `vte` crate (the parser of Alacritty);
//! a fast path (see below) takes the bytes whose parse is trivial. On top of
//! both sits a small model of the line being written: a row of cells and a
//! cursor column. Carriage return, backspace and the few cursor and erase
//! sequences that progress bars use move the cursor or clear cells, so the
//! committed line is what a terminal would show:
//!
//! | input                     | committed       |
//! |---------------------------|-----------------|
//! | `0%\r50%\r100%\n`         | `100%\n`        |
//! | `abcdef\rXY\n`            | `XYcdef\n`      |
//! | `ok\r\r\n` (PTY's `\r\n`) | `ok\n`          |
//! | `50%\r\x1b[K7%\n`         | `7%\n`          |
//!
//! Everything else that is not text is dropped: CSI, OSC, DCS, SOS/PM/APC
//! strings, charset selections, and control bytes other than tab and newline.
//! Invalid UTF-8 becomes U+FFFD, one per maximal invalid subsequence (the same
//! count Python's decoder gives), also when a multi-byte character is split
//! across feeds.
//!
//! # Partial lines
//!
//! [`PtySanitizer::flush_partial`] hands out the text of the current line
//! before its newline arrives, so a prompt such as `Name: ` can be shown while
//! the program waits for input. A log is append-only, so the sanitizer
//! remembers what it handed out: if the line later only grows (the user's
//! answer is echoed after the prompt), just the new text follows; if the line
//! is changed where text was already handed out (a spinner redraws, a
//! progress bar returns to column 0 and prints something different), the new
//! version of the line continues on a new line in the log. Redrawing the same
//! text (as line editors do) is not a change.
//!
//! # The fast path
//!
//! Most output is text, and most of what is not is colour. So while `vte`
//! is in its ground state (which only an ESC leaves), the sanitizer does
//! not hand it bytes one by one:
//!
//! - the UTF-8 of each stretch of input is validated once, and a run of
//!   printable ASCII (found 8 and 32 bytes at a time) goes into the line in
//!   one piece, or straight to the output when it ends the line;
//! - after a line ended by a lone `\n`, the following whole lines of
//!   printable ASCII, which sanitize to themselves, are copied out in one
//!   piece (the last `\n` found with `memchr`);
//! - control bytes, DEL, other characters and invalid UTF-8 get exactly the
//!   treatment `vte` would give them;
//! - a CSI of only digits and semicolons (`\x1b[1;31m`, `\x1b[K`,
//!   `\x1b[2D`) is applied directly: `vte` would dispatch it with the same
//!   first parameter and end in ground state again.
//!
//! Any other ESC goes to `vte` with the bytes after it, until `vte` is known
//! to be back in its ground state: it dispatched a sequence that ends there,
//! or it printed text (which it does only there) and did not take an ESC
//! right after. A character split across feeds is held back before either
//! path sees it.
//! A differential test feeds random mixes of all of this, cut at random
//! points, to the fast path and to `vte` alone and requires the same bytes.
//!
//! # Known limits
//!
//! - Cells are characters, not display columns: a wide character takes one
//!   cell, which matters only when a later write overwrites part of a line.
//! - A C1 control character that arrives validly UTF-8-encoded (U+0080 to
//!   U+009F) comes out as U+FFFD: `vte` reports it exactly like a stray
//!   continuation byte, which must become U+FFFD.
//! - A line longer than [`MAX_LINE_CELLS`] without a newline is committed in
//!   pieces of that size without a line break, so memory stays bounded; a
//!   later carriage return can then only overwrite the current piece.

use vte::{Params, Parser, Perform};

/// A private OSC sequence the job runner prints after the script's last
/// output. The sanitizer drops it like any OSC, and counts it (see
/// [`PtySanitizer::take_sync_marks`]), so the pipe side learns that
/// everything before it has arrived.
pub const SYNC_SEQUENCE: &[u8] = b"\x1b]7779;shellctl-sync\x07";
const SYNC_OSC_CODE: &[u8] = b"7779";

/// Longest line kept in memory before it is committed without a newline.
pub const MAX_LINE_CELLS: usize = 1 << 20;

const REPLACEMENT: char = '\u{FFFD}';
const ESC: u8 = 0x1b;

/// Converts raw PTY bytes, chunk by chunk, into stable UTF-8 text.
///
/// Splitting the input into chunks anywhere never changes the result:
/// `feed(a) + feed(b) + finish()` equals `feed(a ++ b) + finish()`.
pub struct PtySanitizer {
    parser: Parser,
    line: LineModel,
    /// The start of a multi-byte character cut off by the end of the last
    /// feed, kept back until the rest arrives.
    held: Vec<u8>,
    /// [`SYNC_SEQUENCE`]s seen and not yet taken.
    sync_marks: usize,
    /// Whether `parser` is known to be in its ground state (and holds no
    /// partial character), so the fast path may take the bytes up to the
    /// next ESC.
    ground: bool,
    /// Test switch: every byte goes through `parser`, as before the fast
    /// path existed; the differential test compares the two.
    #[cfg(test)]
    state_machine_only: bool,
}

impl Default for PtySanitizer {
    fn default() -> Self {
        PtySanitizer {
            parser: Parser::new(),
            line: LineModel::default(),
            held: Vec::new(),
            sync_marks: 0,
            ground: true,
            #[cfg(test)]
            state_machine_only: false,
        }
    }
}

impl PtySanitizer {
    /// A sanitizer at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// A sanitizer that sends every byte through the `vte` state machine,
    /// the reference the fast path is tested against.
    #[cfg(test)]
    fn state_machine_only() -> Self {
        PtySanitizer {
            state_machine_only: true,
            ..Self::default()
        }
    }

    /// Consumes one chunk and returns the text it completes (whole lines,
    /// each ending in `\n`).
    pub fn feed(&mut self, bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len() + self.held.len());
        self.feed_into(bytes, &mut out);
        out
    }

    /// [`feed`](Self::feed), appending the completed text to `out` instead
    /// of returning it (so a caller can reuse one buffer).
    pub fn feed_into(&mut self, bytes: &[u8], out: &mut String) {
        if self.held.is_empty() {
            self.advance_whole_chars(bytes, out);
        } else {
            let mut joined = std::mem::take(&mut self.held);
            joined.extend_from_slice(bytes);
            self.advance_whole_chars(&joined, out);
        }
    }

    /// Feeds `bytes` to the parser except for a cut-off character at the
    /// end, which is held back. vte 0.15 can drop the character after one it
    /// completes across two `advance` calls (when invalid bytes follow), so
    /// it is never handed a split character.
    fn advance_whole_chars(&mut self, bytes: &[u8], out: &mut String) {
        let (whole, cut) = bytes.split_at(bytes.len() - cut_off_char_len(bytes));
        self.held.extend_from_slice(cut);
        #[cfg(test)]
        if self.state_machine_only {
            let mut sink = Sink::new(&mut self.line, out, &mut self.sync_marks);
            self.parser.advance(&mut sink, whole);
            return;
        }
        // `valid` is the longest valid UTF-8 stretch of `whole` starting at
        // `valid_start`, found once and sliced as the fast path moves along
        // it (every position the fast path stops at is a character
        // boundary), so each byte is validated once.
        let mut valid = "";
        let mut valid_start = 0;
        let mut at = 0;
        while at < whole.len() {
            if !self.ground {
                let mut sink = Sink::new(&mut self.line, out, &mut self.sync_marks);
                let used = self
                    .parser
                    .advance_until_terminated(&mut sink, &whole[at..]);
                at += used;
                // The byte that ended the parser's run: after a dispatch it
                // is the final byte and the parser is in ground; after text
                // it is an ESC the parser has just taken (so it is not), or
                // the text ran to the end of an invalid sequence (so it is),
                // or to the end of the feed. There the feed may end in the
                // start of a character that the next byte, held back as cut
                // off itself, will show to be invalid (`\xc2` `\xc2`): the
                // parser keeps that start pending, so it stays in charge.
                let pending = at == whole.len() && cut_off_char_len(whole) > 0;
                if sink.back_in_ground && (used == 0 || whole[at - 1] != ESC) && !pending {
                    self.ground = true;
                }
                continue;
            }
            if at >= valid_start + valid.len() {
                valid_start = at;
                match std::str::from_utf8(&whole[at..]) {
                    Ok(text) => valid = text,
                    Err(err) if err.valid_up_to() > 0 => {
                        let end = at + err.valid_up_to();
                        valid = std::str::from_utf8(&whole[at..end]).unwrap_or_default();
                    }
                    Err(err) => {
                        valid = "";
                        if let Some(len) = err.error_len() {
                            // A maximal invalid sequence: one U+FFFD, as
                            // vte prints.
                            self.line.put(REPLACEMENT, out);
                            at += len;
                        } else {
                            // The start of a character at the very end
                            // (the byte after it was held back as the start
                            // of another, `\xc2` `\xc2`): vte keeps it
                            // pending until the next feed tells.
                            self.ground = false;
                        }
                        continue;
                    }
                }
            }
            let text = valid.get(at - valid_start..).unwrap_or_default();
            at += self.line.ground_text(text, out);
            if at < whole.len() && whole[at] == ESC {
                if let Some(csi) = PlainCsi::parse(&whole[at..]) {
                    self.line.csi(csi.action, csi.first);
                    at += csi.len;
                } else {
                    // An ESC starting anything else: the state machine
                    // takes over until it is back in its ground state.
                    self.ground = false;
                }
            } else if at < valid_start + valid.len() {
                // The fast path stopped inside valid text, which it never
                // does; the state machine is right for anything.
                self.ground = false;
            }
        }
    }

    /// How many [`SYNC_SEQUENCE`]s arrived since the last call. Text fed
    /// before a mark has been returned by the feed that saw the mark.
    pub fn take_sync_marks(&mut self) -> usize {
        std::mem::take(&mut self.sync_marks)
    }

    /// Whether the current line holds text that has not been handed out.
    pub fn has_pending_partial(&self) -> bool {
        self.line.dirty
    }

    /// Hands out the current, unfinished line (see the module docs for how
    /// later changes to it are logged). Returns an empty string when there
    /// is nothing new.
    pub fn flush_partial(&mut self) -> String {
        let mut out = String::new();
        self.line.flush_partial(&mut out);
        out
    }

    /// Ends the stream: returns the unfinished line (without a newline), and
    /// a U+FFFD for a multi-byte character cut off by the end.
    pub fn finish(&mut self) -> String {
        let mut out = String::new();
        let mut sink = Sink::new(&mut self.line, &mut out, &mut self.sync_marks);
        // A cut-off character at the very end: hand it to vte, then an ESC,
        // which makes vte give the sequence up as U+FFFD (or drop it, inside
        // an escape string) and prints nothing itself.
        let held = std::mem::take(&mut self.held);
        self.parser.advance(&mut sink, &held);
        self.parser.advance(&mut sink, b"\x1b");
        self.line.commit(&mut out);
        self.parser = Parser::new();
        self.ground = true;
        out
    }
}

/// Sanitizes a complete byte string in one go.
pub fn sanitize_all(bytes: &[u8]) -> String {
    let mut sanitizer = PtySanitizer::new();
    let mut out = sanitizer.feed(bytes);
    out.push_str(&sanitizer.finish());
    out
}

/// Length of an incomplete but so far valid UTF-8 sequence ending `bytes`.
fn cut_off_char_len(bytes: &[u8]) -> usize {
    let len = bytes.len();
    for back in 1..=len.min(3) {
        let byte = bytes[len - back];
        if byte & 0b1100_0000 == 0b1000_0000 {
            continue;
        }
        let needed = match byte {
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => return 0,
        };
        let still_valid = std::str::from_utf8(&bytes[len - back..])
            .err()
            .is_some_and(|err| err.error_len().is_none());
        return if needed > back && still_valid {
            back
        } else {
            0
        };
    }
    0
}

/// The line being written: its cells, the cursor, and what of it has already
/// been handed out as a partial line.
///
/// Most lines are only ever appended to, so the cells live in a `String`
/// (`text`) until something writes behind the end. A line of ASCII (one
/// byte per cell) stays there when ASCII overwrites it, as a progress bar
/// redrawn after `\r` does; anything else written behind the end moves the
/// cells to a grid of characters (`grid`) for the rest of the line. Both
/// buffers are reused from line to line.
#[derive(Default)]
struct LineModel {
    text: String,
    /// Characters in `text`.
    text_chars: usize,
    grid: Vec<char>,
    in_grid: bool,
    cursor: usize,
    /// The line as it was last handed out by `flush_partial`; empty if never.
    emitted: String,
    /// Cells changed since the last hand-out.
    dirty: bool,
}

impl LineModel {
    fn len(&self) -> usize {
        if self.in_grid {
            self.grid.len()
        } else {
            self.text_chars
        }
    }

    /// Writes `c` at the cursor. The common cases (appending to a line with
    /// no cursor movement, overwriting a cell of the grid) stay inline; the
    /// rest is out of line.
    // The per-character path of text other than printable ASCII (which
    // `put_ascii` takes in runs); measure with `cargo bench -p
    // shellctl-term` before changing.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn put(&mut self, c: char, out: &mut String) {
        if !self.in_grid && self.cursor == self.text_chars && self.text_chars < MAX_LINE_CELLS {
            self.text.push(c);
            self.text_chars += 1;
            self.cursor += 1;
            self.dirty = true;
        } else if self.in_grid && self.cursor < self.grid.len() {
            // Overwriting a redrawn line (a progress bar after `\r`).
            self.grid[self.cursor] = c;
            self.cursor += 1;
            self.dirty = true;
        } else {
            self.put_slow(c, out);
        }
    }

    #[cold]
    #[inline(never)]
    fn put_slow(&mut self, c: char, out: &mut String) {
        if !self.in_grid && self.cursor == self.text_chars {
            // At the length limit (the fast path took every other append).
            self.commit(out);
            self.text.push(c);
            self.text_chars += 1;
            self.cursor += 1;
        } else {
            if self.cursor >= MAX_LINE_CELLS && self.cursor >= self.len() {
                self.commit(out);
            }
            let cursor = self.cursor;
            let grid = self.grid_mut();
            if cursor < grid.len() {
                grid[cursor] = c;
            } else {
                grid.resize(cursor, ' ');
                grid.push(c);
            }
            self.cursor = cursor + 1;
        }
        self.dirty = true;
    }

    /// The cells as a grid, moving them there if they are still text.
    fn grid_mut(&mut self) -> &mut Vec<char> {
        if !self.in_grid {
            self.grid.clear();
            self.grid.extend(self.text.chars());
            self.in_grid = true;
        }
        &mut self.grid
    }

    fn current_text(&self) -> std::borrow::Cow<'_, str> {
        if self.in_grid {
            std::borrow::Cow::Owned(self.grid.iter().collect())
        } else {
            std::borrow::Cow::Borrowed(&self.text)
        }
    }

    /// Appends the line's text that the log lacks, then starts a new line.
    fn commit(&mut self, out: &mut String) {
        self.append_unlogged(out);
        self.reset();
    }

    /// Starts a new, empty line.
    fn reset(&mut self) {
        self.text.clear();
        self.text_chars = 0;
        self.grid.clear();
        self.in_grid = false;
        self.emitted.clear();
        self.cursor = 0;
        self.dirty = false;
    }

    fn flush_partial(&mut self, out: &mut String) {
        if !self.dirty {
            return;
        }
        let current = self.current_text();
        let only_shortened =
            current.len() < self.emitted.len() && self.emitted.starts_with(current.as_ref());
        // A line that only lost text at its end (erased, not yet rewritten)
        // has nothing new to log; wait for what replaces it.
        if !only_shortened {
            let current = current.into_owned();
            self.append_unlogged(out);
            self.emitted = current;
        }
        self.dirty = false;
    }

    fn append_unlogged(&self, out: &mut String) {
        if self.emitted.is_empty() {
            if self.in_grid {
                out.extend(&self.grid);
            } else {
                out.push_str(&self.text);
            }
            return;
        }
        let current = self.current_text();
        if let Some(rest) = current.strip_prefix(self.emitted.as_str()) {
            out.push_str(rest);
        } else {
            out.push('\n');
            out.push_str(&current);
        }
    }

    /// What `vte` reports as printed text does to the line.
    #[inline]
    fn print(&mut self, c: char, out: &mut String) {
        match c {
            '\x7f' => {}
            // vte passes a C1 character to `execute` when it arrives whole but
            // to `print` when it was split across feeds; treat both alike.
            '\u{80}'..='\u{9f}' => self.put(REPLACEMENT, out),
            _ => self.put(c, out),
        }
    }

    /// What `vte` reports as an executed control byte does to the line.
    fn execute(&mut self, byte: u8, out: &mut String) {
        match byte {
            b'\n' => {
                self.commit(out);
                out.push('\n');
            }
            b'\r' => self.cursor = 0,
            0x08 => self.cursor = self.cursor.saturating_sub(1),
            b'\t' => self.put('\t', out),
            // A lone byte 0x80..=0x9F is not UTF-8; vte reports it as a C1
            // control, but it is a decoding error and must show as U+FFFD.
            0x80..=0x9f => self.put(REPLACEMENT, out),
            _ => {}
        }
    }

    /// Applies a dispatched CSI sequence (without intermediates) given its
    /// first parameter. Most are colours, which change nothing here, so
    /// this check stays inline.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn csi(&mut self, action: char, first: u16) {
        if matches!(action, 'K' | 'C' | 'D' | 'G') {
            self.move_or_erase(action, first);
        }
    }

    fn move_or_erase(&mut self, action: char, first: u16) {
        let count = usize::from(first.max(1));
        match action {
            'K' => self.erase_in_line(first),
            'C' => self.cursor = self.cursor.saturating_add(count).min(MAX_LINE_CELLS),
            'D' => self.cursor = self.cursor.saturating_sub(count),
            'G' => self.cursor = (count - 1).min(MAX_LINE_CELLS),
            _ => {}
        }
    }

    /// The fast path: takes `text` in the parser's ground state up to an
    /// ESC that starts anything but a [`PlainCsi`], with the effect `vte`
    /// would have, and returns how many bytes it took.
    fn ground_text(&mut self, text: &str, out: &mut String) -> usize {
        let bytes = text.as_bytes();
        let mut at = 0;
        while at < bytes.len() {
            let run = printable_ascii_len(&bytes[at..]);
            if run > 0 {
                let ascii = text.get(at..at + run).unwrap_or_default();
                at += run;
                // The run ends the line (`\n` or a PTY's `\r\n`) and is
                // appended: the whole line goes out without a detour
                // through the line buffer.
                let newline = match bytes.get(at..at + 2) {
                    Some([b'\n', ..]) => 1,
                    Some(b"\r\n") => 2,
                    _ => usize::from(bytes.get(at) == Some(&b'\n')),
                };
                if newline > 0 && self.appends_whole(run) {
                    out.push_str(&self.text);
                    out.push_str(ascii);
                    out.push('\n');
                    self.reset();
                    at += newline;
                    if newline == 1 {
                        // Text with lone `\n`s (not a PTY's `\r\n`): the
                        // lines that follow may be as plain, and then they
                        // are their own sanitized text.
                        let lines = plain_lines_len(&bytes[at..]);
                        out.push_str(text.get(at..at + lines).unwrap_or_default());
                        at += lines;
                    }
                } else {
                    self.put_ascii(ascii, out);
                }
                continue;
            }
            match bytes[at] {
                ESC => match PlainCsi::parse(&bytes[at..]) {
                    Some(csi) => {
                        self.csi(csi.action, csi.first);
                        at += csi.len;
                    }
                    None => return at,
                },
                0x7f => at += 1,
                byte @ 0..=0x1f => {
                    self.execute(byte, out);
                    at += 1;
                }
                _ => {
                    let Some(c) = text.get(at..).and_then(|rest| rest.chars().next()) else {
                        return at;
                    };
                    self.print(c, out);
                    at += c.len_utf8();
                }
            }
        }
        at
    }

    /// Whether `cells` more cells written at the cursor only append to the
    /// line as it stands, all of which the log still lacks.
    fn appends_whole(&self, cells: usize) -> bool {
        !self.in_grid
            && self.cursor == self.text_chars
            && self.emitted.is_empty()
            && self.text_chars + cells <= MAX_LINE_CELLS
    }

    /// Writes printable ASCII (one cell per byte) at the cursor, with the
    /// effect of [`put`](Self::put) for each character.
    fn put_ascii(&mut self, mut run: &str, out: &mut String) {
        while !run.is_empty() {
            if self.in_grid {
                // Overwrite the cells there are, then go on cell by cell.
                let n = run.len().min(self.grid.len().saturating_sub(self.cursor));
                let (now, rest) = run.split_at(n);
                if n > 0 {
                    let cells = &mut self.grid[self.cursor..self.cursor + n];
                    for (cell, byte) in cells.iter_mut().zip(now.bytes()) {
                        *cell = char::from(byte);
                    }
                    self.cursor += n;
                    self.dirty = true;
                }
                for c in rest.chars() {
                    self.put(c, out);
                }
                return;
            }
            if self.cursor == self.text_chars {
                if self.text_chars == MAX_LINE_CELLS {
                    self.commit(out);
                }
                let (now, rest) = run.split_at(run.len().min(MAX_LINE_CELLS - self.text_chars));
                self.text.push_str(now);
                self.text_chars += now.len();
                self.cursor += now.len();
                self.dirty = true;
                run = rest;
            } else if self.text.len() != self.text_chars {
                // Writing behind the end of a line with wider characters:
                // the grid takes it.
                for c in run.chars() {
                    self.put(c, out);
                }
                return;
            } else if self.cursor < self.text_chars {
                // An ASCII line stays text when ASCII overwrites it (a
                // progress bar redrawn after `\r`).
                let n = run.len().min(self.text_chars - self.cursor);
                let (now, rest) = run.split_at(n);
                self.text.replace_range(self.cursor..self.cursor + n, now);
                self.cursor += n;
                self.dirty = true;
                run = rest;
            } else if self.cursor >= MAX_LINE_CELLS {
                self.commit(out);
            } else {
                // Past the end of an ASCII line: blanks up to the cursor,
                // then the run is appended.
                self.text
                    .extend(std::iter::repeat_n(' ', self.cursor - self.text_chars));
                self.text_chars = self.cursor;
            }
        }
    }

    fn erase_in_line(&mut self, mode: u16) {
        let cursor = self.cursor;
        match mode {
            0 if cursor >= self.len() => {}
            0 if !self.in_grid => {
                // Erasing to the end keeps the line appendable (the common
                // `\r\x1b[K` redraw), so it stays text.
                let byte = if self.text.len() == self.text_chars {
                    cursor
                } else {
                    self.text.char_indices().nth(cursor).map_or(0, |(i, _)| i)
                };
                self.text.truncate(byte);
                self.text_chars = cursor;
            }
            0 => self.grid.truncate(cursor),
            1 => {
                let grid = self.grid_mut();
                let end = (cursor + 1).min(grid.len());
                grid[..end].fill(' ');
            }
            2 => {
                self.text.clear();
                self.text_chars = 0;
                self.grid.clear();
                self.in_grid = false;
            }
            _ => return,
        }
        self.dirty = true;
    }
}

/// A CSI sequence of the plain form `ESC [` digits and semicolons, final
/// byte: what coloured output consists of, so the fast path applies it
/// without handing it to the state machine. Anything else (private markers,
/// intermediates, subparameters, a control byte inside, a sequence cut off
/// by the end of the feed) is left to `vte`.
struct PlainCsi {
    /// Bytes of the whole sequence.
    len: usize,
    /// The first parameter as `vte` computes it (0 if empty).
    first: u16,
    action: char,
}

/// Longest parameter string a [`PlainCsi`] takes: far fewer parameters than
/// `vte` holds (32), so it never ignores one of these.
const PLAIN_CSI_MAX_PARAM_BYTES: usize = 24;

impl PlainCsi {
    fn parse(bytes: &[u8]) -> Option<PlainCsi> {
        if bytes.len() < 3 || bytes[0] != ESC || bytes[1] != b'[' {
            return None;
        }
        let mut first: u16 = 0;
        let mut in_first = true;
        for (at, &byte) in bytes
            .iter()
            .enumerate()
            .skip(2)
            .take(PLAIN_CSI_MAX_PARAM_BYTES + 1)
        {
            match byte {
                b'0'..=b'9' if in_first => {
                    first = first
                        .saturating_mul(10)
                        .saturating_add(u16::from(byte - b'0'));
                }
                b'0'..=b'9' => {}
                b';' => in_first = false,
                0x40..=0x7e => {
                    return Some(PlainCsi {
                        len: at + 1,
                        first,
                        action: char::from(byte),
                    });
                }
                _ => return None,
            }
        }
        None
    }
}

/// Length of the run of printable ASCII (0x20 to 0x7E) that starts `bytes`:
/// eight bytes at a time for the first 32 (most runs between escape
/// sequences are short), then 32 at a time while none stands out, then
/// eight at a time again to find the first that does.
fn printable_ascii_len(bytes: &[u8]) -> usize {
    let head = printable_ascii_len_by_words(&bytes[..bytes.len().min(32)]);
    if head < 32 {
        return head;
    }
    let (blocks, _) = bytes[32..].as_chunks::<32>();
    let mut at = 32;
    for block in blocks {
        if any_word_flags(block, not_printable) {
            break;
        }
        at += 32;
    }
    at + printable_ascii_len_by_words(&bytes[at..])
}

fn is_printable_ascii(byte: u8) -> bool {
    byte.wrapping_sub(0x20) < 0x5f
}

/// Length of the run of whole lines at the start of `bytes` that are only
/// printable ASCII, each ending in `\n`: written on a fresh line, such lines
/// come out exactly as they went in. At most [`MAX_LINE_CELLS`] bytes, so no
/// line among them reaches the length limit.
fn plain_lines_len(bytes: &[u8]) -> usize {
    let window = &bytes[..bytes.len().min(MAX_LINE_CELLS)];
    let (blocks, _) = window.as_chunks::<32>();
    let mut clean = 0;
    for block in blocks {
        if any_word_flags(block, not_plain_or_newline) {
            break;
        }
        clean += 32;
    }
    clean += window[clean..]
        .iter()
        .position(|&b| !(is_printable_ascii(b) || b == b'\n'))
        .unwrap_or(window.len() - clean);
    memchr::memrchr(b'\n', &window[..clean]).map_or(0, |last| last + 1)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Whether `flags` marks any byte of the 32-byte `block`, tested a word at
/// a time: written as a loop over bytes, the compiler made it per-byte
/// compares, which took half of a plain-text run's time.
fn any_word_flags(block: &[u8; 32], flags: fn(u64) -> u64) -> bool {
    let (words, _) = block.as_chunks::<8>();
    words
        .iter()
        .fold(0, |any, word| any | flags(u64::from_le_bytes(*word)))
        != 0
}

/// The high bit of every byte of `word` that is not printable ASCII; exact
/// per byte (no borrow or carry crosses a byte: each step works on 7-bit
/// values with the high bit set or added).
fn not_printable(word: u64) -> u64 {
    let non_ascii = word & HIGH;
    let low = word & !HIGH;
    let control = !((low | HIGH) - ONES * 0x20) & HIGH;
    let delete = (low + ONES) & HIGH;
    non_ascii | control | delete
}

/// [`not_printable`], except that `\n` is not flagged.
fn not_plain_or_newline(word: u64) -> u64 {
    let low = word & !HIGH;
    // A byte whose low seven bits read `\n` but whose high bit is set is
    // not one.
    let newline = !(((low ^ (ONES * u64::from(b'\n'))) | HIGH) - ONES) & !word & HIGH;
    not_printable(word) & !newline
}

/// [`printable_ascii_len`] eight bytes at a time.
fn printable_ascii_len_by_words(bytes: &[u8]) -> usize {
    let (words, tail) = bytes.as_chunks::<8>();
    let mut at = 0;
    for word in words {
        let special = not_printable(u64::from_le_bytes(*word));
        if special != 0 {
            return at + (special.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    at + tail
        .iter()
        .position(|&b| !is_printable_ascii(b))
        .unwrap_or(tail.len())
}

/// The `vte` performer for one feed: applies actions to the line model and
/// collects committed text.
struct Sink<'a> {
    line: &'a mut LineModel,
    out: &'a mut String,
    sync_marks: &'a mut usize,
    /// Set by every action after which the parser is in its ground state,
    /// and by text (printed only in the ground state); ends
    /// `advance_until_terminated`.
    back_in_ground: bool,
}

impl<'a> Sink<'a> {
    fn new(line: &'a mut LineModel, out: &'a mut String, sync_marks: &'a mut usize) -> Self {
        Sink {
            line,
            out,
            sync_marks,
            back_in_ground: false,
        }
    }
}

impl Perform for Sink<'_> {
    fn print(&mut self, c: char) {
        self.line.print(c, self.out);
        self.back_in_ground = true;
    }

    fn execute(&mut self, byte: u8) {
        self.line.execute(byte, self.out);
    }

    fn osc_dispatch(&mut self, params: &[&[u8]], bell_terminated: bool) {
        if params.first() == Some(&SYNC_OSC_CODE) {
            *self.sync_marks += 1;
        }
        // Ended by BEL the parser is in ground; ended by ESC it is not (the
        // `\\` of the string terminator dispatches next).
        self.back_in_ground |= bell_terminated;
    }

    fn csi_dispatch(&mut self, params: &Params, intermediates: &[u8], ignore: bool, action: char) {
        self.back_in_ground = true;
        if ignore || !intermediates.is_empty() {
            return;
        }
        let first = params
            .iter()
            .next()
            .and_then(|p| p.first().copied())
            .unwrap_or(0);
        self.line.csi(action, first);
    }

    fn esc_dispatch(&mut self, _intermediates: &[u8], _ignore: bool, _byte: u8) {
        self.back_in_ground = true;
    }

    #[inline]
    fn terminated(&self) -> bool {
        self.back_in_ground
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_word_tests_flag_exactly_the_bytes_they_name() {
        for byte in 0..=u8::MAX {
            for position in 0..8 {
                // The byte among printable neighbours, and among neighbours
                // of every kind, so that a borrow or carry would show.
                for filler in [b'a', b' ', b'~', b'\n', 0x00, 0x7f, 0x80, 0xff] {
                    let mut bytes = [filler; 8];
                    bytes[position] = byte;
                    let word = u64::from_le_bytes(bytes);
                    let plain = super::not_plain_or_newline(word);
                    let printable = super::not_printable(word);
                    for (at, b) in bytes.iter().enumerate() {
                        let bit = 0x80 << (8 * at);
                        let not_printable = !super::is_printable_ascii(*b);
                        assert_eq!(
                            printable & bit != 0,
                            not_printable,
                            "{b:#04x} at {at} in {bytes:x?}"
                        );
                        let not_plain = not_printable && *b != b'\n';
                        assert_eq!(
                            plain & bit != 0,
                            not_plain,
                            "{b:#04x} at {at} in {bytes:x?}"
                        );
                    }
                }
            }
        }
    }

    use super::*;

    fn clean(input: &[u8]) -> String {
        sanitize_all(input)
    }

    #[test]
    fn carriage_return_overwrites_like_a_terminal() {
        assert_eq!(clean(b"0%\r50%\r100%\n"), "100%\n");
        assert_eq!(clean(b"abcdef\rXY\n"), "XYcdef\n");
        assert_eq!(clean(b"100%\r50%\n"), "50%%\n");
    }

    #[test]
    fn pty_crlf_and_double_cr_end_the_line_once() {
        assert_eq!(clean(b"ok\r\n"), "ok\n");
        assert_eq!(clean(b"ok\r\r\nnext\r\r\n"), "ok\nnext\n");
        assert_eq!(clean(b"\r\n\r\n"), "\n\n");
    }

    #[test]
    fn backspace_moves_the_cursor_left() {
        assert_eq!(clean(b"abc\x08\x08X\n"), "aXc\n");
        assert_eq!(clean(b"\x08\x08a\n"), "a\n");
        assert_eq!(clean(b"ab\x08 \x08\n"), "a \n");
    }

    #[test]
    fn erase_in_line_and_cursor_moves_are_applied() {
        assert_eq!(clean(b"50%\r\x1b[K7%\n"), "7%\n");
        assert_eq!(clean(b"abcdef\x1b[3D\x1b[K!\n"), "abc!\n");
        assert_eq!(clean(b"abcdef\x1b[3D\x1b[1K\n"), "    ef\n");
        assert_eq!(clean(b"abcdef\x1b[2KX\n"), "      X\n");
        assert_eq!(clean(b"ab\x1b[3CX\n"), "ab   X\n");
        assert_eq!(clean(b"abcdef\x1b[2GX\n"), "aXcdef\n");
    }

    #[test]
    fn escape_sequences_are_stripped() {
        assert_eq!(clean(b"\x1b[1;31mred\x1b[0m\n"), "red\n");
        assert_eq!(clean(b"\x1b]0;title\x07text\n"), "text\n");
        assert_eq!(
            clean(b"\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\\n"),
            "link\n"
        );
        assert_eq!(clean(b"\x1bP1$r0m\x1b\\dcs\n"), "dcs\n");
        assert_eq!(clean(b"\x1b(Bplain\x1b)0\n"), "plain\n");
        assert_eq!(clean(b"\x1b[?25lhidden\x1b[?25h\n"), "hidden\n");
        assert_eq!(clean(b"\x1b=keypad\x1b>\n"), "keypad\n");
    }

    #[test]
    fn control_bytes_other_than_tab_and_newline_are_dropped() {
        // SI is what `tput sgr0` emits after the SGR reset on many terminals.
        assert_eq!(clean(b"a\x0fb\x0ec\x07d\x00e\x7ff\n"), "abcdef\n");
        assert_eq!(clean(b"a\tb\n"), "a\tb\n");
        assert_eq!(clean(b"a\x0bb\x0cc\n"), "abc\n");
    }

    #[test]
    fn c1_characters_read_alike_whole_or_split() {
        assert_eq!(clean(b"\xc2\x80\n"), "\u{FFFD}\n");
        let mut s = PtySanitizer::new();
        let mut out = s.feed(b"\xc2");
        out += &s.feed(b"\x80\n");
        assert_eq!(out, "\u{FFFD}\n");
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        assert_eq!(clean(b"fo\x80\xffo\n"), "fo\u{FFFD}\u{FFFD}o\n");
        assert_eq!(clean(b"\xf0\x9fA\n"), "\u{FFFD}A\n");
        assert_eq!(clean(b"\xe4\x1b[31mx\n"), "\u{FFFD}x\n");
        // Cut off by the end of the stream.
        assert_eq!(clean(b"ok\xf0\x9f\x99"), "ok\u{FFFD}");
    }

    #[test]
    fn multibyte_characters_split_across_feeds_decode() {
        let mut s = PtySanitizer::new();
        let mut out = s.feed(b"\xe4\xbd");
        out += &s.feed(b"\xa0\xf0\x9f");
        out += &s.feed(b"\x99");
        out += &s.feed(b"\x82\n");
        out += &s.finish();
        assert_eq!(out, "\u{4f60}\u{1F642}\n");
    }

    #[test]
    fn character_completed_across_feeds_keeps_what_follows() {
        // vte 0.15 alone loses the space here.
        let mut s = PtySanitizer::new();
        let mut out = s.feed(b"\xe4\xbd");
        out += &s.feed(b"\xa0 \x80\n");
        assert_eq!(out, "\u{4f60} \u{FFFD}\n");
    }

    #[test]
    fn cut_off_tail_detection() {
        assert_eq!(cut_off_char_len(b"ab"), 0);
        assert_eq!(cut_off_char_len(b"a\xe4"), 1);
        assert_eq!(cut_off_char_len(b"a\xe4\xbd"), 2);
        assert_eq!(cut_off_char_len(b"a\xe4\xbd\xa0"), 0);
        assert_eq!(cut_off_char_len(b"\xf0\x9f\x99"), 3);
        assert_eq!(cut_off_char_len(b"\x80\x80"), 0);
        assert_eq!(cut_off_char_len(b"\xe0\x80"), 0);
        assert_eq!(cut_off_char_len(b"\xff"), 0);
    }

    #[test]
    fn sync_marks_are_counted_and_dropped_even_when_split() {
        let mut s = PtySanitizer::new();
        let mut input = b"last line\r\n".to_vec();
        input.extend_from_slice(SYNC_SEQUENCE);
        let (a, b) = input.split_at(14);
        let mut out = s.feed(a);
        assert_eq!(s.take_sync_marks(), 0);
        out += &s.feed(b);
        assert_eq!(out, "last line\n");
        assert_eq!(s.take_sync_marks(), 1);
        assert_eq!(s.take_sync_marks(), 0);
        assert_eq!(clean(b"\x1b]7778;other\x07x\n"), "x\n");
    }

    #[test]
    fn feed_returns_only_completed_lines() {
        let mut s = PtySanitizer::new();
        assert_eq!(s.feed(b"one\ntw"), "one\n");
        assert!(s.has_pending_partial());
        assert_eq!(s.feed(b"o\n"), "two\n");
        assert!(!s.has_pending_partial());
        assert_eq!(s.finish(), "");
    }

    #[test]
    fn finish_returns_the_unfinished_line_without_newline() {
        let mut s = PtySanitizer::new();
        assert_eq!(s.feed(b"done\npartial"), "done\n");
        assert_eq!(s.finish(), "partial");
    }

    #[test]
    fn partial_prompt_is_followed_by_only_the_echoed_answer() {
        let mut s = PtySanitizer::new();
        assert_eq!(s.feed(b"Name: "), "");
        assert_eq!(s.flush_partial(), "Name: ");
        assert!(!s.has_pending_partial());
        assert_eq!(s.flush_partial(), "");
        assert_eq!(s.feed(b"bob\r\r\n"), "bob\n");
        assert_eq!(s.finish(), "");
    }

    #[test]
    fn identical_redraw_after_partial_is_not_a_change() {
        let mut s = PtySanitizer::new();
        s.feed(b"Name: ");
        assert_eq!(s.flush_partial(), "Name: ");
        assert_eq!(s.feed(b"\rName: bob\n"), "bob\n");
    }

    #[test]
    fn overwriting_a_logged_partial_continues_on_a_new_line() {
        let mut s = PtySanitizer::new();
        s.feed(b"working |");
        assert_eq!(s.flush_partial(), "working |");
        s.feed(b"\rworking /");
        assert_eq!(s.flush_partial(), "\nworking /");
        assert_eq!(s.feed(b"\rdone     \n"), "\ndone     \n");
    }

    #[test]
    fn erasing_a_logged_partial_waits_for_the_replacement() {
        let mut s = PtySanitizer::new();
        s.feed(b"50%");
        assert_eq!(s.flush_partial(), "50%");
        s.feed(b"\r\x1b[K");
        assert_eq!(s.flush_partial(), "");
        assert_eq!(s.feed(b"100%\n"), "\n100%\n");
    }

    #[test]
    fn overlong_lines_are_committed_in_bounded_pieces() {
        let long = vec![b'x'; MAX_LINE_CELLS + 10];
        let mut s = PtySanitizer::new();
        let first = s.feed(&long);
        assert_eq!(first.len(), MAX_LINE_CELLS);
        assert_eq!(s.finish().len(), 10);
    }

    /// A deterministic pseudo-random source (xorshift64*), so the
    /// differential test below is the same on every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            let n = u64::try_from(n).unwrap_or(u64::MAX);
            usize::try_from(self.next() % n).unwrap_or_default()
        }

        fn byte(&mut self) -> u8 {
            self.next().to_le_bytes()[0]
        }

        /// A byte from `low` up to (not including) `low + span`.
        fn byte_in(&mut self, low: u8, span: u8) -> u8 {
            low + self.byte() % span
        }

        fn pick<'a>(&mut self, items: &[&'a [u8]]) -> &'a [u8] {
            items[self.below(items.len())]
        }
    }

    /// Pieces of terminal output that exercise the fast path, the
    /// state machine, and the hand-over between them.
    const PIECES: &[&[u8]] = &[
        b"\r",
        b"\n",
        b"\r\n",
        b"\r\r\n",
        b"\t",
        b"\x08",
        b"\x08\x08\x08",
        b"\x7f",
        b"\x00",
        b"\x07",
        b"\x0f",
        b"\x18",
        b"\x1a",
        b"\x1b",
        b"\x1b[31m",
        b"\x1b[1;31m",
        b"\x1b[0m",
        b"\x1b[m",
        b"\x1b[K",
        b"\x1b[0K",
        b"\x1b[1K",
        b"\x1b[2K",
        b"\x1b[3K",
        b"\x1b[2D",
        b"\x1b[D",
        b"\x1b[40D",
        b"\x1b[3C",
        b"\x1b[0C",
        b"\x1b[5G",
        b"\x1b[G",
        b"\x1b[;7G",
        b"\x1b[99999C",
        b"\x1b[65536D",
        b"\x1b[1;2;3;4;5;6;7;8;9;10;11;12;13;14;15;16;17;18;19;20;21;22;23;24;25;26;27;28;29;30;31;32;33;34K",
        b"\x1b[?25l",
        b"\x1b[>5D",
        b"\x1b[38:5:196m",
        b"\x1b[1$K",
        b"\x1b[1$$$K",
        b"\x1b[3\n1m",
        b"\x1b[3\x7f1m",
        b"\x1b[2\x1b[K",
        b"\x1b[1=D",
        b"\x1b]0;title\x07",
        b"\x1b]8;;http://x\x1b\\",
        b"\x1b]2;t\x18",
        b"\x1b]7779;shellctl-sync\x07",
        b"\x1b]7779;shellctl-sync\x1b\\",
        b"\x1bP1$r0m\x1b\\",
        b"\x1bPq#0\x18",
        b"\x1bX sos \x1b\\",
        b"\x1b^pm\x1b\\",
        b"\x1b_apc\x9c",
        b"\x1b(B",
        b"\x1b)0",
        b"\x1b=",
        b"\x1b#8",
        b"\x9b31m",
        b"\x9c",
        b"\x80",
        b"\xff",
        b"\xc0\xaf",
        b"\xe4\xbd",
        b"\xf0\x9f\x99",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
        b"\xc2\x85",
        b"\xc2\xa0",
        b"\xc2",
        b"\xe4",
        b"\xf0",
        b"\xc2\xc2",
        b"\x1b\x7f\x1a",
        "\u{4f60}\u{597d}".as_bytes(),
        "\u{1F642}".as_bytes(),
        "\u{e9}t\u{e9}".as_bytes(),
        b"hello",
        b"progress 45%",
        b" ",
        b"~",
        b"a",
    ];

    /// A small alphabet for the hand-over between the two paths: endings
    /// that leave `vte` out of its ground state without a dispatch (an
    /// ignored CSI, strings cancelled by CAN/SUB or ended by ST as a C1
    /// byte), an ESC alone, text, and pieces of characters.
    const HAND_OVER: &[&[u8]] = &[
        b"\x1b[1=D",
        b"\x1b]2;t\x18",
        b"\x1b\x7f\x1a",
        b"\x1b_a\x9c",
        b"\x1b[31m",
        b"\x1b",
        b"a",
        b" ",
        b"\n",
        b"\r",
        b"\xc2",
        b"\xe4",
        b"\xf0\x9f",
        b"\x80",
        b"\xbd",
    ];

    fn random_input(rng: &mut Rng) -> Vec<u8> {
        let mut data = Vec::new();
        if rng.below(3) == 0 {
            for _ in 0..rng.below(40) {
                data.extend_from_slice(rng.pick(HAND_OVER));
            }
            return data;
        }
        for _ in 0..rng.below(60) {
            match rng.below(10) {
                0..=4 => data.extend_from_slice(rng.pick(PIECES)),
                5..=7 => {
                    // A run of printable ASCII, sometimes long.
                    let len = if rng.below(8) == 0 {
                        rng.below(300)
                    } else {
                        rng.below(20)
                    };
                    data.extend((0..len).map(|_| rng.byte_in(b' ', 95)));
                }
                8 => data.extend((0..rng.below(6)).map(|_| rng.byte())),
                _ => data.extend((0..rng.below(6)).map(|_| rng.byte_in(0x80, 0x80))),
            }
        }
        data
    }

    /// Feeds `data` to both sanitizers cut at random points, with random
    /// partial-line flushes, and requires the same output at every step.
    fn run_both(rng: &mut Rng, data: &[u8], case: usize) {
        let mut fast = PtySanitizer::new();
        let mut slow = PtySanitizer::state_machine_only();
        let mut at = 0;
        let mut step = 0;
        while at < data.len() {
            let len = match rng.below(4) {
                0 => 1,
                1 => rng.below(8),
                _ => rng.below(data.len() + 1),
            };
            let chunk = &data[at..(at + len).min(data.len())];
            at += chunk.len();
            assert_eq!(
                fast.feed(chunk),
                slow.feed(chunk),
                "case {case} step {step}: feeding {chunk:?} of {data:?}"
            );
            assert_eq!(
                fast.take_sync_marks(),
                slow.take_sync_marks(),
                "case {case}"
            );
            assert_eq!(
                fast.has_pending_partial(),
                slow.has_pending_partial(),
                "case {case} step {step}"
            );
            if rng.below(4) == 0 {
                assert_eq!(
                    fast.flush_partial(),
                    slow.flush_partial(),
                    "case {case} step {step}: flushing after {chunk:?} of {data:?}"
                );
            }
            step += 1;
        }
        assert_eq!(
            fast.finish(),
            slow.finish(),
            "case {case}: finishing {data:?}"
        );
        assert_eq!(
            fast.take_sync_marks(),
            slow.take_sync_marks(),
            "case {case}"
        );
    }

    #[test]
    fn fast_path_matches_the_state_machine_byte_for_byte() {
        let mut rng = Rng(0x5eed_1234_abcd_ef01);
        for case in 0..12_000 {
            let data = random_input(&mut rng);
            run_both(&mut rng, &data, case);
        }
    }

    #[test]
    fn fast_path_matches_the_state_machine_around_the_line_limit() {
        let mut rng = Rng(0x0dd_ba11);
        for case in 0..12 {
            // Just below, at or above the limit, then things that move the
            // cursor back into (or write past) the piece being filled.
            let mut data = vec![b'x'; MAX_LINE_CELLS - 40 + rng.below(80)];
            for _ in 0..20 {
                if rng.below(2) == 0 {
                    data.extend_from_slice(rng.pick(PIECES));
                } else {
                    // Moves that reach or cross the limit from near it.
                    data.extend_from_slice(rng.pick(&[
                        b"\x1b[20C",
                        b"\x1b[100C",
                        b"\x1b[30D",
                        b"\r\x1b[1000000C",
                        "\u{e9}".as_bytes(),
                    ]));
                }
                data.extend((0..rng.below(60)).map(|_| rng.byte_in(b'a', 26)));
            }
            if case % 3 == 0 {
                data.extend(vec![b'y'; MAX_LINE_CELLS + 5]);
            }
            run_both(&mut rng, &data, case);
        }
    }
}
