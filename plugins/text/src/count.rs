//! Word, line, character, byte and sentence counts.

use crate::Counts;

/// Counts of `text`; each count saturates at `u32::MAX`.
pub(crate) fn counts(text: &str) -> Counts {
    let lines = if text.is_empty() {
        0
    } else {
        text.matches('\n').count() + 1 - usize::from(text.ends_with('\n'))
    };
    let mut sentences = 0;
    let mut in_sentence = false;
    for c in text.chars() {
        if matches!(c, '.' | '!' | '?') {
            if in_sentence {
                sentences += 1;
            }
            in_sentence = false;
        } else if c.is_alphanumeric() {
            in_sentence = true;
        }
    }
    sentences += usize::from(in_sentence);
    Counts {
        words: saturate(text.split_whitespace().count()),
        lines: saturate(lines),
        chars: saturate(text.chars().count()),
        bytes: saturate(text.len()),
        sentences: saturate(sentences),
    }
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_a_small_text() {
        let c = counts("Hello, wörld! How are you?\nFine.\n");
        assert_eq!(
            (c.words, c.lines, c.chars, c.bytes, c.sentences),
            (6, 2, 33, 34, 3)
        );
        let c = counts("");
        assert_eq!((c.words, c.lines, c.sentences), (0, 0, 0));
        let c = counts("no end");
        assert_eq!((c.lines, c.sentences), (1, 1));
    }
}
