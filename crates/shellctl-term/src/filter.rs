//! The `sanitize-pty` filter loop: PTY bytes from a reader, clean text to a
//! writer, with live lines and prompts.
//!
//! Each completed line is written (and flushed) as soon as its newline
//! arrives, never held back for a fuller buffer, so a waiter sees a running
//! job's output at once. A line without a newline yet (a prompt like
//! `Name: ` or `[y/N] `) is written once the input has been quiet for
//! [`PARTIAL_LINE_QUIET`]; see [`crate::sanitize`] for how later changes to
//! such a line are logged.
//!
//! Reading happens on a helper thread that hands chunks over a bounded
//! channel, so the loop can wait for "next chunk or quiet interval" without
//! polling; the bound gives back-pressure to a fast producer.

use crate::sanitize::PtySanitizer;
use std::io::{self, Read, Write};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

/// How long input must be quiet before a pending partial line is written.
///
/// 50 ms: long enough that a program printing a line in several writes (or a
/// progress bar redrawing many times a second) is not cut into pieces, short
/// enough that a prompt shows up well within a waiter's idle flush (0.5 s by
/// default).
pub const PARTIAL_LINE_QUIET: Duration = Duration::from_millis(50);

const READ_CHUNK: usize = 64 * 1024;
const CHANNEL_DEPTH: usize = 8;

/// Settings of [`run_filter`].
#[derive(Debug, Clone, Copy)]
pub struct FilterOptions {
    /// Quiet interval before a pending partial line is written.
    pub partial_line_quiet: Duration,
}

impl Default for FilterOptions {
    fn default() -> Self {
        FilterOptions {
            partial_line_quiet: PARTIAL_LINE_QUIET,
        }
    }
}

/// Sanitizes everything `input` yields into `output` until end of input.
///
/// Returns the number of bytes written. A read error ends the loop after
/// writing what was already sanitized and is returned; so is a write error.
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
    let (chunks_tx, chunks_rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(CHANNEL_DEPTH);
    let reader = thread::Builder::new()
        .name("sanitize-pty-reader".to_owned())
        .spawn(move || read_chunks(input, &chunks_tx))?;

    let mut sanitizer = PtySanitizer::new();
    let mut written = 0u64;
    let mut write = |text: &str, output: &mut W| -> io::Result<()> {
        if !text.is_empty() {
            output.write_all(text.as_bytes())?;
            output.flush()?;
            written += text.len() as u64;
        }
        Ok(())
    };

    let outcome = loop {
        let next = if sanitizer.has_pending_partial() {
            chunks_rx.recv_timeout(options.partial_line_quiet)
        } else {
            chunks_rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        };
        match next {
            Ok(Ok(chunk)) => {
                if let Err(err) = write(&sanitizer.feed(&chunk), output) {
                    break Err(err);
                }
                for _ in 0..sanitizer.take_sync_marks() {
                    on_sync();
                }
            }
            Ok(Err(read_err)) => break Err(read_err),
            Err(RecvTimeoutError::Timeout) => {
                if let Err(err) = write(&sanitizer.flush_partial(), output) {
                    break Err(err);
                }
            }
            Err(RecvTimeoutError::Disconnected) => break Ok(()),
        }
    };
    // Whatever ended the loop, the text already decoded belongs in the log.
    let tail = write(&sanitizer.finish(), output);
    // Unblock the reader if it waits on a full channel, then reap it.
    drop(chunks_rx);
    let _ = reader.join();
    outcome.and(tail).map(|()| written)
}

fn read_chunks<R: Read>(mut input: R, chunks: &mpsc::SyncSender<io::Result<Vec<u8>>>) {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        match input.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if chunks.send(Ok(buf[..n].to_vec())).is_err() {
                    return;
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
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
}
