//! The `sanitize-pty` filter loop: PTY bytes from a reader, clean text to a
//! writer, with live lines and prompts.
//!
//! Each completed line is written (and flushed) as soon as its newline
//! arrives, so a waiter sees a running job's output at once. Only while
//! output floods in (text arriving within [`FLOOD_COALESCE`] of the last
//! write) is it gathered, for at most that long (or 1 MiB), so a fast job
//! makes a few hundred log writes a second rather than thousands. A line
//! without a newline yet (a prompt like `Name: ` or `[y/N] `) is written
//! once the input has been quiet for [`PARTIAL_LINE_QUIET`]; see
//! [`crate::sanitize`] for how later changes to such a line are logged.
//!
//! Reading happens on a helper thread that hands chunks over a bounded
//! channel, so the loop can wait for "next chunk or quiet interval" without
//! polling; the bound gives back-pressure to a fast producer. Read buffers
//! go back to the reader once sanitized, so a flood of output is not one
//! allocation and copy per chunk.

use crate::sanitize::PtySanitizer;
use std::io::{self, Read, Write};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// How long input must be quiet before a pending partial line is written.
///
/// 50 ms: long enough that a program printing a line in several writes (or a
/// progress bar redrawing many times a second) is not cut into pieces, short
/// enough that a prompt shows up well within a waiter's idle flush (0.5 s by
/// default).
pub const PARTIAL_LINE_QUIET: Duration = Duration::from_millis(50);

/// Shortest spacing of log writes while output floods in (see
/// [`FilterOptions::flood_coalesce`]).
pub const FLOOD_COALESCE: Duration = Duration::from_millis(2);

/// Gathered text is written once it reaches this size even before
/// [`FLOOD_COALESCE`] has passed, so a flood is written in pieces that stay
/// in the CPU's cache (and memory stays bounded) while the writes still
/// come at most about a thousand a second at 1 GB/s.
const GATHER_LIMIT: usize = 1 << 20;

/// The reader hands over at most this much per chunk. A pipe yields at
/// most its buffer (64 KiB by default) per read, and only the bytes read
/// are ever touched. A file fills the chunk, and fewer hand-overs mean
/// fewer wake-ups between the threads: with 64 KiB chunks, `futex` wakes
/// took a fifth of the samples of `sanitize-pty` over a plain-text file
/// on a 2-core VM (`perf record`) …
const READ_CHUNK: usize = 256 * 1024;
/// … and runs at most this many chunks ahead (1 MiB of buffers; tmux writes
/// a few KiB at a time). The reader keeps draining the pipe while the
/// sanitizer is busy, so a burst does not pile up in tmux's pipe buffer;
/// the bound keeps it from piling up here instead.
const CHANNEL_DEPTH: usize = 4;

/// Settings of [`run_filter`].
#[derive(Debug, Clone, Copy)]
pub struct FilterOptions {
    /// Quiet interval before a pending partial line is written.
    pub partial_line_quiet: Duration,
    /// Text that arrives within this long of the previous write is
    /// gathered and written when it has passed (or once 1 MiB is
    /// gathered); text after a longer gap is written at once. Zero writes
    /// every chunk at once.
    pub flood_coalesce: Duration,
}

impl Default for FilterOptions {
    fn default() -> Self {
        FilterOptions {
            partial_line_quiet: PARTIAL_LINE_QUIET,
            flood_coalesce: FLOOD_COALESCE,
        }
    }
}

/// Sanitizes everything `input` yields into `output` until end of input.
///
/// Returns the number of bytes written. A read error ends the loop after
/// writing what was already sanitized and is returned. A write error is
/// returned at once, without writing more and without waiting for the
/// reader thread: that thread may be blocked reading an input that stays
/// silent for hours (a pane's output pipe), and the caller should learn of
/// the failure now, not at the next output. The thread is left to finish by
/// itself at its next read; its chunks go nowhere.
pub fn run_filter<R, W>(input: R, output: &mut W, options: FilterOptions) -> io::Result<u64>
where
    R: Read + Send + 'static,
    W: Write,
{
    run_filter_with_sync(input, output, options, &mut || {})
}

