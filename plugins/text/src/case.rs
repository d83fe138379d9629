//! Case conversion and truncation.

use crate::exports::transform::CaseStyle;

/// `text` in `style`.
pub(crate) fn convert(text: &str, style: CaseStyle) -> String {
    match style {
        CaseStyle::Lower => text.to_lowercase(),
        CaseStyle::Upper => text.to_uppercase(),
        CaseStyle::Title => {
            let mut out = String::with_capacity(text.len());
            let mut at_start = true;
            for c in text.chars() {
                if at_start && c.is_alphanumeric() {
                    out.extend(c.to_uppercase());
                } else {
                    out.extend(c.to_lowercase());
                }
                at_start = c.is_whitespace();
            }
            out
        }
        CaseStyle::Snake => words(text).join("_"),
        CaseStyle::Kebab => words(text).join("-"),
        CaseStyle::Camel => {
            let words = words(text);
            let mut out = words.first().cloned().unwrap_or_default();
            out.extend(words.iter().skip(1).map(|w| capitalize(w)));
            out
        }
        CaseStyle::Pascal => words(text).iter().map(|w| capitalize(w)).collect(),
    }
}

/// Lowercase words of `text`, split at non-alphanumerics and lower-to-upper changes.
fn words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in text.chars() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        prev_lower = c.is_lowercase() || c.is_numeric();
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `text` cut to at most `max` characters (the `…` included), at a word boundary in the
/// last fifth when there is one; and whether it was cut.
pub(crate) fn truncate(text: &str, max: usize) -> (String, bool) {
    if text.chars().count() <= max {
        return (text.to_owned(), false);
    }
    if max == 0 {
        return (String::new(), true);
    }
    let keep: String = text.chars().take(max - 1).collect();
    let cut = keep
        .rfind(char::is_whitespace)
        .filter(|&at| keep[..at].chars().count() * 5 >= (max - 1) * 4)
        .map_or(keep.as_str(), |at| keep[..at].trim_end());
    (format!("{cut}…"), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_styles() {
        let s = "parseHTTP response_code v2";
        assert_eq!(convert(s, CaseStyle::Snake), "parse_http_response_code_v2");
        assert_eq!(convert("fooBar baz", CaseStyle::Kebab), "foo-bar-baz");
        assert_eq!(convert("foo-bar baz", CaseStyle::Camel), "fooBarBaz");
        assert_eq!(convert("foo_bar baz", CaseStyle::Pascal), "FooBarBaz");
        assert_eq!(convert("hello wORLD", CaseStyle::Title), "Hello World");
        assert_eq!(convert("Grüße", CaseStyle::Upper), "GRÜSSE");
    }

    #[test]
    fn truncates_at_words() {
        assert_eq!(truncate("short", 10), ("short".into(), false));
        assert_eq!(
            truncate("the quick brown fox jumps", 20),
            ("the quick brown fox…".into(), true)
        );
        assert_eq!(truncate("abcdefghij", 5), ("abcd…".into(), true));
        assert_eq!(truncate("abc", 0), (String::new(), true));
    }
}
