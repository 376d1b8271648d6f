//! The words and text layouts of tool results: the header lines a model
//! reads before the output (status, why a wait ended, where to continue,
//! what was left out, what input is awaited), the screen with its cursor
//! marked, and the listings of jobs and search matches.

use shellctl_proto::{
    InputKind, JobInfo, JobStatus, LogSearchMatch, PatternMatch, ScreenView, WaitReason,
    WaitingForInput,
};
use std::fmt::Write as _;
use unicode_width::UnicodeWidthChar;

/// What marks the cursor's cell in a rendered screen. It is inserted, not
/// drawn over the cell, so no character of the screen is lost.
pub const CURSOR_MARK: char = '█';

/// The job's state in words: "exited with code 0", "still running", ….
pub fn status_phrase(status: JobStatus, exit_code: Option<i32>) -> String {
    match (status, exit_code) {
        (JobStatus::Exited, Some(code)) => format!("exited with code {code}"),
        (JobStatus::Exited, None) => "exited".to_owned(),
        (JobStatus::Running, _) => "still running".to_owned(),
        (JobStatus::Created | JobStatus::Starting, _) => "starting".to_owned(),
        (JobStatus::Terminated, _) => "ended: terminated".to_owned(),
        (JobStatus::Failed, _) => {
            "ended: failed (the job could not start or its output pipe broke)".to_owned()
        }
        (JobStatus::Lost, _) => "ended: lost (its terminal session vanished)".to_owned(),
    }
}

/// Why a wait returned, in words.
pub fn reason_phrase(
    reason: WaitReason,
    pattern_match: Option<&PatternMatch>,
    yield_ms: u32,
) -> String {
    match (reason, pattern_match) {
        (WaitReason::Exited, _) => "the job ended".to_owned(),
        (WaitReason::Matched, Some(found)) => format!(
            "the pattern matched {:?} at offset {} (output shown up to the end of that line)",
            found.text, found.offset
        ),
        (WaitReason::Matched, None) => "the pattern matched".to_owned(),
        (WaitReason::WaitingForInput, _) => "the job waits for input".to_owned(),
        (WaitReason::Idle, _) => "the output went quiet".to_owned(),
        (WaitReason::Timeout, _) => {
            format!("yield_ms ({yield_ms} ms) passed; the job keeps running")
        }
    }
}

/// What a kind of input wants, and how to give it.
pub fn input_phrase(waiting: &WaitingForInput) -> String {
    let prompt = waiting
        .prompt
        .as_deref()
        .filter(|prompt| !prompt.is_empty())
        .map(|prompt| format!(" at the prompt {prompt:?}"))
        .unwrap_or_default();
    match waiting.kind {
        InputKind::Line => format!(
            "waiting for input: a line{prompt}. Answer with shell_input, text ending in \"\\n\"."
        ),
        InputKind::Password => format!(
            "waiting for input: a password or secret (not echoed){prompt}. Answer with shell_input, text ending in \"\\n\", or stop the job if you do not have it."
        ),
        InputKind::Key => format!(
            "waiting for input: single keys{prompt} (a line editor, a menu or \"press any key\"). Answer with shell_input (text and/or keys such as Enter, Up, C-c)."
        ),
        InputKind::Fullscreen => "waiting for input: a full-screen program (editor, pager, TUI). Look at it with shell_screen; drive it with shell_input keys (e.g. q, Escape, C-c).".to_owned(),
    }
}

/// The "omitted" line of a header, if anything was left out.
pub fn omitted_phrase(omitted_bytes: u64, omitted_lines: u64) -> Option<String> {
    (omitted_bytes > 0).then(|| {
        let lines = if omitted_lines == 1 { "line" } else { "lines" };
        format!(
            "omitted: {omitted_bytes} bytes ({omitted_lines} {lines}) of output were left out to fit max_output_bytes; each cut is marked in the text. Find lines in the full log with shell_search."
        )
    })
}

/// `line` with [`CURSOR_MARK`] inserted before the character in terminal
/// column `col` (columns count cells: a wide character takes two). A
/// cursor past the line's end (trailing spaces are trimmed from screen
/// lines) gets spaces up to it first.
pub fn mark_cursor(line: &str, col: u16) -> String {
    let col = usize::from(col);
    let mut marked = String::with_capacity(line.len() + 4);
    let mut column = 0;
    let mut inserted = false;
    for c in line.chars() {
        let width = c.width().unwrap_or(0);
        // Zero-width characters (combining marks) belong to the cell before
        // them, so the mark never goes between a letter and its accent.
        if !inserted && width > 0 && column >= col {
            marked.push(CURSOR_MARK);
            inserted = true;
        }
        marked.push(c);
        column += width;
    }
    if !inserted {
        marked.extend(std::iter::repeat_n(' ', col.saturating_sub(column)));
        marked.push(CURSOR_MARK);
    }
    marked
}