/// [`run_filter`], calling `on_sync` each time a
/// [`SYNC_SEQUENCE`](crate::sanitize::SYNC_SEQUENCE) arrives, after all
/// text before it has been written and flushed.
pub fn run_filter_with_sync<R, W>(
    input: R,
    output: &mut W,
    options: FilterOptions,
    on_sync: &mut dyn FnMut(),
) -> io::Result<u64>
where
    R: Read + Send + 'static,
    W: Write,
{
    let (chunks_tx, chunks_rx) = mpsc::sync_channel::<io::Result<Chunk>>(CHANNEL_DEPTH);
    // Buffers handed back for reuse; never more than were handed out.
    let (spent_tx, spent_rx) = mpsc::sync_channel::<Vec<u8>>(CHANNEL_DEPTH);
    let reader = thread::Builder::new()
        .name("sanitize-pty-reader".to_owned())
        .spawn(move || read_chunks(input, &chunks_tx, &spent_rx))?;

    let mut sanitizer = PtySanitizer::new();
    let mut log = CoalescingWriter::new(output, options.flood_coalesce);
    // When the last chunk arrived (a pending partial line is written once
    // the input has been quiet for `partial_line_quiet` since).
    let mut last_chunk = Instant::now();
    let outcome = loop {
        let partial_due = sanitizer
            .has_pending_partial()
            .then(|| last_chunk + options.partial_line_quiet);
        let next = match [partial_due, log.due()].into_iter().flatten().min() {
            Some(at) => chunks_rx.recv_timeout(at.saturating_duration_since(Instant::now())),
            None => chunks_rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let step = match next {
            Ok(Ok(chunk)) => {
                last_chunk = Instant::now();
                sanitizer.feed_into(chunk.bytes(), &mut log.unwritten);
                // If the reader has stopped or has spares enough, the
                // buffer is simply dropped.
                let _ = spent_tx.try_send(chunk.buf);
                let syncs = sanitizer.take_sync_marks();
                // A sync mark promises that everything before it is in the
                // log, so it never waits for coalescing.
                log.settle(syncs > 0).map(|()| {
                    for _ in 0..syncs {
                        on_sync();
                    }
                })
            }
            // The reader sends a read error last and stops, so it can be
            // joined below without waiting.
            Ok(Err(read_err)) => break Err(read_err),
            Err(RecvTimeoutError::Timeout) => {
                let now = Instant::now();
                if partial_due.is_some_and(|at| now >= at) {
                    let partial = sanitizer.flush_partial();
                    log.add(&partial, true)
                } else {
                    log.write_out()
                }
            }
            Err(RecvTimeoutError::Disconnected) => break Ok(()),
        };
        // A write error returns at once, without joining the reader: it may
        // be blocked in a read that returns only when the input next yields
        // or closes. Returning drops `chunks_rx`, so once that read returns
        // the reader's send fails and it stops by itself.
        step?;
    };
    // The input ended or failed: the text already decoded belongs in the log.
    let tail = log.add(&sanitizer.finish(), true);
    // The reader has stopped (its sender is gone, or it sent its read error
    // and returned), so this join does not wait.
    let _ = reader.join();
    outcome.and(tail).map(|()| log.written)
}

/// Writes sanitized text to the log: at once when the last write is at
/// least `coalesce` old, else gathered until then. An ordinary line goes
/// out the moment it is complete; a flood of output (thousands of chunks a
/// second) becomes a few hundred writes a second, and so a few hundred
/// wake-ups for the job's waiters instead of thousands.
struct CoalescingWriter<'w, W: Write> {
    output: &'w mut W,
    coalesce: Duration,
    unwritten: String,
    last_write: Option<Instant>,
    written: u64,
}

impl<'w, W: Write> CoalescingWriter<'w, W> {
    fn new(output: &'w mut W, coalesce: Duration) -> Self {
        CoalescingWriter {
            output,
            coalesce,
            unwritten: String::new(),
            last_write: None,
            written: 0,
        }
    }

    /// When gathered text must be written, if any is waiting.
    fn due(&self) -> Option<Instant> {
        if self.unwritten.is_empty() {
            return None;
        }
        Some(
            self.last_write
                .map_or_else(Instant::now, |at| at + self.coalesce),
        )
    }

