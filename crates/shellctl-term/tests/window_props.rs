//! Property tests of output windows over real files.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
// Generated contents are a few KiB; offsets always fit in usize.
#![allow(clippy::cast_possible_truncation)]

use proptest::prelude::*;
use shellctl_term::window::read_window_at;
use shellctl_term::{read_window, tail_window};

fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            "[a-z \n]{1,8}",
            Just("\u{e9}".to_owned()),
            Just("\u{4f60}\u{597d}".to_owned()),
            Just("\u{1F642}".to_owned()),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn forward_windows_reassemble_the_log_exactly(content in text(), limit in 1usize..12) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("output.log");
        std::fs::write(&path, &content).unwrap();
        let mut offset = 0u64;
        let mut assembled = String::new();
        loop {
            let window = read_window(&path, offset, limit).unwrap();
            // The same window from a file held open (what streams read).
            let held = std::fs::File::open(&path).unwrap();
            prop_assert_eq!(&read_window_at(&held, offset, limit).unwrap(), &window);
            prop_assert!(content.is_char_boundary(window.offset as usize));
            prop_assert!(window.offset > offset || window.offset == content.len() as u64);
            prop_assert_eq!(window.truncated, window.offset < content.len() as u64);
            assembled.push_str(&window.output);
            offset = window.offset;
            if !window.truncated {
                break;
            }
        }
        prop_assert_eq!(assembled, content);
    }

    #[test]
    fn tail_is_a_suffix_within_the_limit(content in text(), limit in 1usize..40) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("output.log");
        std::fs::write(&path, &content).unwrap();
        let window = tail_window(&path, limit).unwrap();
        prop_assert!(content.ends_with(&window.output));
        prop_assert!(window.output.len() <= limit);
        prop_assert!(window.output.len() + 3 >= limit.min(content.len()));
        prop_assert_eq!(window.offset, content.len() as u64);
        prop_assert!(!window.truncated);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Fuzzing the reader with arbitrary bytes (a log is never supposed to
    /// hold invalid UTF-8, but a reader must not stall or panic if it does).
    #[test]
    fn arbitrary_bytes_always_read_forward_to_the_end(
        content in proptest::collection::vec(any::<u8>(), 0..200),
        limit in 1usize..16,
        start in any::<prop::sample::Index>(),
    ) {
        let size = content.len() as u64;
        let mut offset = start.index(content.len() + 1) as u64;
        let mut rounds = 0;
        loop {
            let window = shellctl_term::window::forward_window(&content[offset as usize..], offset, size, limit).unwrap();
            prop_assert!(window.offset >= offset && window.offset <= size);
            prop_assert_eq!(window.truncated, window.offset < size);
            if !window.truncated {
                break;
            }
            // Progress, except before a cut-off character at the very end.
            if window.offset == offset {
                prop_assert!(size - offset < 4, "stalled at {} of {}", offset, size);
                break;
            }
            offset = window.offset;
            rounds += 1;
            prop_assert!(rounds <= content.len() + 1);
        }
        let tail = shellctl_term::window::tail_window_of(&content, 0);
        prop_assert!(tail.offset <= size);
    }
}
