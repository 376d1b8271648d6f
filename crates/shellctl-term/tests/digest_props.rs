//! Digests of real and generated logs: the budget holds, the end is kept,
//! and the markers account for exactly what is left out.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
// Test logs are a few MiB at most; offsets always fit in usize.
#![allow(clippy::cast_possible_truncation)]

use proptest::prelude::*;
use regex::Regex;
use shellctl_term::{Digest, MIN_DIGEST_BYTES, digest_file, digest_reader};
use std::fmt::Write as _;
use std::sync::LazyLock;

/// What a digest's text says about the range, checked against the range.
#[derive(Debug, Default)]
struct Walk {
    omitted_bytes: u64,
    omitted_lines: u64,
    markers: usize,
    /// Kept middle lines: the offset shown and the text.
    middle: Vec<(u64, String)>,
    /// Lines shown verbatim (head and tail), counting a cut last line.
    verbatim_lines: u64,
    /// Where the first marker starts and the last one ends.
    first_gap: Option<u64>,
    last_gap_end: Option<u64>,
}

fn number(text: &str) -> u64 {
    text.replace(',', "").parse().unwrap()
}

/// `[start, end)` of each line of `content`, relative to it.
fn line_spans(content: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut at = 0;
    for line in content.split_inclusive('\n') {
        spans.push((at, at + line.len()));
        at += line.len();
    }
    spans
}

/// Reads `digest.text` back piece by piece against `content` (the range
/// starting at absolute offset `start`), asserting that the shown parts and
/// the markers cover the range exactly once, in order.
fn walk(content: &str, start: u64, digest: &Digest) -> Walk {
    static MARKER: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"^… ([0-9,]+) (bytes?) \(([0-9,]+) (lines?)\) omitted, offsets ([0-9,]+)–([0-9,]+) …\n$",
        )
        .unwrap()
    });
    let marker = &*MARKER;
    let spans = line_spans(content);
    let end = start + content.len() as u64;
    let mut walk = Walk::default();
    let mut cursor = start;
    for piece in digest.text.split_inclusive('\n') {
        let rel = (cursor - start) as usize;
        if let Some(c) = marker.captures(piece) {
            let (bytes, lines) = (number(&c[1]), number(&c[3]));
            let (from, to) = (number(&c[5]), number(&c[6]));
            assert_eq!(&c[2] == "byte", bytes == 1, "{piece}");
            assert_eq!(&c[4] == "line", lines == 1, "{piece}");
            assert_eq!(from, cursor, "a marker starts where the text left off");
            assert!(to > from && to <= end);
            assert_eq!(to - from, bytes);
            let (rel_from, rel_to) = ((from - start) as usize, (to - start) as usize);
            let whole = spans
                .iter()
                .filter(|(a, b)| *a >= rel_from && *b <= rel_to)
                .count() as u64;
            assert_eq!(lines, whole, "lines left out entirely in {piece}");
            walk.omitted_bytes += bytes;
            walk.omitted_lines += lines;
            walk.markers += 1;
            walk.first_gap.get_or_insert(from);
            walk.last_gap_end = Some(to);
            cursor = to;
        } else if let Some(rest) = piece.strip_prefix("[offset ") {
            let (offset, shown) = rest.split_once("] ").unwrap();
            let offset = number(offset);
            let shown = shown.strip_suffix('\n').unwrap();
            assert_eq!(offset, cursor);
            assert!(content[rel..].starts_with(shown), "{piece:?}");
            let after = &content[rel + shown.len()..];
            let terminator = if after.starts_with("\r\n") {
                2
            } else {
                usize::from(after.starts_with('\n'))
            };
            cursor += (shown.len() + terminator) as u64;
            walk.middle.push((offset, shown.to_owned()));
        } else {
            assert!(
                content[rel..].starts_with(piece),
                "verbatim piece {piece:?} at {cursor}"
            );
            cursor += piece.len() as u64;
            walk.verbatim_lines += 1;
        }
    }
    assert_eq!(cursor, end, "the digest reaches the end of the range");
    assert_eq!(walk.omitted_bytes, digest.omitted_bytes);
    assert_eq!(walk.omitted_lines, digest.omitted_lines);
    walk
}

/// A log of `lines` ordinary lines, with `error_every`-th lines (offset by
/// half) being error lines, ending with `ERROR: disk full`. Returns the text
/// and the offsets of the error lines before the last one.
fn log(lines: usize, error_every: usize) -> (String, Vec<u64>) {
    let mut text = String::new();
    let mut errors = Vec::new();
    for i in 0..lines - 1 {
        if i % error_every == error_every / 2 {
            errors.push(text.len() as u64);
            writeln!(text, "step {i} failed: error code 7").unwrap();
        } else {
            writeln!(text, "line {i:06} some ordinary output").unwrap();
        }
    }
    text.push_str("ERROR: disk full\n");
    (text, errors)
}

