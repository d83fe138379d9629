//! Text a plugin supplies (its manifest's description and reasons, its WIT docs, a
//! signer's identity), made safe to print on a terminal or into a file a person reads.

use std::borrow::Cow;

/// `text` with every character a terminal acts on rather than shows written as its
/// escape (`\u{1b}`): control characters (C0, DEL and C1: escape sequences such as CSI
/// and OSC 8 links, carriage returns, line breaks, bells) and the bidirectional marks,
/// overrides and isolates that reorder what is shown. Everything else, other scripts
/// included, is kept. Multi-line text is split into lines first, each printed through
/// this.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(acts) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if acts(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Whether a terminal acts on `c` rather than showing it.
fn acts(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_bidi_and_keeps_the_rest() {
        assert!(matches!(
            printable("Read files, état, 読む"),
            Cow::Borrowed(_)
        ));
        let osc8 = "\u{1b}]8;;https://evil.example\u{7}click\u{1b}]8;;\u{7}";
        assert_eq!(
            printable(osc8),
            "\\u{1b}]8;;https://evil.example\\u{7}click\\u{1b}]8;;\\u{7}"
        );
        assert_eq!(
            printable("ok\u{1b}[2K\rgranted"),
            "ok\\u{1b}[2K\\u{d}granted"
        );
        assert_eq!(printable("a\nb\tc\u{9b}d"), "a\\u{a}b\\u{9}c\\u{9b}d");
        assert_eq!(printable("abc\u{202e}fdp.exe"), "abc\\u{202e}fdp.exe");
        assert_eq!(
            printable("\u{2066}x\u{2069}\u{200f}"),
            "\\u{2066}x\\u{2069}\\u{200f}"
        );
    }
}
