//! What an edit changes, line by line: edited arguments of a held call, a grant
//! against the one in force.

use maud::{Markup, html};
use similar::{ChangeTag, TextDiff};

/// The lines of `old` and `new`, removed ones marked `-`, added ones `+`.
pub(crate) fn lines(old: &str, new: &str, label: &str) -> Markup {
    let diff = TextDiff::from_lines(old, new);
    let changed = diff.ratio() < 1.0;
    html! {
        @if changed {
            pre.diff aria-label=(label) {
                @for change in diff.iter_all_changes() {
                    @let text = change.value().trim_end_matches('\n');
                    @match change.tag() {
                        ChangeTag::Delete => del { "- " (text) "\n" }
                        ChangeTag::Insert => ins { "+ " (text) "\n" }
                        ChangeTag::Equal => span.same { "  " (text) "\n" }
                    }
                }
            }
        } @else {
            p.help { "No change." }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_and_added_lines_are_marked() {
        let html = lines("a\nb\n", "a\nc\n", "d").into_string();
        assert!(html.contains("<del>- b\n</del>"), "{html}");
        assert!(html.contains("<ins>+ c\n</ins>"), "{html}");
        assert!(html.contains("<span class=\"same\">  a\n</span>"), "{html}");
        assert!(lines("a\n", "a\n", "d").into_string().contains("No change"));
    }
}
