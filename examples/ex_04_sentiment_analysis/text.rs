//! From review text to word ids: the two tokenizers of the reference scripts and the vocabulary.

use std::collections::HashMap;

/// The HTML line break the IMDB reviews contain; both tokenizers replace it by a space.
const HTML_BREAK: &str = "<br />";
/// Id of the padding entry.
pub const PAD: usize = 0;
/// Id of the entry for words outside the vocabulary.
pub const UNK: usize = 1;
/// The two special entries, in id order.
const SPECIALS: [&str; 2] = ["<pad>", "<unk>"];

/// How a review is cut into words. Both lower-case the text first, as Python's `str.lower`
/// does (Rust's `to_lowercase` applies the same full Unicode mapping, final sigma included; the
/// two can only differ where their Unicode versions do, which no character of the data sets
/// reaches), and replace every `<br />` by a space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tokenizer {
    /// The course preset's rule: delete the 32 ASCII punctuation characters (Python's
    /// `string.punctuation`, the apostrophe included), then split on whitespace (Python's
    /// `str.split()`). `"don't"` becomes `"dont"`, `"well-made"` becomes `"wellmade"`.
    Course,
    /// The sentiment anchors' rule: the maximal runs of `[a-z0-9']` (ASCII only, as the
    /// reference's regular expression), everything else separating words. `"don't"` stays
    /// `"don't"`, `"well-made"` becomes `"well"`, `"made"`, and `"café"` becomes `"caf"`.
    Words,
}

impl Tokenizer {
    /// The tokens of `text`, in order.
    pub fn tokens(&self, text: &str) -> Vec<String> {
        let lowered = text.to_lowercase().replace(HTML_BREAK, " ");
        match self {
            Tokenizer::Course => lowered
                .split(is_python_whitespace)
                .map(|piece| {
                    piece
                        .chars()
                        .filter(|c| !c.is_ascii_punctuation())
                        .collect::<String>()
                })
                .filter(|word| !word.is_empty())
                .collect(),
            Tokenizer::Words => lowered
                .split(|c: char| !is_word_char(c))
                .filter(|word| !word.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }
}

/// Whether Python's `str.isspace` holds for `c`, which is what `str.split()` splits on: Unicode
/// whitespace plus the four ASCII separators U+001C…U+001F. (Deleting punctuation before the
/// split, as the reference does, or after it gives the same words, since no punctuation
/// character is whitespace.)
fn is_python_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Whether `c` belongs to a word of [`Tokenizer::Words`]: `[a-z0-9']`.
fn is_word_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '\''
}

/// A word list with ids: 0 is `<pad>`, 1 is `<unk>`, the words follow from 2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vocab {
    /// Every entry in id order, the two specials first.
    words: Vec<String>,
    /// Id of every word from 2 on (the specials are not in it: text never maps to them).
    ids: HashMap<String, usize>,
}

