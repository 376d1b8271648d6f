//! Short, human-readable previews of command lines.

/// First this many whitespace-separated parts are kept.
const HEAD_PARTS: usize = 3;
/// Last this many parts are kept.
const TAIL_PARTS: usize = 2;
/// Longest a part may be (in characters) before it is cut with `…`.
const PART_LIMIT: usize = 24;
/// Longest the joined label may be (in characters).
const LABEL_LIMIT: usize = 80;
const ELLIPSIS: &str = "\u{2026}";

/// A short preview of `command` as parts to join with `-`, for names of
/// tasks and log lines that should not carry a whole (maybe long or secret)
/// command line.
///
/// Keeps the first 3 and last 2 whitespace-separated parts, with `…` between
/// them when parts were left out; strips one pair of matching quotes and any
/// directory prefix from each part; cuts parts over 24 characters with `…`;
/// keeps the joined label within 80 characters by cutting the last part.
/// An empty command gives `["cmd"]`.
///
/// ```
/// use shell_session::command_slug_parts;
/// assert_eq!(command_slug_parts("/usr/bin/python3 -m http.server 8000"),
///            ["python3", "-m", "http.server", "8000"]);
/// assert_eq!(command_slug_parts("a b c d e f g"), ["a", "b", "c", "…", "f", "g"]);
/// ```
pub fn command_slug_parts(command: &str) -> Vec<String> {
    let parts: Vec<&str> = command.split_whitespace().collect();
    if parts.is_empty() {
        return vec!["cmd".to_owned()];
    }
    let head_end = parts.len().min(HEAD_PARTS);
    let tail_start = HEAD_PARTS.max(parts.len().saturating_sub(TAIL_PARTS));
    let mut preview: Vec<String> = parts[..head_end].iter().map(|p| clean_part(p)).collect();
    let tail: Vec<String> = parts
        .get(tail_start..)
        .unwrap_or_default()
        .iter()
        .map(|p| clean_part(p))
        .collect();
    if tail_start > HEAD_PARTS && !tail.is_empty() {
        preview.push(ELLIPSIS.to_owned());
    }
    preview.extend(tail);

    let label_len = char_len(preview.join("-").trim_matches('-'));
    if label_len > LABEL_LIMIT {
        let prefix_len = char_len(preview[..preview.len() - 1].join("-").trim_matches('-'));
        let separator = usize::from(prefix_len > 0);
        let Some(remaining) = LABEL_LIMIT
            .checked_sub(prefix_len + separator)
            .filter(|r| *r > 0)
        else {
            return vec!["cmd".to_owned()];
        };
        if let Some(last) = preview.last_mut()
            && char_len(last) > remaining
        {
            *last = cut(last, remaining);
        }
    }
    let preview: Vec<String> = preview.into_iter().filter(|p| !p.is_empty()).collect();
    if preview.is_empty() {
        vec!["cmd".to_owned()]
    } else {
        preview
    }
}

fn clean_part(part: &str) -> String {
    let mut part = part.trim();
    let chars: Vec<char> = part.chars().collect();
    if chars.len() >= 2 && chars[0] == chars[chars.len() - 1] && matches!(chars[0], '\'' | '"') {
        part = part[1..part.len() - 1].trim();
    }
    let base = part.rsplit('/').next().unwrap_or(part);
    let base = if char_len(base) > PART_LIMIT {
        cut(base, PART_LIMIT)
    } else {
        base.to_owned()
    };
    if base.is_empty() {
        ELLIPSIS.to_owned()
    } else {
        base
    }
}

/// The first `limit - 1` characters of `text` followed by `…`.
fn cut(text: &str, limit: usize) -> String {
    let mut out: String = text.chars().take(limit.saturating_sub(1)).collect();
    out.push_str(ELLIPSIS);
    out
}

fn char_len(text: &str) -> usize {
    text.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slug(command: &str) -> Vec<String> {
        command_slug_parts(command)
    }

    #[test]
    fn empty_commands_give_cmd() {
        assert_eq!(slug(""), ["cmd"]);
        assert_eq!(slug("   \t\n "), ["cmd"]);
    }

    #[test]
    fn short_commands_keep_every_part() {
        assert_eq!(slug("echo hi"), ["echo", "hi"]);
        assert_eq!(slug("  ls   -la  /tmp/x/y "), ["ls", "-la", "y"]);
        assert_eq!(slug("a b c d e"), ["a", "b", "c", "d", "e"]);
    }

    #[test]
    fn long_commands_keep_head_and_tail_with_an_ellipsis() {
        assert_eq!(slug("a b c d e f"), ["a", "b", "c", "…", "e", "f"]);
    }

    #[test]
    fn quotes_and_directories_are_stripped() {
        assert_eq!(slug("'/bin/bash' \"-c\" 'x'"), ["bash", "-c", "x"]);
        assert_eq!(slug("cd dir/"), ["cd", "…"]);
        assert_eq!(slug("echo ''"), ["echo", "…"]);
    }

    #[test]
    fn long_parts_are_cut_to_24_characters() {
        let long = "x".repeat(30);
        let parts = slug(&format!("run {long}"));
        assert_eq!(parts[1], format!("{}…", "x".repeat(23)));
        assert_eq!(parts[1].chars().count(), 24);
        let wide = "\u{00e9}".repeat(30);
        assert_eq!(slug(&wide)[0].chars().count(), 24);
    }

    #[test]
    fn label_is_capped_at_80_characters_by_cutting_the_last_part() {
        let command = format!(
            "{} {} {} x {}",
            "a".repeat(20),
            "b".repeat(20),
            "c".repeat(20),
            "e".repeat(30)
        );
        let parts = slug(&command);
        assert_eq!(parts.last().unwrap(), &format!("{}…", "e".repeat(14)));
        assert_eq!(parts.join("-").chars().count(), 80);
    }

    #[test]
    fn a_head_too_long_for_the_label_gives_cmd() {
        let long = |c: &str| c.repeat(28);
        let command = format!(
            "{} {} {} dddd {}",
            long("a"),
            long("b"),
            long("c"),
            long("e")
        );
        assert_eq!(slug(&command), ["cmd"]);
    }
}
