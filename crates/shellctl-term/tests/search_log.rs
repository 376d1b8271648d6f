//! Per-line search over real log files: offsets, line numbers, limits, and
//! the waiter's incremental scans.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use shellctl_term::search::{MAX_LINE_BYTES, MAX_RETURNED_LINE};
use shellctl_term::{LineScanner, compile_pattern, scan_range, search_log};
use std::io::Write;
use std::path::Path;

const LOG: &str = "alpha\nbeta error\r\ngamma\n\nerror at end";

fn log_file(dir: &Path, content: &[u8]) -> std::path::PathBuf {
    let path = dir.join("output.log");
    std::fs::write(&path, content).unwrap();
    path
}

fn append(path: &Path, bytes: &[u8]) {
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(bytes).unwrap();
}

#[test]
fn lines_are_numbered_from_one_with_absolute_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_file(dir.path(), LOG.as_bytes());
    let found = search_log(&path, &compile_pattern("error").unwrap(), 10).unwrap();
    assert!(!found.truncated);
    let got: Vec<_> = found
        .matches
        .iter()
        .map(|m| (m.offset, m.line_number, m.line.as_str()))
        .collect();
    // The `\r` of a `\r\n` line is not part of the line; the last line has
    // no newline at all.
    assert_eq!(got, [(6, 2, "beta error"), (25, 5, "error at end")]);
}

#[test]
fn end_of_line_anchors_see_through_crlf() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_file(dir.path(), LOG.as_bytes());
    let found = search_log(&path, &compile_pattern("error$").unwrap(), 10).unwrap();
    assert_eq!(found.matches.len(), 1);
    assert_eq!(found.matches[0].line_number, 2);
    let empty = search_log(&path, &compile_pattern("^$").unwrap(), 10).unwrap();
    assert_eq!(empty.matches.len(), 1);
    assert_eq!(
        (empty.matches[0].offset, empty.matches[0].line_number),
        (24, 4)
    );
}

#[test]
fn truncated_says_exactly_whether_more_matches_exist() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_file(dir.path(), LOG.as_bytes());
    let error = compile_pattern("error").unwrap();
    let at = |limit| {
        let found = search_log(&path, &error, limit).unwrap();
        (found.matches.len(), found.truncated)
    };
    assert_eq!(at(0), (0, true));
    assert_eq!(at(1), (1, true));
    assert_eq!(at(2), (2, false));
    assert_eq!(at(3), (2, false));
    let none = search_log(&path, &compile_pattern("nothing").unwrap(), 0).unwrap();
    assert_eq!((none.matches.len(), none.truncated), (0, false));
    // The unterminated last line counts too.
    let last = search_log(&path, &compile_pattern("end").unwrap(), 0).unwrap();
    assert!(last.truncated);
}

#[test]
fn a_missing_log_has_no_matches() {
    let dir = tempfile::tempdir().unwrap();
    let found = search_log(
        &dir.path().join("output.log"),
        &compile_pattern("x").unwrap(),
        5,
    )
    .unwrap();
    assert!(found.matches.is_empty() && !found.truncated);
}

#[test]
fn long_returned_lines_are_cut_at_a_character_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let mut line = "a".repeat(MAX_RETURNED_LINE - 1);
    line.push('\u{e9}');
    line.push_str("tail match");
    let path = log_file(dir.path(), format!("{line}\nshort match\n").as_bytes());
    let found = search_log(&path, &compile_pattern("match").unwrap(), 10).unwrap();
    let long = &found.matches[0].line;
    assert_eq!(*long, format!("{}…", "a".repeat(MAX_RETURNED_LINE - 1)));
    assert_eq!(found.matches[1].line, "short match");
    assert_eq!(found.matches[1].offset, (line.len() + 1) as u64);
}

#[test]
fn a_match_near_the_end_of_a_huge_line_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("output.log");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    file.write_all(b"first\n").unwrap();
    let block = vec![b'x'; 1 << 20];
    for _ in 0..10 {
        file.write_all(&block).unwrap();
    }
    file.write_all(b" needle here").unwrap();
    file.write_all(&block[..100]).unwrap();
    file.write_all(b"\nlast needle\n").unwrap();
    drop(file);
    let found = search_log(&path, &compile_pattern("needle").unwrap(), 10).unwrap();
    assert_eq!(found.matches.len(), 2);
    let huge = &found.matches[0];
    assert_eq!((huge.offset, huge.line_number), (6, 2));
    // The line is too long to return whole: its part around the match is.
    assert!(huge.line.starts_with('…'));
    assert!(huge.line.contains("x needle here"));
    assert!(huge.line.len() <= MAX_RETURNED_LINE + 6);
    assert_eq!(found.matches[1].line_number, 3);
    assert_eq!(found.matches[1].offset, 6 + 10 * (1 << 20) + 12 + 100 + 1);
}

