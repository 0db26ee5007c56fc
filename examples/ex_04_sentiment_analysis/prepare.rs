//! From reviews to the splits a run trains and tests on: which reviews go where, the tokenizer,
//! the vocabulary (from the training split only) and the truncation, for each preset.

use crate::data::{is_held_out, Imdb, Review};
use crate::numpy_rng::legacy_permutation;
use crate::text::{Tokenizer, Vocab};
use crate::train::Encoded;

/// How reviews become token ids: saved with a model, so that `predict` reads text as training
/// did.
#[derive(Debug, Clone)]
pub struct TextPipeline {
    /// The tokenizer.
    pub tokenizer: Tokenizer,
    /// The vocabulary, built from the training split.
    pub vocab: Vocab,
    /// Reviews are cut to their first `max_tokens` tokens.
    pub max_tokens: usize,
}

impl TextPipeline {
    /// The ids of one text: its first `max_tokens` tokens (unknown words as 1), never empty.
    pub fn encode(&self, text: &str) -> Vec<usize> {
        let mut ids = self.vocab.encode(&self.tokenizer.tokens(text));
        ids.truncate(self.max_tokens);
        ids
    }

    /// `reviews` as token ids with their labels.
    pub fn encode_all(&self, reviews: &[&Review]) -> Encoded {
        let ids = in_parallel(reviews, |r| self.encode(&r.text));
        Encoded {
            ids,
            labels: reviews.iter().map(|r| r.label).collect(),
        }
    }
}

/// `f` over `items` on two threads, in order.
fn in_parallel<I: Sync, O: Send>(items: &[I], f: impl Fn(&I) -> O + Sync) -> Vec<O> {
    let half = items.len().div_ceil(2);
    let (first, second) = items.split_at(half);
    std::thread::scope(|s| {
        let other = s.spawn(|| second.iter().map(&f).collect::<Vec<O>>());
        let mut out: Vec<O> = first.iter().map(&f).collect();
        out.extend(other.join().expect("the tokenizing thread does not panic"));
        out
    })
}

/// The data of a run: training, validation and test splits as token ids, and the pipeline
/// that made them.
pub struct Splits {
    /// What the model trains on.
    pub train: Encoded,
    /// What selects the epoch.
    pub validation: Encoded,
    /// The test sets, by name.
    pub tests: Vec<(String, Encoded)>,
    /// How text became ids.
    pub text: TextPipeline,
    /// One line on where each split comes from.
    pub description: String,
}

/// A preset's way of reading text: its tokenizer; a vocabulary of the words seen at least
/// `min_count` times in the training split, the `max_words` most frequent; the first
/// `max_tokens` tokens of each review.
struct TextRule {
    tokenizer: Tokenizer,
    min_count: usize,
    max_words: usize,
    max_tokens: usize,
}

/// How a run reads text: the preset's rules, or the pipeline of a model it starts from.
pub enum TextSource {
    /// The preset's tokenizer and truncation, with the vocabulary built from the training split.
    Preset,
    /// A saved model's tokenizer, vocabulary and truncation, to fine-tune it on other reviews.
    Given(TextPipeline),
}

/// Encodes every split: with `given`'s pipeline, or with `rule` and a vocabulary built from
/// the tokens of `train`.
fn encode_splits(
    given: TextSource,
    rule: TextRule,
    train: &[&Review],
    validation: &[&Review],
    tests: Vec<(String, Vec<&Review>)>,
    description: String,
) -> Splits {
    let text = match given {
        TextSource::Given(text) => text,
        TextSource::Preset => {
            let tokens = in_parallel(train, |r| rule.tokenizer.tokens(&r.text));
            let vocab = Vocab::build(
                tokens.iter().map(Vec::as_slice),
                rule.min_count,
                rule.max_words,
            );
            TextPipeline {
                tokenizer: rule.tokenizer,
                vocab,
                max_tokens: rule.max_tokens,
            }
        }
    };
    Splits {
        train: text.encode_all(train),
        validation: text.encode_all(validation),
        tests: tests
            .into_iter()
            .map(|(name, reviews)| (name, text.encode_all(&reviews)))
            .collect(),
        text,
        description,
    }
}

