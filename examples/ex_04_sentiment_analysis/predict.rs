//! `predict`: classifies sentences with a saved model, printing the probability that each is
//! positive.

use std::io::BufRead;
use std::path::PathBuf;

use crate::saved::{load_weights, read_classifier};
use crate::train::{positive_probabilities, Encoded};
use crate::Fallible;

/// The options of `predict`.
#[derive(clap::Args, Debug)]
pub struct PredictArgs {
    /// A model saved by a training run (`<out>/<dataset>-<cell>.safetensors`).
    #[arg(long)]
    pub model: PathBuf,
    /// The sentences to classify; without any, each line of standard input is one.
    pub sentences: Vec<String>,
}

/// Reads the model, classifies every sentence and prints one line per sentence: the
/// probability that it is positive, the class, and the sentence.
pub fn run(args: &PredictArgs) -> Fallible<()> {
    let saved = read_classifier(&args.model)?;
    let sentences = if args.sentences.is_empty() {
        let mut lines = Vec::new();
        for line in std::io::stdin().lock().lines() {
            let line = line.map_err(|e| format!("cannot read standard input: {e}"))?;
            if !line.trim().is_empty() {
                lines.push(line);
            }
        }
        lines
    } else {
        args.sentences.clone()
    };
    if sentences.is_empty() {
        return Err(
            "no sentence to classify: give some after the options or on standard input".into(),
        );
    }
    let data = Encoded {
        ids: sentences.iter().map(|s| saved.text.encode(s)).collect(),
        labels: vec![0; sentences.len()],
    };
    let probabilities = with_classifier!(&saved.config, 0, |model| {
        load_weights(&mut model, &args.model)?;
        positive_probabilities(&model, &data)?
    });
    println!("P(positive)  class     sentence");
    for (sentence, p) in sentences.iter().zip(probabilities) {
        let class = if p > 0.5 { "positive" } else { "negative" };
        println!("{p:>11.4}  {class:<8}  {sentence}");
    }
    Ok(())
}
