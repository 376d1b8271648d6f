//! An incremental parser of Server-Sent Events (`text/event-stream`), as
//! the [HTML standard] defines the format, for the push routes.
//!
//! Bytes go in as they arrive ([`SseParser::feed`]), in chunks split
//! anywhere: inside a line, inside a UTF-8 character, between the CR and
//! the LF of a CRLF. Complete events come out ([`SseParser::next_event`]).
//! Lines end at LF, CRLF or CR; a line `field: value` sets a field (one
//! space after the colon is dropped), a line starting with `:` is a
//! comment (keep-alives), a blank line dispatches the event. Fields:
//! `event` names the event, `data` lines are joined with `\n`, `id` sets
//! the id buffer (an id containing NUL is ignored), which becomes the last
//! event id when the event is dispatched (kept from event to event and
//! across reconnections, so an id in an event that a broken connection
//! cut short never counts), and `retry` and unknown fields are ignored. An event whose data is empty is not dispatched, as the
//! standard says. A byte-order mark at the very start is dropped, and
//! invalid UTF-8 becomes U+FFFD.
//!
//! The parser is bounded: an event (its pending line plus the data
//! gathered so far) larger than the limit is refused with
//! [`SseError::EventTooLarge`] instead of growing the buffers without end.
//!
//! [HTML standard]: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation

use std::collections::VecDeque;

/// Default bound of one event: 16 MiB (a job stream's events carry at most
/// 64 KiB of output, JSON-escaped).
pub const DEFAULT_MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// The event name of an event without an `event:` field.
pub const DEFAULT_EVENT_NAME: &str = "message";

/// The UTF-8 byte-order mark, dropped once at the start of a stream.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// Its name: the last `event:` field, or `message` without one.
    pub event: String,
    /// Its `data:` lines, joined with `\n`.
    pub data: String,
    /// The last event id when it was dispatched: set by this event's `id:`
    /// field or kept from an earlier event (empty: no id yet). A client
    /// that reconnects sends it back as `Last-Event-ID`.
    pub id: String,
}

/// Why the parser refused its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// An event grew larger than the bound.
    #[error("an event is larger than {limit} bytes")]
    EventTooLarge {
        /// The bound, in bytes.
        limit: usize,
    },
}

/// An incremental, bounded Server-Sent Events parser; see the
/// [module](self) documentation.
#[derive(Debug, Clone)]
pub struct SseParser {
    /// Bytes of the line being read (its end not seen yet).
    line: Vec<u8>,
    /// The last byte fed was a CR that ended a line: an LF right after it
    /// belongs to the same line end.
    after_cr: bool,
    /// No line of this connection was completed yet (a BOM may lead).
    at_start: bool,
    /// The `data` buffer: each data line and a `\n`.
    data: String,
    /// The `event` buffer.
    event: String,
    /// The last event id buffer: set by `id` fields.
    id_buffer: String,
    /// The last event id: the id buffer at the last dispatch (kept across
    /// events and reconnections).
    last_id: String,
    /// Events dispatched, not yet taken.
    ready: VecDeque<SseEvent>,
    /// Bound of one event, in bytes.
    max_event_bytes: usize,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    /// A parser with the default bound ([`DEFAULT_MAX_EVENT_BYTES`]).
    pub fn new() -> Self {
        Self::with_max_event_bytes(DEFAULT_MAX_EVENT_BYTES)
    }

    /// A parser that refuses events larger than `max_event_bytes` (the
    /// line being read plus the data gathered for the event).
    pub fn with_max_event_bytes(max_event_bytes: usize) -> Self {
        SseParser {
            line: Vec::new(),
            after_cr: false,
            at_start: true,
            data: String::new(),
            event: String::new(),
            id_buffer: String::new(),
            last_id: String::new(),
            ready: VecDeque::new(),
            max_event_bytes,
        }
    }

    /// The last event id seen (empty: none yet).
    pub fn last_event_id(&self) -> &str {
        &self.last_id
    }

    /// Starts a new connection: drops the partial line and the event being
    /// gathered (a connection that broke mid-event never dispatches it, nor
    /// its id) and events not yet taken, and keeps the last event id, as
    /// the standard's reconnection does.
    pub fn reconnect(&mut self) {
        self.line.clear();
        self.after_cr = false;
        self.at_start = true;
        self.data.clear();
        self.event.clear();
        self.id_buffer.clone_from(&self.last_id);
        self.ready.clear();
    }