/// The screen as text: its header (size, cursor, title, alternate screen,
/// foreground process) and its visible lines with the cursor marked;
/// blank lines below both the last text and the cursor are left out and
/// counted.
pub fn screen_text(screen: &ScreenView) -> String {
    let cursor_row = usize::from(screen.cursor.row);
    let last_text = screen
        .lines
        .iter()
        .rposition(|line| !line.trim().is_empty());
    let shown = match last_text {
        Some(row) => row.max(cursor_row) + 1,
        None => cursor_row + 1,
    }
    .min(screen.lines.len());
    let mut text = format!(
        "screen {}x{} (cols x rows), cursor at row {} col {} (counted from 0, marked {CURSOR_MARK}; the mark is not on the screen)",
        screen.cols, screen.rows, screen.cursor.row, screen.cursor.col
    );
    if !screen.title.is_empty() {
        let _ = write!(text, ", title {:?}", screen.title);
    }
    if screen.alternate_screen {
        text.push_str(", alternate screen: a full-screen program is showing");
    }
    text.push('\n');
    if let Some(foreground) = &screen.foreground {
        let _ = writeln!(
            text,
            "foreground process: {} (pid {})",
            foreground.command, foreground.pid
        );
    }
    text.push_str("--- screen ---\n");
    for (row, line) in screen.lines.iter().take(shown).enumerate() {
        if row == cursor_row {
            text.push_str(&mark_cursor(line, screen.cursor.col));
        } else {
            text.push_str(line);
        }
        text.push('\n');
    }
    let hidden = screen.lines.len() - shown;
    if hidden > 0 {
        let lines = if hidden == 1 { "line" } else { "lines" };
        let _ = writeln!(text, "--- ({hidden} blank {lines} below not shown) ---");
    }
    text
}

/// A job listing, one job a line.
pub fn jobs_text(jobs: &[JobInfo]) -> String {
    let mut text = match jobs.len() {
        0 => "no jobs match\n".to_owned(),
        1 => "1 job:\n".to_owned(),
        n => format!("{n} jobs, newest first:\n"),
    };
    for job in jobs {
        let _ = write!(
            text,
            "{} {} created {}",
            job.job_id, job.status, job.created_at
        );
        if let Some(ended) = &job.ended_at {
            let _ = write!(text, " ended {ended}");
        }
        text.push('\n');
    }
    text
}

/// The first matching lines whose listing fits in `budget` bytes, and how
/// many were left out.
pub fn matches_within(matches: &[LogSearchMatch], budget: usize) -> (String, usize) {
    let mut text = String::new();
    for (listed, found) in matches.iter().enumerate() {
        let line = format!(
            "line {} (offset {}): {}\n",
            found.line_number, found.offset, found.line
        );
        if text.len() + line.len() > budget {
            return (text, matches.len() - listed);
        }
        text.push_str(&line);
    }
    (text, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shellctl_proto::{Cursor, InputState, JobId};

    #[test]
    fn a_search_listing_stops_at_its_budget_and_counts_the_rest() {
        let found: Vec<LogSearchMatch> = (1..=50)
            .map(|n| LogSearchMatch {
                offset: n * 100,
                line_number: n,
                line: "x".repeat(80),
            })
            .collect();
        let (text, left_out) = matches_within(&found, 1000);
        assert!(text.len() <= 1000, "{}", text.len());
        assert_eq!(text.lines().count() + left_out, 50);
        assert!(left_out > 0);
        assert_eq!(matches_within(&found, usize::MAX).1, 0);
    }

    #[test]
    fn the_cursor_mark_goes_before_the_cursor_cell() {
        assert_eq!(mark_cursor("Password: ", 10), "Password: █");
        assert_eq!(mark_cursor("abc", 1), "a█bc");
        assert_eq!(mark_cursor("abc", 0), "█abc");
        assert_eq!(mark_cursor("", 0), "█");
    }

    #[test]
    fn a_cursor_past_the_trimmed_line_gets_spaces_up_to_it() {
        assert_eq!(mark_cursor("ab", 5), "ab   █");
        assert_eq!(mark_cursor("", 3), "   █");
    }

    #[test]
    fn wide_and_combining_characters_count_as_the_terminal_does() {
        // 日 and 本 take two cells each: column 2 is 本.
        assert_eq!(mark_cursor("日本語", 2), "日█本語");
        // e + combining acute is one cell: the mark stays off the accent.
        assert_eq!(mark_cursor("e\u{301}x", 1), "e\u{301}█x");
    }

    fn screen(lines: &[&str], row: u16, col: u16) -> ScreenView {
        ScreenView {
            job_id: JobId::parse("05211530-abc").unwrap(),
            status: JobStatus::Running,
            cols: 20,
            rows: u16::try_from(lines.len()).unwrap(),
            cursor: Cursor { row, col },
            alternate_screen: true,
            title: "vim".into(),
            lines: lines.iter().map(|l| (*l).to_owned()).collect(),
            history: vec![],
            foreground: None,
            input: InputState::default(),
        }
    }

    #[test]
    fn the_screen_shows_its_lines_marked_and_drops_trailing_blanks() {
        let text = screen_text(&screen(&["hello", "$ ", "", "", ""], 1, 2));
        assert!(text.contains("cursor at row 1 col 2"), "{text}");
        assert!(text.contains("title \"vim\""), "{text}");
        assert!(text.contains("alternate screen"), "{text}");
        assert!(
            text.ends_with("--- screen ---\nhello\n$ █\n--- (3 blank lines below not shown) ---\n"),
            "{text}"
        );
        // A cursor below the text keeps the blank lines above it.
        let text = screen_text(&screen(&["x", "", "", ""], 2, 0));
        assert!(
            text.ends_with("--- screen ---\nx\n\n█\n--- (1 blank line below not shown) ---\n"),
            "{text}"
        );
    }
}