/// The course's data: the 25,000 IMDB training reviews (positive by id, then negative by id)
/// split 60/20/20 by `numpy.random.RandomState(42).permutation`, exactly as the PyTorch
/// script of the course preset does; punctuation removed; words seen twice or more, at most
/// 25,000; the first `max_tokens` tokens (the course's 200). Tested on its own 20% and on the
/// official test set. Quick: 4,000 / 1,000 / 1,000 of the same permutation, 1,000 official
/// test reviews, a vocabulary of 5,000.
pub fn course(imdb: &Imdb, max_tokens: usize, quick: bool, text: TextSource) -> Splits {
    let perm = legacy_permutation(42, imdb.train.len());
    let (n_train, n_val, n_test) = if quick {
        (4_000, 1_000, 1_000)
    } else {
        let n = imdb.train.len();
        (n * 3 / 5, n / 5, n - n * 3 / 5 - n / 5)
    };
    let pick = |range: std::ops::Range<usize>| -> Vec<&Review> {
        perm[range].iter().map(|&i| &imdb.train[i]).collect()
    };
    let train = pick(0..n_train);
    let validation = pick(n_train..n_train + n_val);
    let test_part = pick(n_train + n_val..n_train + n_val + n_test);
    let official = official_test(imdb, quick);
    let description = format!(
        "IMDB training set split 60/20/20 (numpy RandomState(42) permutation): {} / {} / {} reviews; official test set: {} reviews",
        train.len(),
        validation.len(),
        test_part.len(),
        official.len()
    );
    encode_splits(
        text,
        TextRule {
            tokenizer: Tokenizer::Course,
            min_count: 2,
            max_words: if quick { 5_000 } else { 25_000 },
            max_tokens,
        },
        &train,
        &validation,
        vec![
            ("own test 20%".to_string(), test_part),
            ("official test".to_string(), official),
        ],
        description,
    )
}

/// The official test set, or in quick mode its reviews with ids below 500 (1,000 reviews).
fn official_test(imdb: &Imdb, quick: bool) -> Vec<&Review> {
    imdb.test.iter().filter(|r| !quick || r.id < 500).collect()
}

/// The default preset on IMDB: validation = the training reviews whose id ends in 9 (2,500),
/// training = the other 22,500, test = the official 25,000; tokens of letters, digits and
/// apostrophes; the `vocab_size` most frequent training words; the first `max_tokens` tokens.
/// Quick: training and validation from ids below 2,500, test from ids below 500, vocabulary
/// 5,000.
pub fn imdb(
    imdb: &Imdb,
    vocab_size: usize,
    max_tokens: usize,
    quick: bool,
    text: TextSource,
) -> Splits {
    let keep = |r: &&Review| !quick || r.id < 2_500;
    let train: Vec<&Review> = imdb
        .train
        .iter()
        .filter(keep)
        .filter(|r| !is_held_out(r.id))
        .collect();
    let validation: Vec<&Review> = imdb
        .train
        .iter()
        .filter(keep)
        .filter(|r| is_held_out(r.id))
        .collect();
    let test = official_test(imdb, quick);
    let description = format!(
        "IMDB: training = train reviews whose id does not end in 9 ({}), validation = those that do ({}), test = the official test set ({})",
        train.len(),
        validation.len(),
        test.len()
    );
    encode_splits(
        text,
        TextRule {
            tokenizer: Tokenizer::Words,
            min_count: 1,
            max_words: if quick { 5_000 } else { vocab_size },
            max_tokens,
        },
        &train,
        &validation,
        vec![("official test".to_string(), test)],
        description,
    )
}

/// The default preset on MR: test = lines whose index within their file ends in 9 (fold 9,
/// 1,066 snippets), validation = fold 8, training = folds 0–7; every training word in the
/// vocabulary. The data set is small enough for the quick mode to read it all.
pub fn mr(reviews: &[Review], max_tokens: usize, text: TextSource) -> Splits {
    let fold = |wanted: fn(usize) -> bool| -> Vec<&Review> {
        reviews.iter().filter(|r| wanted(r.id % 10)).collect()
    };
    let train = fold(|f| f < 8);
    let validation = fold(|f| f == 8);
    let test = fold(|f| f == 9);
    let description = format!(
        "MR: training = folds 0-7 ({}), validation = fold 8 ({}), test = fold 9 ({}); fold = line index mod 10",
        train.len(),
        validation.len(),
        test.len()
    );
    encode_splits(
        text,
        TextRule {
            tokenizer: Tokenizer::Words,
            min_count: 1,
            max_words: usize::MAX,
            max_tokens,
        },
        &train,
        &validation,
        vec![("test (fold 9)".to_string(), test)],
        description,
    )
}