    /// Feeds the next bytes of the stream. Events completed by them are
    /// queued for [`next_event`](Self::next_event). After an error the
    /// parser's state is unspecified: start over with
    /// [`reconnect`](Self::reconnect) or a new parser.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), SseError> {
        while !bytes.is_empty() {
            if self.after_cr {
                self.after_cr = false;
                if bytes[0] == b'\n' {
                    bytes = &bytes[1..];
                    continue;
                }
            }
            if let Some(end) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
                self.push_line_bytes(&bytes[..end])?;
                self.after_cr = bytes[end] == b'\r';
                bytes = &bytes[end + 1..];
                self.end_line()?;
            } else {
                self.push_line_bytes(bytes)?;
                bytes = &[];
            }
        }
        Ok(())
    }

    /// The next dispatched event, if any.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        self.ready.pop_front()
    }

    /// Appends to the current line, within the bound.
    fn push_line_bytes(&mut self, bytes: &[u8]) -> Result<(), SseError> {
        self.check_size(self.line.len() + bytes.len())?;
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    /// Refuses an event whose pending line would be `line_len` bytes.
    fn check_size(&self, line_len: usize) -> Result<(), SseError> {
        if line_len.saturating_add(self.data.len()) > self.max_event_bytes {
            return Err(SseError::EventTooLarge {
                limit: self.max_event_bytes,
            });
        }
        Ok(())
    }

    /// Interprets the line just completed.
    fn end_line(&mut self) -> Result<(), SseError> {
        let mut raw = std::mem::take(&mut self.line);
        let mut line: &[u8] = &raw;
        if std::mem::take(&mut self.at_start) {
            line = line.strip_prefix(BOM).unwrap_or(line);
        }
        if line.is_empty() {
            self.dispatch();
        } else if line[0] != b':' {
            let (field, value) = match line.iter().position(|&b| b == b':') {
                Some(colon) => {
                    let value = &line[colon + 1..];
                    (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
                }
                None => (line, &b""[..]),
            };
            self.field(field, value)?;
        }
        // Reuse the line's allocation for the next one.
        raw.clear();
        self.line = raw;
        Ok(())
    }

    /// Applies one field.
    fn field(&mut self, field: &[u8], value: &[u8]) -> Result<(), SseError> {
        match field {
            b"event" => self.event = String::from_utf8_lossy(value).into_owned(),
            b"data" => {
                let value = String::from_utf8_lossy(value);
                // The line was within the bound; the data it joins must be too.
                self.check_size(value.len() + 1)?;
                self.data.push_str(&value);
                self.data.push('\n');
            }
            b"id" if !value.contains(&0) => {
                self.id_buffer = String::from_utf8_lossy(value).into_owned();
            }
            // `retry` (reconnection time) is the caller's business; other
            // fields are ignored, as the standard says.
            _ => {}
        }
        Ok(())
    }

    /// The blank line: the id buffer becomes the last event id (also for
    /// an event without data), and the event gathered is queued if it has
    /// data.
    fn dispatch(&mut self) {
        self.last_id.clone_from(&self.id_buffer);
        let event = std::mem::take(&mut self.event);
        if self.data.is_empty() {
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop();
        self.ready.push_back(SseEvent {
            event: if event.is_empty() {
                DEFAULT_EVENT_NAME.to_owned()
            } else {
                event
            },
            data,
            id: self.last_id.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, data: &str, id: &str) -> SseEvent {
        SseEvent {
            event: name.to_owned(),
            data: data.to_owned(),
            id: id.to_owned(),
        }
    }

    /// All events `chunks` make, fed one after the other.
    fn parse_chunks(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        let mut events = Vec::new();
        for chunk in chunks {
            parser.feed(chunk).unwrap();
            events.extend(std::iter::from_fn(|| parser.next_event()));
        }
        events
    }

    /// Every way to cut `input` into two chunks, and byte by byte, gives
    /// the same events as the whole.
    fn assert_split_anywhere(input: &[u8], expected: &[SseEvent]) {
        assert_eq!(parse_chunks(&[input]), expected, "whole");
        for cut in 0..=input.len() {
            let (a, b) = input.split_at(cut);
            assert_eq!(parse_chunks(&[a, b]), expected, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(parse_chunks(&bytes), expected, "byte by byte");
    }

    #[test]
    fn named_events_with_ids() {
        let input = b"event: output\nid: 3\ndata: {\"offset\":0,\"text\":\"hi\\n\"}\n\n\
                      event: end\nid: 3\ndata: {}\n\n";
        assert_split_anywhere(
            input,
            &[
                event("output", r#"{"offset":0,"text":"hi\n"}"#, "3"),
                event("end", "{}", "3"),
            ],
        );
    }

    #[test]
    fn crlf_and_cr_line_ends_are_lines_too() {
        let expected = [event("a", "1", "7"), event("b", "2", "7")];
        assert_split_anywhere(
            b"event: a\r\nid: 7\r\ndata: 1\r\n\r\nevent: b\r\ndata: 2\r\n\r\n",
            &expected,
        );
        assert_split_anywhere(
            b"event: a\rid: 7\rdata: 1\r\revent: b\rdata: 2\r\r",
            &expected,
        );
        assert_split_anywhere(
            b"event: a\nid: 7\r\ndata: 1\r\revent: b\ndata: 2\r\n\n",
            &expected,
        );
    }

    #[test]
    fn a_cr_then_lf_in_the_next_chunk_ends_one_line() {
        // Were the LF a second line end, it would dispatch the event at
        // once; here it must wait for the real blank line.
        let mut parser = SseParser::new();
        parser.feed(b"data: x\r").unwrap();
        parser.feed(b"\n").unwrap();
        assert_eq!(parser.next_event(), None);
        parser.feed(b"\r").unwrap();
        assert_eq!(parser.next_event(), Some(event("message", "x", "")));
        // The LF after that CR, in its own chunk, is no blank line either.
        parser.feed(b"\n").unwrap();
        parser.feed(b"data: y\n").unwrap();
        assert_eq!(parser.next_event(), None);
    }

    #[test]
    fn multi_line_data_is_joined_with_newlines() {
        assert_split_anywhere(
            b"data: one\ndata:two\ndata\ndata:  four\n\n",
            &[event("message", "one\ntwo\n\n four", "")],
        );
        // `data:` alone is an empty line of data, and dispatches.
        assert_split_anywhere(b"data:\n\n", &[event("message", "", "")]);
    }

    #[test]
    fn comments_and_unknown_fields_are_ignored() {
        assert_split_anywhere(
            b": keep-alive\n\n:\nretry: 10\nfoo: bar\nevent: x\n: between\ndata: d\n\n: keep-alive\n\n",
            &[event("x", "d", "")],
        );
    }

    #[test]
    fn events_without_data_are_not_dispatched_and_reset_the_name() {
        assert_split_anywhere(
            b"event: lonely\nid: 4\n\ndata: d\n\n",
            &[event("message", "d", "4")],
        );
        // Their id still becomes the last event id.
        let mut parser = SseParser::new();
        parser.feed(b"id: 4\n").unwrap();
        assert_eq!(parser.last_event_id(), "");
        parser.feed(b"\n").unwrap();
        assert_eq!(parser.last_event_id(), "4");
        assert_eq!(parser.next_event(), None);
    }

    #[test]
    fn ids_persist_reset_and_ignore_nul() {
        assert_split_anywhere(
            b"id: 1\ndata: a\n\ndata: b\n\nid: 2\0x\ndata: c\n\nid\ndata: d\n\nid: 5\ndata: e\n\n",
            &[
                event("message", "a", "1"),
                event("message", "b", "1"),
                event("message", "c", "1"),
                event("message", "d", ""),
                event("message", "e", "5"),
            ],
        );
    }

    #[test]
    fn utf8_split_inside_a_character_decodes_whole() {
        let input = "event: output\ndata: {\"text\":\"héllo ✓ 🦀\"}\n\n".as_bytes();
        assert_split_anywhere(input, &[event("output", "{\"text\":\"héllo ✓ 🦀\"}", "")]);
    }

    #[test]
    fn a_leading_bom_is_dropped_and_bad_utf8_replaced() {
        assert_split_anywhere(b"\xEF\xBB\xBFdata: a\n\n", &[event("message", "a", "")]);
        assert_split_anywhere(b"data: \xFFz\n\n", &[event("message", "\u{FFFD}z", "")]);
    }

    #[test]
    fn one_space_after_the_colon_is_dropped() {
        assert_split_anywhere(b"event:x\ndata:   y \n\n", &[event("x", "  y ", "")]);
    }

    #[test]
    fn a_partial_event_at_a_reconnection_is_dropped_but_the_id_kept() {
        let mut parser = SseParser::new();
        parser
            .feed(b"id: 9\ndata: a\n\nevent: b\nid: 12\ndata: half")
            .unwrap();
        assert_eq!(parser.next_event(), Some(event("message", "a", "9")));
        // The id of the event cut short does not count.
        assert_eq!(parser.last_event_id(), "9");
        parser.reconnect();
        assert_eq!(parser.last_event_id(), "9");
        parser.feed(b"\n\ndata: c\n\n").unwrap();
        assert_eq!(parser.next_event(), Some(event("message", "c", "9")));
        assert_eq!(parser.next_event(), None);
    }

    #[test]
    fn events_over_the_bound_are_refused() {
        let too_large = Err(SseError::EventTooLarge { limit: 16 });
        // One long line, without its end yet.
        let mut parser = SseParser::with_max_event_bytes(16);
        assert_eq!(parser.feed(b"data: 0123456789"), Ok(()));
        assert_eq!(parser.feed(b"abc"), too_large);
        // Many short data lines: 13 bytes of data gathered, then a line
        // of 9 more.
        let mut parser = SseParser::with_max_event_bytes(20);
        assert_eq!(parser.feed(b"data:0123\ndata:4567\ndata:89\n"), Ok(()));
        assert_eq!(
            parser.feed(b"data:abcd\n"),
            Err(SseError::EventTooLarge { limit: 20 })
        );
        // A long comment counts too.
        let mut parser = SseParser::with_max_event_bytes(16);
        assert_eq!(parser.feed(&[b':'; 17]), too_large);
        // Many events, each within the bound, are fine.
        let mut parser = SseParser::with_max_event_bytes(16);
        for _ in 0..100 {
            parser.feed(b"data: 0123456789\n\n").unwrap();
            assert!(parser.next_event().is_some());
        }
    }
}
