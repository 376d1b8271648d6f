//! Searching and digesting a log with a 10 MB line takes bounded memory.
//!
//! This binary counts every allocation, so it holds a single test: a test
//! running alongside would muddle the count.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use shellctl_term::{
    LineScanner, MIN_DIGEST_BYTES, compile_pattern, digest_file, scan_range, search_log,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, keeping count of the bytes live and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// Implementing `GlobalAlloc` needs `unsafe`; each method only forwards to
// the system allocator with the caller's own arguments.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result and the most memory it held at once
/// beyond what was live before.
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let result = f();
    (result, PEAK.load(Ordering::Relaxed) - before)
}

/// Generous for 64 KiB read buffers, a 64 KiB line segment and a 16 KB
/// digest, and far below the 10 MB a whole-line buffer would take.
const BOUND: usize = 1 << 20;

#[test]
fn a_ten_megabyte_line_is_searched_and_digested_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("output.log");
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(b"first line\n").unwrap();
    let block = vec![b'x'; 1 << 20];
    for _ in 0..10 {
        file.write_all(&block).unwrap();
    }
    file.write_all(b" Segmentation fault: panic near the end")
        .unwrap();
    file.write_all(&block[..1000]).unwrap();
    file.write_all(b"\nERROR: disk full\n").unwrap();
    drop((file, block));
    let size = std::fs::metadata(&path).unwrap().len();
    let line_start = 11;
    let match_at = line_start + 10 * (1 << 20) + 1;

    let regex = compile_pattern("Segmentation fault").unwrap();
    let (found, peak) = peak_of(|| search_log(&path, &regex, 10).unwrap());
    assert!(peak < BOUND, "search_log held {peak} bytes");
    assert_eq!(found.matches.len(), 1);
    assert_eq!(found.matches[0].offset, line_start);
    assert_eq!(found.matches[0].line_number, 2);
    assert!(
        found.matches[0]
            .line
            .contains("x Segmentation fault: panic")
    );

    let (found, peak) = peak_of(|| {
        let mut scanner = LineScanner::new(regex.clone(), 0, 1);
        scan_range(&path, &mut scanner, 0, size).unwrap()
    });
    assert!(peak < BOUND, "scan_range held {peak} bytes");
    let found = found.unwrap();
    assert_eq!(
        (found.line_offset, found.match_start),
        (line_start, match_at)
    );
    assert_eq!(found.line_end, size - "ERROR: disk full\n".len() as u64);

    let (digest, peak) = peak_of(|| digest_file(&path, 0, None, 16_000).unwrap());
    assert!(peak < BOUND, "digest_file held {peak} bytes");
    assert!(digest.text.len() <= 16_000);
    assert!(digest.text.starts_with("first line\n"));
    assert!(
        digest.text.ends_with("\nERROR: disk full\n"),
        "{}",
        digest.text
    );
    // The long line is an error line: shown from just before its match.
    assert!(
        digest
            .text
            .contains("x Segmentation fault: panic near the end")
    );

    let (digest, peak) = peak_of(|| digest_file(&path, 0, None, MIN_DIGEST_BYTES).unwrap());
    assert!(peak < BOUND, "digest_file held {peak} bytes");
    assert!(digest.text.len() <= MIN_DIGEST_BYTES);
    assert!(digest.text.ends_with("\nERROR: disk full\n"));
}
