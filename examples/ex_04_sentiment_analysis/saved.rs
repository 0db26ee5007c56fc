//! A trained classifier on disk: one safetensors file with the weights under PyTorch's names
//! and, in its header, the model's configuration, the tokenizer, the truncation and the
//! vocabulary, so that `predict` needs nothing else.

use std::collections::HashMap;
use std::path::Path;

use recurrent::{load, read_metadata, save_with_metadata, Parameters};
use serde_json::{json, Value};

use crate::model::ModelConfig;
use crate::prepare::TextPipeline;
use crate::text::{Tokenizer, Vocab};
use crate::Fallible;

/// Metadata key of the configuration (JSON).
const CONFIG_KEY: &str = "sentiment.config";
/// Metadata key of the vocabulary (one word per line, in id order).
const VOCAB_KEY: &str = "sentiment.vocab";

/// Writes `model`'s weights with `config` and `text` to `path` (atomically).
pub fn save_classifier(
    model: &impl Parameters<f32>,
    config: &ModelConfig,
    text: &TextPipeline,
    path: &Path,
) -> Fallible<()> {
    let description = json!({
        "model": config.to_json(),
        "tokenizer": tokenizer_name(text.tokenizer),
        "max_tokens": text.max_tokens,
        "classes": ["negative", "positive"],
    });
    let metadata = HashMap::from([
        (CONFIG_KEY.to_string(), description.to_string()),
        (VOCAB_KEY.to_string(), text.vocab.to_lines()),
    ]);
    save_with_metadata(model, &metadata, path)
        .map_err(|e| format!("cannot save the model to {}: {e}", path.display()).into())
}

/// What a saved classifier needs to be rebuilt: its configuration and text pipeline.
pub struct SavedClassifier {
    /// The model's configuration.
    pub config: ModelConfig,
    /// How text becomes ids.
    pub text: TextPipeline,
}

/// Reads the configuration and the vocabulary of the classifier saved at `path`; errors name
/// the file and what is wrong.
pub fn read_classifier(path: &Path) -> Fallible<SavedClassifier> {
    let bad = |what: String| {
        format!(
            "{} is not a saved sentiment classifier: {what}",
            path.display()
        )
    };
    let metadata = read_metadata(path)?;
    let config = metadata
        .get(CONFIG_KEY)
        .ok_or_else(|| bad(format!("its header has no `{CONFIG_KEY}`")))?;
    let config: Value = serde_json::from_str(config)
        .map_err(|e| bad(format!("`{CONFIG_KEY}` is not JSON: {e}")))?;
    let model = ModelConfig::from_json(&config["model"]).map_err(bad)?;
    let tokenizer = config["tokenizer"]
        .as_str()
        .and_then(tokenizer_from_name)
        .ok_or_else(|| bad("unknown or missing tokenizer".to_string()))?;
    let max_tokens = config["max_tokens"]
        .as_u64()
        .filter(|&n| n > 0)
        .ok_or_else(|| bad("no positive `max_tokens`".to_string()))?;
    let vocab = metadata
        .get(VOCAB_KEY)
        .ok_or_else(|| bad(format!("its header has no `{VOCAB_KEY}`")))?;
    let vocab = Vocab::from_lines(vocab).map_err(|e| bad(format!("its vocabulary: {e}")))?;
    if vocab.len() != model.vocab {
        return Err(bad(format!(
            "its vocabulary has {} entries, its embedding {}",
            vocab.len(),
            model.vocab
        ))
        .into());
    }
    Ok(SavedClassifier {
        config: model,
        text: TextPipeline {
            tokenizer,
            vocab,
            max_tokens: usize::try_from(max_tokens).unwrap_or(usize::MAX),
        },
    })
}

/// Loads the weights of `path` into `model`, built from the file's configuration.
pub fn load_weights(model: &mut impl Parameters<f32>, path: &Path) -> Fallible<()> {
    Ok(load(model, path)?)
}

fn tokenizer_name(tokenizer: Tokenizer) -> &'static str {
    match tokenizer {
        Tokenizer::Course => "course",
        Tokenizer::Words => "words",
    }
}

fn tokenizer_from_name(name: &str) -> Option<Tokenizer> {
    match name {
        "course" => Some(Tokenizer::Course),
        "words" => Some(Tokenizer::Words),
        _ => None,
    }
}