    /// Adds `text`; writes everything gathered if `now` or if due.
    fn add(&mut self, text: &str, now: bool) -> io::Result<()> {
        self.unwritten.push_str(text);
        self.settle(now)
    }

    /// Writes everything gathered (including text appended to `unwritten`
    /// directly) if `now`, if due, or if [`GATHER_LIMIT`] is reached.
    fn settle(&mut self, now: bool) -> io::Result<()> {
        let due = self.unwritten.len() >= GATHER_LIMIT
            || self.due().is_some_and(|at| Instant::now() >= at);
        if now || due { self.write_out() } else { Ok(()) }
    }

    /// Writes (and flushes) everything gathered.
    fn write_out(&mut self) -> io::Result<()> {
        if self.unwritten.is_empty() {
            return Ok(());
        }
        self.output.write_all(self.unwritten.as_bytes())?;
        self.output.flush()?;
        self.written += self.unwritten.len() as u64;
        self.unwritten.clear();
        self.last_write = Some(Instant::now());
        Ok(())
    }
}

/// Bytes read in one go: the first `len` of `buf`.
struct Chunk {
    buf: Vec<u8>,
    len: usize,
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

fn read_chunks<R: Read>(
    mut input: R,
    chunks: &mpsc::SyncSender<io::Result<Chunk>>,
    spent: &mpsc::Receiver<Vec<u8>>,
) {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        match input.read(&mut buf) {
            Ok(0) => return,
            Ok(len) => {
                let next = spent.try_recv().unwrap_or_else(|_| vec![0u8; READ_CHUNK]);
                let chunk = Chunk {
                    buf: std::mem::replace(&mut buf, next),
                    len,
                };
                if chunks.send(Ok(chunk)).is_err() {
                    return;
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => {
                let _ = chunks.send(Err(err));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::sync::{Arc, Mutex};

    #[test]
    fn whole_input_is_sanitized_to_the_end() {
        let mut out = Vec::new();
        let input = Cursor::new(b"\x1b[32mok\x1b[0m\r\nprompt> ".to_vec());
        let n = run_filter(input, &mut out, FilterOptions::default()).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "ok\nprompt> ");
        assert_eq!(n, 11);
    }

    /// A writer whose contents the test can inspect while the filter runs.
    #[derive(Clone, Default)]
    struct SharedBuf(Arc<Mutex<Vec<u8>>>, Arc<(Mutex<usize>, std::sync::Condvar)>);

    impl Write for SharedBuf {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            let (count, cond) = &*self.1;
            *count.lock().unwrap() += 1;
            cond.notify_all();
            Ok(())
        }
    }

    impl SharedBuf {
        fn wait_for(&self, expected: &str) {
            let (count, cond) = &*self.1;
            let mut guard = count.lock().unwrap();
            while String::from_utf8_lossy(&self.0.lock().unwrap()) != expected {
                guard = cond.wait(guard).unwrap();
            }
        }
    }

    #[test]
    fn lines_and_prompts_are_written_before_end_of_input() {
        let (input, mut feed) = std::io::pipe().unwrap();
        let sink = SharedBuf::default();
        let mut filter_sink = sink.clone();
        let filter =
            thread::spawn(move || run_filter(input, &mut filter_sink, FilterOptions::default()));
        feed.write_all(b"line one\r\n").unwrap();
        sink.wait_for("line one\n");
        feed.write_all(b"Name: ").unwrap();
        sink.wait_for("line one\nName: ");
        feed.write_all(b"bob\r\n").unwrap();
        sink.wait_for("line one\nName: bob\n");
        drop(feed);
        filter.join().unwrap().unwrap();
    }

    /// Yields the given chunks, one per read.
    struct Chunks(std::collections::VecDeque<Vec<u8>>);

    impl Read for Chunks {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.pop_front() {
                Some(chunk) => {
                    buf[..chunk.len()].copy_from_slice(&chunk);
                    Ok(chunk.len())
                }
                None => Ok(0),
            }
        }
    }

    fn lines(n: usize) -> Chunks {
        Chunks(
            (0..n)
                .map(|i| format!("line {i}\r\n").into_bytes())
                .collect(),
        )
    }

    fn never(coalesce: Duration) -> FilterOptions {
        FilterOptions {
            partial_line_quiet: Duration::from_secs(3600),
            flood_coalesce: coalesce,
        }
    }

    #[test]
    fn a_flood_is_gathered_into_few_writes_and_nothing_is_lost() {
        let expected: String =
            (0..500).fold(String::new(), |text, i| text + &format!("line {i}\n"));
        let sink = SharedBuf::default();
        let mut gathering = sink.clone();
        run_filter(lines(500), &mut gathering, never(Duration::from_secs(3600))).unwrap();
        assert_eq!(String::from_utf8_lossy(&sink.0.lock().unwrap()), expected);
        // The first line at once, the rest when the input ended.
        assert_eq!(*sink.1.0.lock().unwrap(), 2);

        let sink = SharedBuf::default();
        let mut eager = sink.clone();
        run_filter(lines(500), &mut eager, never(Duration::ZERO)).unwrap();
        assert_eq!(String::from_utf8_lossy(&sink.0.lock().unwrap()), expected);
        assert_eq!(*sink.1.0.lock().unwrap(), 500);
    }

    #[test]
    fn a_sync_mark_is_acknowledged_only_after_the_text_before_it_is_written() {
        let mut chunks = vec![b"first\r\n".to_vec(), b"before\r\n".to_vec()];
        chunks.push(crate::sanitize::SYNC_SEQUENCE.to_vec());
        chunks.push(b"after\r\n".to_vec());
        let sink = SharedBuf::default();
        let mut filter_sink = sink.clone();
        let mut seen_at_sync = Vec::new();
        run_filter_with_sync(
            Chunks(chunks.into()),
            &mut filter_sink,
            never(Duration::from_secs(3600)),
            &mut || {
                seen_at_sync.push(String::from_utf8_lossy(&sink.0.lock().unwrap()).into_owned());
            },
        )
        .unwrap();
        assert_eq!(seen_at_sync, vec!["first\nbefore\n".to_owned()]);
        assert_eq!(
            String::from_utf8_lossy(&sink.0.lock().unwrap()),
            "first\nbefore\nafter\n"
        );
    }

    /// Yields `text` once, then fails.
    struct FailsAfter(Option<&'static [u8]>);

    impl Read for FailsAfter {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.take() {
                Some(text) => {
                    buf[..text.len()].copy_from_slice(text);
                    Ok(text.len())
                }
                None => Err(io::Error::other("pane read failed")),
            }
        }
    }

    #[test]
    fn a_read_error_is_returned_after_the_text_before_it_is_written() {
        let sink = SharedBuf::default();
        let mut filter_sink = sink.clone();
        let err = run_filter(
            FailsAfter(Some(b"done\r\nName: ")),
            &mut filter_sink,
            never(Duration::from_secs(3600)),
        )
        .expect_err("the read error is reported");
        assert_eq!(err.to_string(), "pane read failed");
        assert_eq!(
            String::from_utf8_lossy(&sink.0.lock().unwrap()),
            "done\nName: "
        );
    }

    /// A log whose every write fails, as on a full disk.
    struct FailingLog;

    impl Write for FailingLog {
        fn write(&mut self, _data: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("log write failed"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// How long the test below waits before calling the filter hung. It is a
    /// liveness check, not a speed limit: the error is due as soon as the
    /// first line is written, and only a filter that waits for the silent
    /// input instead would take anywhere near this long.
    const HANG_DETECTOR: Duration = Duration::from_secs(60);

    #[test]
    fn a_failed_log_write_is_returned_while_the_input_stays_silent() {
        let (input, mut feed) = std::io::pipe().unwrap();
        feed.write_all(b"line one\r\n").unwrap();
        let (result_tx, result_rx) = mpsc::channel();
        thread::spawn(move || {
            let result =
                run_filter_with_sync(input, &mut FailingLog, FilterOptions::default(), &mut || {});
            let _ = result_tx.send(result);
        });
        let result = result_rx
            .recv_timeout(HANG_DETECTOR)
            .expect("the filter hung on the silent input after the log write failed");
        let err = result.expect_err("the failed log write is reported");
        assert_eq!(err.to_string(), "log write failed");
        // The pane's output pipe is open and silent until here.
        drop(feed);
    }
}
