//! The `text` plugin: pure text tools. Each tool's logic lives in a module of plain
//! Rust (unit-tested natively); this file only maps it onto the generated WIT types.
#![cfg_attr(
    not(target_arch = "wasm32"),
    allow(
        dead_code,
        reason = "tools are exported only to wasm; natively only unit tests run"
    )
)]

mod case;
mod count;
mod extract;
mod query;

use similar::{ChangeTag, TextDiff};

warden_sdk::wit_bindgen::generate!({
    world: "warden:text/text",
    path: ["../../wit", "wit"],
    runtime_path: "warden_sdk::wit_bindgen::rt",
    with: { "warden:host/log@0.1.0": warden_sdk::host::log },
});

use exports::transform::{self, CaseStyle};

struct Text;

impl Guest for Text {
    fn word_count(text: String) -> Counts {
        count::counts(&text)
    }

    fn json_query(document: String, path: String) -> Result<String, String> {
        query::query(&document, &path)
    }

    fn diff(old: String, new: String, context: Option<u32>) -> Vec<DiffLine> {
        let diff = TextDiff::from_lines(&old, &new);
        let lines: Vec<DiffLine> = diff
            .iter_all_changes()
            .map(|change| DiffLine {
                op: match change.tag() {
                    ChangeTag::Equal => DiffOp::Equal,
                    ChangeTag::Insert => DiffOp::Insert,
                    ChangeTag::Delete => DiffOp::Delete,
                },
                old_line: change.old_index().map(line_number),
                new_line: change.new_index().map(line_number),
                text: change
                    .value()
                    .trim_end_matches('\n')
                    .trim_end_matches('\r')
                    .to_owned(),
            })
            .collect();
        match context {
            None => lines,
            Some(context) => keep_context(lines, context as usize),
        }
    }

    fn extract(text: String, kinds: ExtractKinds) -> Vec<Found> {
        extract::extract(
            &text,
            kinds.contains(ExtractKinds::URLS),
            kinds.contains(ExtractKinds::EMAILS),
            kinds.contains(ExtractKinds::NUMBERS),
        )
    }

    fn detect(text: String) -> Shape {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Shape::Empty;
        }
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(trimmed)
            && !value.is_number()
        {
            return Shape::Json(query::type_name(&value).to_owned());
        }
        if let Ok(number) = trimmed.parse::<f64>()
            && number.is_finite()
        {
            return Shape::Number(number);
        }
        if !trimmed.contains(char::is_whitespace) {
            match extract::extract(trimmed, true, true, false).as_slice() {
                [Found::Url(url)] if url == trimmed => return Shape::Url(url.clone()),
                [Found::Email(email)] if email == trimmed => return Shape::Email(email.clone()),
                _ => {}
            }
        }
        Shape::Prose(count::counts(&text))
    }
}

impl transform::Guest for Text {
    fn case_convert(text: String, style: CaseStyle) -> String {
        case::convert(&text, style)
    }

    fn split(text: String, sep: Option<char>) -> Vec<String> {
        match sep {
            Some(sep) => text.split(sep).map(str::to_owned).collect(),
            None => text.split_whitespace().map(str::to_owned).collect(),
        }
    }

    fn char_frequency(text: String, top: u32) -> Vec<(char, u32)> {
        let mut counts = std::collections::BTreeMap::<char, u32>::new();
        for c in text.chars().filter(|c| !c.is_whitespace()) {
            *counts.entry(c).or_default() += 1;
        }
        let mut pairs: Vec<(char, u32)> = counts.into_iter().collect();
        pairs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        pairs.truncate(top.min(100) as usize);
        pairs
    }

    fn truncate(text: String, max_chars: u32) -> (String, bool) {
        case::truncate(&text, max_chars as usize)
    }
}

fn line_number(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

/// Keeps changed lines and `context` equal lines around each of them.
fn keep_context(lines: Vec<DiffLine>, context: usize) -> Vec<DiffLine> {
    let changed: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, line)| !matches!(line.op, DiffOp::Equal))
        .map(|(i, _)| i)
        .collect();
    lines
        .into_iter()
        .enumerate()
        .filter(|(i, line)| {
            !matches!(line.op, DiffOp::Equal) || changed.iter().any(|c| c.abs_diff(*i) <= context)
        })
        .map(|(_, line)| line)
        .collect()
}

// Exported only when building the component: natively (unit tests) the export symbols
// would be named like libc's `read` and `write` and replace them in the test binary.
#[cfg(target_arch = "wasm32")]
export!(Text);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_marks_lines_and_numbers() {
        let lines = Text::diff("a\nb\nc\n".into(), "a\nB\nc\nd".into(), None);
        let ops: Vec<_> = lines
            .iter()
            .map(|l| (l.op, l.old_line, l.new_line, l.text.as_str()))
            .collect();
        assert_eq!(
            ops,
            [
                (DiffOp::Equal, Some(1), Some(1), "a"),
                (DiffOp::Delete, Some(2), None, "b"),
                (DiffOp::Insert, None, Some(2), "B"),
                (DiffOp::Equal, Some(3), Some(3), "c"),
                (DiffOp::Insert, None, Some(4), "d"),
            ]
        );
        let only_changes = Text::diff("a\nb\nc\nd\ne\n".into(), "a\nb\nC\nd\ne\n".into(), Some(0));
        assert_eq!(only_changes.len(), 2);
        let with_context = Text::diff("a\nb\nc\nd\ne\n".into(), "a\nb\nC\nd\ne\n".into(), Some(1));
        assert_eq!(with_context.len(), 4);
    }

    #[test]
    fn detect_shapes() {
        assert!(matches!(Text::detect("  ".into()), Shape::Empty));
        assert!(matches!(Text::detect("[1, 2]".into()), Shape::Json(t) if t == "array"));
        assert!(matches!(Text::detect("-2.5e3".into()), Shape::Number(n) if n == -2500.0));
        assert!(matches!(
            Text::detect("https://a.example/x".into()),
            Shape::Url(_)
        ));
        assert!(matches!(
            Text::detect("ann@example.com".into()),
            Shape::Email(_)
        ));
        assert!(matches!(Text::detect("Hello there.".into()), Shape::Prose(c) if c.words == 2));
    }

    #[test]
    fn transform_tools() {
        use transform::Guest as _;
        assert_eq!(Text::split("a,b,,c".into(), Some(',')), ["a", "b", "", "c"]);
        assert_eq!(Text::split(" a  b\nc ".into(), None), ["a", "b", "c"]);
        assert_eq!(
            Text::char_frequency("abca b".into(), 2),
            [('a', 2), ('b', 2)]
        );
    }
}
