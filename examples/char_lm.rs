//! A character-level language model: an embedding, a GRU and a linear head at every step learn
//! to predict the next character of a short text, with a cross-entropy at every step; then the
//! GRU streams one character at a time to sample new text from the model.
//!
//! ```sh
//! cargo run --release --example char_lm -- --steps 600
//! ```

use std::error::Error;

use clap::Parser;
use recurrent::rand::{rngs::StdRng, Rng, SeedableRng};
use recurrent::{
    clip_grad_norm, AdamConfig, CrossEntropyLoss, EmbeddingConfig, GruConfig, Layer, LinearConfig,
    Mode, Optimizer, Tensor, TimeDistributed, TokenBatch,
};

/// The opening of Lewis Carroll's "Alice's Adventures in Wonderland" (public domain).
const TEXT: &str = "Alice was beginning to get very tired of sitting by her sister on the \
bank, and of having nothing to do: once or twice she had peeped into the book her sister was \
reading, but it had no pictures or conversations in it, and what is the use of a book, thought \
Alice, without pictures or conversations? So she was considering in her own mind (as well as \
she could, for the hot day made her feel very sleepy and stupid), whether the pleasure of \
making a daisy-chain would be worth the trouble of getting up and picking the daisies, when \
suddenly a White Rabbit with pink eyes ran close by her.";

#[derive(Parser)]
#[command(about = "A character-level GRU language model, trained and sampled")]
struct Args {
    /// Training steps (batches of windows of the text).
    #[arg(long, default_value_t = 400)]
    steps: u64,
    /// Characters per training window.
    #[arg(long, default_value_t = 48)]
    window: usize,
    /// Characters to sample after training.
    #[arg(long, default_value_t = 160)]
    sample: usize,
    /// Seed of the initialisation, the windows and the sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse();
    let mut alphabet: Vec<char> = TEXT.chars().collect();
    alphabet.sort_unstable();
    alphabet.dedup();
    let ids: Vec<usize> = TEXT
        .chars()
        .map(|c| {
            alphabet
                .binary_search(&c)
                .expect("every character is in the alphabet")
        })
        .collect();
    let vocab = alphabet.len();

    let mut model = EmbeddingConfig::new(vocab, 24)
        .init_seeded::<f32>(args.seed)?
        .named("embedding")
        .then(
            GruConfig::new(24, 128)
                .init_seeded(args.seed + 1)?
                .named("rnn"),
        )
        .then(
            TimeDistributed::new(LinearConfig::new(128, vocab).init_seeded(args.seed + 2)?)
                .named("head"),
        );
    let mut adam = AdamConfig::new(5e-3).init()?;
    let loss_fn = CrossEntropyLoss::new();
    let mut rng = StdRng::seed_from_u64(args.seed);

    // windows of the text as inputs, the same windows one character later as targets
    let (batch, window) = (16, args.window);
    for step in 0..args.steps {
        let starts: Vec<usize> = (0..batch)
            .map(|_| rng.random_range(0..ids.len() - window - 1))
            .collect();
        let inputs: Vec<&[usize]> = starts.iter().map(|&s| &ids[s..s + window]).collect();
        let targets: Vec<&[usize]> = starts
            .iter()
            .map(|&s| &ids[s + 1..s + window + 1])
            .collect();
        let (inputs, targets) = (
            recurrent::pad_collate(&inputs, 0, None)?,
            recurrent::pad_collate(&targets, 0, None)?,
        );

        let (logits, trace) = model.forward(&inputs, Mode::Train { seed: step })?;
        let loss = loss_fn.forward_sequence(&logits, targets.ids())?;
        let mut grads = model.backward(&trace, &loss.grad)?.params;
        clip_grad_norm(&mut grads, 1.0)?;
        adam.step(&mut model, &grads)?;
        if step % 100 == 0 || step + 1 == args.steps {
            println!(
                "step {step:>4}: loss {:.3} (uniform guess: {:.3})",
                loss.value,
                (vocab as f32).ln()
            );
        }
    }

    // sampling: the GRU streams one character at a time, its state carried from step to step
    let (front, head) = (model.first(), model.last().inner());
    let (embedding, gru) = (front.first(), front.last().inner());
    let mut stream = gru.stream(1, None)?;
    let mut current = ids[0];
    let mut text = String::from(alphabet[current]);
    for _ in 0..args.sample {
        let token = TokenBatch::new(vec![current], 1, 1, None)?;
        let x = embedding.infer(&token)?.into_data().reshape(&[1, 24])?;
        let logits = head.inner().infer(&stream.step(&x)?)?;
        current = sample_softmax(&logits, 0.7, &mut rng);
        text.push(alphabet[current]);
    }
    println!("sampled: {text}");
    Ok(())
}

/// A class drawn from `softmax(logits / temperature)`, logits `(1, C)`.
fn sample_softmax(logits: &Tensor<f32>, temperature: f32, rng: &mut StdRng) -> usize {
    let scores = logits.as_slice();
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<f32> = scores
        .iter()
        .map(|&s| ((s - max) / temperature).exp())
        .collect();
    let mut pick = rng.random::<f32>() * weights.iter().sum::<f32>();
    for (class, &w) in weights.iter().enumerate() {
        if pick < w {
            return class;
        }
        pick -= w;
    }
    weights.len() - 1
}