#[test]
fn a_long_log_keeps_its_end_and_its_error_lines_within_budget() {
    let (content, errors) = log(200_000, 20_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("output.log");
    std::fs::write(&path, &content).unwrap();

    let digest = digest_file(&path, 0, None, 16_000).unwrap();
    assert!(digest.text.len() <= 16_000);
    assert!(digest.text.ends_with("\nERROR: disk full\n"));
    assert_eq!(digest.end_offset, content.len() as u64);
    let walk = walk(&content, 0, &digest);
    // Head, ten error lines with a marker before each, the tail.
    assert_eq!(walk.markers, 11);
    let kept: Vec<u64> = walk.middle.iter().map(|(offset, _)| *offset).collect();
    assert_eq!(kept, errors);
    assert!(
        walk.middle
            .iter()
            .all(|(_, line)| line.ends_with("failed: error code 7"))
    );
    let shown_lines = walk.verbatim_lines + walk.middle.len() as u64;
    assert_eq!(shown_lines + digest.omitted_lines, 200_000);
    let shown_bytes: u64 = content.len() as u64 - digest.omitted_bytes;
    assert!(
        shown_bytes > 8_000,
        "the budget is put to use: {shown_bytes}"
    );
}

#[test]
fn the_first_and_the_last_error_lines_are_kept_when_not_all_fit() {
    let (content, errors) = log(200_000, 100);
    let digest = digest_reader(content.as_bytes(), 0, content.len() as u64, 16_000).unwrap();
    assert!(digest.text.len() <= 16_000);
    let walk = walk(&content, 0, &digest);
    let head_end = walk.first_gap.unwrap();
    let tail_start = walk.last_gap_end.unwrap();
    let middle: Vec<u64> = errors
        .into_iter()
        .filter(|offset| *offset >= head_end && *offset < tail_start)
        .collect();
    let kept: Vec<u64> = walk.middle.iter().map(|(offset, _)| *offset).collect();
    let first = kept.iter().zip(&middle).take_while(|(a, b)| a == b).count();
    let last = kept
        .iter()
        .rev()
        .zip(middle.iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    assert!(first >= 5 && last >= 5, "first {first}, last {last}");
    assert_eq!(
        first + last,
        kept.len(),
        "nothing but a prefix and a suffix"
    );
    assert!(kept.len() < middle.len());
}

#[test]
fn a_sub_range_is_digested_with_absolute_offsets() {
    let (content, _) = log(5_000, 1_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("output.log");
    std::fs::write(&path, &content).unwrap();
    let (start, end) = (10_000u64, 60_000u64);
    let digest = digest_file(&path, start, Some(end), 2_000).unwrap();
    assert_eq!(digest.end_offset, end);
    walk(&content[start as usize..end as usize], start, &digest);
    // `end` is clamped to the log's size.
    let clamped = digest_file(&path, start, Some(u64::MAX), 2_000).unwrap();
    assert_eq!(clamped.end_offset, content.len() as u64);
    assert!(clamped.text.ends_with("ERROR: disk full\n"));
    // A missing log is empty.
    let missing = digest_file(&dir.path().join("none.log"), 0, None, 300).unwrap();
    assert_eq!(missing.text, "");
    assert!(digest_file(&path, start, Some(start - 1), 2_000).is_err());
}

#[test]
fn a_range_that_fits_is_verbatim() {
    let content = "a\r\nb\n\u{1F642}\nlast";
    let digest = digest_reader(content.as_bytes(), 7, 7 + content.len() as u64, 256).unwrap();
    assert_eq!(digest.text, content);
    assert_eq!((digest.omitted_bytes, digest.omitted_lines), (0, 0));
}

/// Short text from a small alphabet (no line starts like a marker or a kept
/// line). Built from a random unit rather than character by character:
/// proptest's regex strings are slow enough to dominate the test's time.
fn filler(len: std::ops::Range<usize>) -> impl Strategy<Value = String> {
    (len, "[a-z \u{e9}\u{1F642}]{1,6}")
        .prop_map(|(len, unit)| unit.chars().cycle().take(len).collect())
}

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => filler(0..30),
        2 => (
            filler(0..10),
            prop::sample::select(vec!["error", "FAILED", "Panic", "Traceback"]),
            filler(0..10),
        )
            .prop_map(|(before, word, after)| format!("{before}{word}{after}")),
        1 => filler(0..10).prop_map(|line| line + "\r"),
        1 => filler(100..700),
        1 => (filler(300..900), filler(0..50))
            .prop_map(|(before, after)| format!("{before}error{after}")),
    ]
}

fn content() -> impl Strategy<Value = String> {
    (proptest::collection::vec(line(), 1..250), any::<bool>()).prop_map(|(lines, newline)| {
        let mut text = lines.join("\n");
        if newline {
            text.push('\n');
        }
        text
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn a_digest_fits_its_budget_and_ends_with_the_range(
        content in content(),
        start in 0u64..5_000_000_000,
        budget in MIN_DIGEST_BYTES..3_000,
    ) {
        let end = start + content.len() as u64;
        let digest = digest_reader(content.as_bytes(), start, end, budget).unwrap();
        prop_assert!(digest.text.len() <= budget, "{} > {budget}", digest.text.len());
        prop_assert_eq!(digest.end_offset, end);
        if content.len() <= budget {
            prop_assert_eq!(&digest.text, &content);
        }
        // The range's final bytes: its last line, or the last 64 bytes of
        // a longer one.
        let body = content.strip_suffix('\n').unwrap_or(&content);
        let last_line = body.rfind('\n').map_or(0, |newline| newline + 1);
        let mut last = content.len().saturating_sub(64).max(last_line);
        while !content.is_char_boundary(last) {
            last += 1;
        }
        prop_assert!(digest.text.ends_with(&content[last..]));
        walk(&content, start, &digest);
    }
}
