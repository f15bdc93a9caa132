//! Text shown on an operator's terminal that a client (or a file) controls: control
//! characters could move the cursor or rewrite earlier lines, and a long value would bury the
//! table, so both are neutralised.

/// Longest value shown in one cell or field.
const MAX_SHOWN_CHARS: usize = 80;

/// `text` with control and format characters escaped (`\n`, `\u{1b}`, `\u{202e}`) and cut at
/// 80 characters (`…`).
pub fn shown(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_SHOWN_CHARS + 8));
    for (count, ch) in text.chars().enumerate() {
        if count == MAX_SHOWN_CHARS {
            out.push('…');
            break;
        }
        if proto::is_control_or_format(ch) {
            out.extend(ch.escape_unicode());
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn control_characters_are_escaped_and_long_text_cut() {
        assert_eq!(shown("a\u{1b}[2Jb\r\n"), "a\\u{1b}[2Jb\\u{d}\\u{a}");
        assert_eq!(
            shown("alice\u{202e}gpj.exe\u{200b}"),
            "alice\\u{202e}gpj.exe\\u{200b}"
        );
        let long = "x".repeat(200);
        assert_eq!(shown(&long).chars().count(), 81);
        assert!(shown(&long).ends_with('…'));
        assert_eq!(shown("scanner@contoso.com"), "scanner@contoso.com");
    }
}