impl Vocab {
    /// The vocabulary of `documents` (token lists): every token counted, the words seen at least
    /// `min_count` times kept, ordered by descending count and then by the word itself (Unicode
    /// code point order, as Python compares strings), and the first `max_words` of them given
    /// ids 2, 3, …. A token spelled like a special entry is not counted.
    pub fn build<'a>(
        documents: impl IntoIterator<Item = &'a [String]>,
        min_count: usize,
        max_words: usize,
    ) -> Vocab {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for document in documents {
            for token in document {
                *counts.entry(token.as_str()).or_insert(0) += 1;
            }
        }
        let mut kept: Vec<(&str, usize)> = counts
            .into_iter()
            .filter(|&(word, count)| count >= min_count && !SPECIALS.contains(&word))
            .collect();
        // `str`'s order is byte order of UTF-8, which is code point order
        kept.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        kept.truncate(max_words);
        Self::from_words(kept.into_iter().map(|(word, _)| word.to_owned()))
    }

    /// The vocabulary whose words (after the two specials) are `words`, in that order; the
    /// caller guarantees they are distinct and are not specials.
    fn from_words(words: impl Iterator<Item = String>) -> Vocab {
        let words: Vec<String> = SPECIALS
            .iter()
            .map(|special| special.to_string())
            .chain(words)
            .collect();
        let ids = words
            .iter()
            .enumerate()
            .skip(SPECIALS.len())
            .map(|(id, word)| (word.clone(), id))
            .collect();
        Vocab { words, ids }
    }

    /// Number of entries, the two specials included.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// The id of `word`: [`UNK`] if it is not in the vocabulary.
    pub fn id(&self, word: &str) -> usize {
        self.ids.get(word).copied().unwrap_or(UNK)
    }

    /// The entry with id `id`.
    ///
    /// # Panics
    ///
    /// If `id >= self.len()`.
    pub fn word(&self, id: usize) -> &str {
        &self.words[id]
    }

    /// The ids of `tokens`, all of them (no truncation). An empty document becomes `[UNK]`, as
    /// in both reference scripts, so that every review has at least one step.
    pub fn encode(&self, tokens: &[String]) -> Vec<usize> {
        if tokens.is_empty() {
            return vec![UNK];
        }
        tokens.iter().map(|token| self.id(token)).collect()
    }

    /// The vocabulary as text, to be stored with a model: one entry per line in id order, the
    /// two specials first, each line ending with a newline.
    pub fn to_lines(&self) -> String {
        let mut text = String::new();
        for word in &self.words {
            text.push_str(word);
            text.push('\n');
        }
        text
    }

    /// The vocabulary written by [`Vocab::to_lines`] (the final newline is optional). Rejects
    /// wrong or missing specials, empty words, words containing whitespace and repeated words,
    /// naming the line.
    pub fn from_lines(text: &str) -> Result<Vocab, String> {
        let mut lines: Vec<&str> = text.split('\n').collect();
        if lines.last() == Some(&"") {
            lines.pop();
        }
        for (line, special) in SPECIALS.iter().enumerate() {
            match lines.get(line) {
                Some(word) if word == special => {}
                Some(word) => {
                    return Err(format!(
                    "vocabulary line {}: expected the special entry {special:?}, found {word:?}",
                    line + 1
                ))
                }
                None => {
                    return Err(format!(
                        "vocabulary has {} lines; it must start with {:?} and {:?}",
                        lines.len(),
                        SPECIALS[0],
                        SPECIALS[1]
                    ))
                }
            }
        }
        let mut first_line: HashMap<&str, usize> = HashMap::new();
        for (index, &word) in lines.iter().enumerate() {
            let line = index + 1;
            if word.is_empty() {
                return Err(format!("vocabulary line {line} is empty"));
            }
            if word.chars().any(is_python_whitespace) {
                return Err(format!(
                    "vocabulary line {line}: the word {word:?} contains whitespace"
                ));
            }
            if let Some(previous) = first_line.insert(word, line) {
                return Err(format!(
                    "vocabulary line {line}: the word {word:?} repeats line {previous}"
                ));
            }
        }
        Ok(Self::from_words(
            lines[SPECIALS.len()..].iter().map(|word| word.to_string()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Owned token lists from word slices.
    fn documents(words: &[&[&str]]) -> Vec<Vec<String>> {
        words
            .iter()
            .map(|document| document.iter().map(|w| w.to_string()).collect())
            .collect()
    }

    #[test]
    fn course_tokenizer_follows_the_preset() {
        let text =
            "A GREAT film!<br /><br />I didn't expect... \"much\"; 10/10 (really)\tWell-made.";
        assert_eq!(
            Tokenizer::Course.tokens(text),
            ["a", "great", "film", "i", "didnt", "expect", "much", "1010", "really", "wellmade"]
        );
        // the break is replaced only when written exactly `<br />` after lower-casing
        assert_eq!(
            Tokenizer::Course.tokens("end.<BR />Next<br/>one"),
            ["end", "nextbrone"]
        );
        // accented and other non-ASCII letters stay inside words; non-ASCII punctuation stays too
        assert_eq!(
            Tokenizer::Course.tokens("Café, Señor — naïve…"),
            ["café", "señor", "—", "naïve…"]
        );
        // Python's str.split() also splits on U+001C…U+001F, NBSP and other Unicode spaces
        assert_eq!(
            Tokenizer::Course.tokens("one\u{1f}two\u{a0}three\u{2003}four"),
            ["one", "two", "three", "four"]
        );
        // a word made only of punctuation disappears
        assert_eq!(Tokenizer::Course.tokens("wow -- !!! ok"), ["wow", "ok"]);
        assert!(Tokenizer::Course.tokens("  <br /> ... ").is_empty());
    }

    #[test]
    fn words_tokenizer_follows_the_anchors() {
        let text =
            "A GREAT film!<br /><br />I didn't expect... \"much\"; 10/10 (really)\tWell-made.";
        assert_eq!(
            Tokenizer::Words.tokens(text),
            [
                "a", "great", "film", "i", "didn't", "expect", "much", "10", "10", "really",
                "well", "made"
            ]
        );
        // an accented letter splits a word, as the ASCII-only regular expression does
        assert_eq!(
            Tokenizer::Words.tokens("Café Señor naïve 'quoted'"),
            ["caf", "se", "or", "na", "ve", "'quoted'"]
        );
        assert_eq!(
            Tokenizer::Words.tokens("end.<BR />Next<br/>one"),
            ["end", "next", "br", "one"]
        );
        assert_eq!(
            Tokenizer::Words.tokens("1990s-era R2D2"),
            ["1990s", "era", "r2d2"]
        );
        assert!(Tokenizer::Words.tokens("— … !!").is_empty());
    }

    #[test]
    fn lower_casing_is_unicode_aware() {
        // Python: "ÉTÉ ΟΔΟΣ".lower() == "été οδος" (final sigma)
        assert_eq!(Tokenizer::Course.tokens("ÉTÉ ΟΔΟΣ"), ["été", "οδος"]);
    }

    #[test]
    fn vocabulary_orders_by_count_then_word() {
        let docs = documents(&[
            &["the", "b", "a", "the", "zeta"],
            &["the", "a", "b", "é", "é", "z"],
            &["b", "once"],
        ]);
        let vocab = Vocab::build(docs.iter().map(Vec::as_slice), 1, 100);
        // counts: the 3, b 3, a 2, é 2, once 1, z 1, zeta 1; ties by code point ("z" < "é")
        let words: Vec<&str> = (0..vocab.len()).map(|id| vocab.word(id)).collect();
        assert_eq!(
            words,
            ["<pad>", "<unk>", "b", "the", "a", "é", "once", "z", "zeta"]
        );
        assert_eq!(vocab.id("b"), 2);
        assert_eq!(vocab.id("zeta"), 8);
    }

    #[test]
    fn vocabulary_cuts_by_min_count_and_max_words() {
        let docs = documents(&[&["x", "x", "x", "y", "y", "z", "w", "w"], &["v", "v"]]);
        let vocab = Vocab::build(docs.iter().map(Vec::as_slice), 2, 100);
        assert_eq!(vocab.len(), 2 + 4);
        assert_eq!(vocab.id("z"), UNK);
        let vocab = Vocab::build(docs.iter().map(Vec::as_slice), 2, 2);
        assert_eq!(vocab.len(), 4);
        assert_eq!((vocab.word(2), vocab.word(3)), ("x", "v"));
        assert_eq!(vocab.id("w"), UNK);
        let vocab = Vocab::build(docs.iter().map(Vec::as_slice), 1, 0);
        assert_eq!(vocab.len(), 2);
    }

    #[test]
    fn encoding_maps_unknown_words_and_empty_documents() {
        let docs = documents(&[&["good", "good", "bad"]]);
        let vocab = Vocab::build(docs.iter().map(Vec::as_slice), 1, 10);
        let review = documents(&[&["good", "awful", "bad", "good"]]);
        assert_eq!(vocab.encode(&review[0]), [2, UNK, 3, 2]);
        assert_eq!(vocab.encode(&[]), [UNK]);
        // text spelled like a special is an unknown word, never padding
        let specials = documents(&[&["<pad>", "<unk>"]]);
        assert_eq!(vocab.encode(&specials[0]), [UNK, UNK]);
        let with_specials = Vocab::build(specials.iter().map(Vec::as_slice), 1, 10);
        assert_eq!(with_specials.len(), 2);
        assert_eq!(vocab.word(PAD), "<pad>");
    }

    #[test]
    fn lines_round_trip() {
        let docs = documents(&[&["été", "don't", "1010", "été"]]);
        let vocab = Vocab::build(docs.iter().map(Vec::as_slice), 1, 10);
        let text = vocab.to_lines();
        assert_eq!(text, "<pad>\n<unk>\nété\n1010\ndon't\n");
        assert_eq!(Vocab::from_lines(&text), Ok(vocab.clone()));
        assert_eq!(Vocab::from_lines(text.trim_end()), Ok(vocab.clone()));
        let back = Vocab::from_lines(&text).expect("a valid vocabulary");
        assert_eq!(back.id("don't"), 4);
    }

    #[test]
    fn lines_rejections_say_what_is_wrong() {
        let error = |text: &str| Vocab::from_lines(text).expect_err("must be rejected");
        assert!(error("").contains("must start with"));
        assert!(error("<pad>\n").contains("must start with"));
        assert!(error("<PAD>\n<unk>\nthe\n").contains("line 1: expected the special entry"));
        assert!(error("<pad>\nthe\n").contains("line 2: expected the special entry"));
        assert_eq!(
            error("<pad>\n<unk>\nthe\n\nfilm\n"),
            "vocabulary line 4 is empty"
        );
        assert!(error("<pad>\n<unk>\ngood film\n")
            .contains("line 3: the word \"good film\" contains whitespace"));
        assert!(error("<pad>\n<unk>\nfilm\r\n").contains("contains whitespace"));
        assert_eq!(
            error("<pad>\n<unk>\nthe\nfilm\nthe\n"),
            "vocabulary line 5: the word \"the\" repeats line 3"
        );
        assert!(error("<pad>\n<unk>\n<unk>\n").contains("repeats line 2"));
    }

    #[test]
    fn course_vocabulary_of_the_real_training_part() {
        let Some(root) = crate::data::testing::real_data("course_vocabulary") else {
            return;
        };
        let imdb = crate::data::load_imdb(&root.join("imdb")).expect("the IMDB data set");
        let permutation = crate::numpy_rng::legacy_permutation(42, imdb.train.len());
        let training: Vec<Vec<String>> = permutation[..15_000]
            .iter()
            .map(|&index| Tokenizer::Course.tokens(&imdb.train[index].text))
            .collect();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for token in training.iter().flatten() {
            *counts.entry(token).or_insert(0) += 1;
        }
        let vocab = Vocab::build(training.iter().map(Vec::as_slice), 2, 25_000);
        let first: Vec<&str> = (2..12).map(|id| vocab.word(id)).collect();
        eprintln!(
            "course vocabulary: {} entries, first words {first:?}",
            vocab.len()
        );
        // the expected values are what course_preset.py's rules give in Python on the same
        // reviews (its tokenize, Counter and sorted by (-count, word)), computed independently
        assert_eq!(training.iter().map(Vec::len).sum::<usize>(), 3_453_339);
        assert_eq!(counts.len(), 85_396);
        assert_eq!(counts.values().filter(|&&count| count >= 2).count(), 42_225);
        assert_eq!(vocab.len(), 25_002);
        assert_eq!(
            first,
            ["the", "and", "a", "of", "to", "is", "in", "it", "i", "this"]
        );
        assert_eq!(counts["the"], 200_928);
        assert_eq!(counts["this"], 45_298);
        // the last three entries tie at 4 occurrences and are cut by word order
        let last: Vec<&str> = (vocab.len() - 3..vocab.len())
            .map(|id| vocab.word(id))
            .collect();
        assert_eq!(last, ["harilals", "harker", "harlen"]);
        assert_eq!(counts["harlen"], 4);
    }
}
