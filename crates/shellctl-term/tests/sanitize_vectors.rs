//! The reference's golden sanitizer cases, plus property tests of the
//! streaming contract.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
// Expected texts are built the plainest way.
#![allow(clippy::format_collect)]

use proptest::prelude::*;
use serde::Deserialize;
use shellctl_term::{PtySanitizer, sanitize_all};

#[derive(Deserialize)]
struct Vector {
    name: String,
    chunks_hex: Vec<String>,
    expected: String,
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

fn feed_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut sanitizer = PtySanitizer::new();
    let mut out = String::new();
    for chunk in chunks {
        out.push_str(&sanitizer.feed(chunk));
    }
    out.push_str(&sanitizer.finish());
    out
}

#[test]
fn reference_golden_vectors() {
    let vectors: Vec<Vector> =
        serde_json::from_str(include_str!("data/reference-sanitize-vectors.json")).unwrap();
    assert_eq!(vectors.len(), 6);
    for vector in vectors {
        let chunks: Vec<Vec<u8>> = vector.chunks_hex.iter().map(|h| unhex(h)).collect();
        let got = feed_chunks(chunks.iter().map(Vec::as_slice));
        assert_eq!(got, vector.expected, "vector {}", vector.name);
    }
}

/// Pieces that exercise every rule, mixed with arbitrary bytes.
fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"\r".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\r\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\x08".to_vec()),
        Just(b"\t".to_vec()),
        Just(b"\x1b[31m".to_vec()),
        Just(b"\x1b[0m\x1b[K".to_vec()),
        Just(b"\x1b[2K".to_vec()),
        Just(b"\x1b[5D".to_vec()),
        Just(b"\x1b[3C".to_vec()),
        Just(b"\x1b]0;title\x07".to_vec()),
        Just(b"\x1b]8;;u\x1b\\".to_vec()),
        Just(b"\x1bP1$r\x1b\\".to_vec()),
        Just(b"\x1b(B".to_vec()),
        Just(b"\x0f".to_vec()),
        Just("\u{4f60}\u{597d} \u{1F642}".as_bytes().to_vec()),
        Just(b"\xf0\x9f".to_vec()),
        Just(b"\x80\xff".to_vec()),
        "[a-z0-9 %]{0,12}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..16),
    ]
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(fragment(), 0..40).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_split_gives_the_same_text(data in input(), cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8)) {
        let whole = sanitize_all(&data);
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(data.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut start = 0;
        for point in points {
            chunks.push(&data[start..point]);
            start = point;
        }
        chunks.push(&data[start..]);
        prop_assert_eq!(feed_chunks(chunks), whole);
    }

    #[test]
    fn byte_at_a_time_gives_the_same_text(data in input()) {
        let whole = sanitize_all(&data);
        prop_assert_eq!(feed_chunks(data.chunks(1)), whole);
    }

    #[test]
    fn output_has_no_escapes_or_stray_controls(data in input()) {
        let text = sanitize_all(&data);
        // A `String` is valid UTF-8 by construction; check what it holds.
        prop_assert!(std::str::from_utf8(text.as_bytes()).is_ok());
        prop_assert!(
            text.chars().all(|c| c == '\n' || c == '\t' || !c.is_control()),
            "control character in {:?}", text
        );
    }

    #[test]
    fn plain_text_lines_pass_through_unchanged(lines in proptest::collection::vec("[ -~]{0,40}", 0..10)) {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        prop_assert_eq!(sanitize_all(text.as_bytes()), text.clone());
        let crlf = text.replace('\n', "\r\n");
        prop_assert_eq!(sanitize_all(crlf.as_bytes()), text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    /// Fuzzing the sanitizer with arbitrary bytes and arbitrary feed sizes:
    /// no panic, only tab and newline among control characters, and the
    /// same text as feeding it whole.
    #[test]
    fn arbitrary_bytes_in_arbitrary_feeds(data in proptest::collection::vec(any::<u8>(), 0..400), feed in 1usize..64) {
        let whole = sanitize_all(&data);
        prop_assert!(whole.chars().all(|c| c == '\n' || c == '\t' || !c.is_control()));
        prop_assert_eq!(feed_chunks(data.chunks(feed)), whole);
    }
}