#[test]
fn a_waiter_scans_each_appended_range_with_one_scanner() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_file(dir.path(), b"$ login\nEnter pass");
    let mut scanner = LineScanner::new(compile_pattern(r"password:\s*$").unwrap(), 0, 1);
    assert_eq!(scan_range(&path, &mut scanner, 0, 18).unwrap(), None);

    // The rest of the prompt arrives later, still without a newline.
    append(&path, b"word: ");
    let prompt = scan_range(&path, &mut scanner, 18, 24).unwrap().unwrap();
    assert_eq!((prompt.line_offset, prompt.line_number), (8, 2));
    assert_eq!((prompt.match_start, prompt.match_end), (14, 24));
    assert_eq!(prompt.line_end, 24);
    assert_eq!(prompt.line_lossy(), "Enter password: ");

    // A range must start where the scanner stopped.
    let err = scan_range(&path, &mut scanner, 0, 24).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);

    // The line is completed and more lines follow: the first complete
    // match is returned, and the scanner stops right after it.
    append(&path, b"\nok\nEnter password:\n");
    let complete = scan_range(&path, &mut scanner, 24, 44).unwrap().unwrap();
    assert_eq!((complete.line_offset, complete.line_end), (8, 25));
    assert_eq!(scanner.offset(), 25);
    let next = scan_range(&path, &mut scanner, 25, 44).unwrap().unwrap();
    assert_eq!((next.line_offset, next.line_number), (28, 4));
    assert_eq!(scan_range(&path, &mut scanner, 44, 44).unwrap(), None);
}

#[test]
fn a_range_past_the_end_of_the_file_feeds_what_exists() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_file(dir.path(), b"abc");
    let mut scanner = LineScanner::new(compile_pattern("c").unwrap(), 0, 1);
    let partial = scan_range(&path, &mut scanner, 0, 100).unwrap().unwrap();
    assert_eq!(partial.line_end, 3);
    assert_eq!(scanner.offset(), 3);
}

#[test]
fn huge_lines_are_held_in_bounded_pieces() {
    let mut scanner = LineScanner::new(compile_pattern("needle").unwrap(), 0, 1);
    let chunk = vec![b'x'; 100_000];
    for _ in 0..20 {
        assert!(scanner.feed(&chunk, |_| unreachable!()).is_continue());
    }
    let mut found = Vec::new();
    let _ = scanner.feed(b"needle\n", |m| {
        found.push(m.clone());
        std::ops::ControlFlow::Continue(())
    });
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].line_offset, 0);
    assert_eq!(found[0].match_start, 2_000_000);
    assert!(found[0].is_line_cut());
    assert!(found[0].line.len() <= MAX_LINE_BYTES);
}

/// Feeding a log in arbitrary pieces finds what matching each line whole
/// finds, with the same offsets.
mod split_feeds {
    use proptest::prelude::*;
    use shellctl_term::{LineScanner, compile_pattern};
    use std::ops::ControlFlow;

    type Found = (u64, u64, u64, u64, u64);

    fn reference(content: &str, pattern: &str) -> (Vec<Found>, Option<Found>) {
        let regex = compile_pattern(pattern).unwrap();
        let mut complete = Vec::new();
        let mut partial = None;
        let mut offset = 0;
        for (number, line) in (1..).zip(content.split_inclusive('\n')) {
            let terminated = line.ends_with('\n');
            let body = line.strip_suffix('\n').unwrap_or(line);
            let body = body.strip_suffix('\r').unwrap_or(body);
            let end = offset + line.len() as u64;
            if let Some(m) = regex.find(body.as_bytes()) {
                let found = (
                    offset,
                    number,
                    offset + m.start() as u64,
                    offset + m.end() as u64,
                    end,
                );
                if terminated {
                    complete.push(found);
                } else {
                    partial = Some(found);
                }
            }
            offset = end;
        }
        (complete, partial)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn split_feeds_match_like_whole_lines(
            lines in proptest::collection::vec("[abc \r]{0,12}", 0..30),
            newline in any::<bool>(),
            mut cuts in proptest::collection::vec(0usize..400, 0..12),
            pattern in prop::sample::select(
                vec!["ab", "a.?c$", "^b", r"\bab\b", "c+", "^$", "b\r", "a c"],
            ),
        ) {
            let mut content = lines.join("\n");
            if newline {
                content.push('\n');
            }
            let (expected, expected_partial) = reference(&content, pattern);
            let mut scanner = LineScanner::new(compile_pattern(pattern).unwrap(), 0, 1);
            let mut found = Vec::new();
            cuts.push(0);
            cuts.push(content.len());
            for cut in &mut cuts {
                *cut = (*cut).min(content.len());
            }
            cuts.sort_unstable();
            for piece in cuts.windows(2) {
                let flow = scanner.feed(&content.as_bytes()[piece[0]..piece[1]], |m| {
                    found.push((m.line_offset, m.line_number, m.match_start, m.match_end, m.line_end));
                    ControlFlow::Continue(())
                });
                prop_assert!(flow.is_continue());
            }
            prop_assert_eq!(found, expected);
            let partial = scanner
                .partial_match()
                .map(|m| (m.line_offset, m.line_number, m.match_start, m.match_end, m.line_end));
            prop_assert_eq!(partial, expected_partial);
            prop_assert_eq!(scanner.offset(), content.len() as u64);
        }
    }
}
