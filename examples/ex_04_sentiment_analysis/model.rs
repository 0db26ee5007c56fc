//! The classifier: embedding → dropout → bidirectional LSTM or GRU (one or more layers, dropout
//! between them) → a pooling of its output → dropout → linear head with two outputs, a
//! [`Chain`] of the crate's layers with one adapter of our own, [`Pooling`]. Its
//! configuration is saved with the weights, so that `predict` rebuilds it.

use core::fmt;

use recurrent::{
    Chain, Dropout, DropoutConfig, Embedding, EmbeddingConfig, Float, GruConfig, LastHidden, Layer,
    LayerGrads, Linear, LinearConfig, LstmConfig, MaxPool, MeanPool, Mode, Named, NamedTensors,
    Parameters, PoolTrace, Result, Sequence, Tensor, TimeDistributed, TokenBatch,
};
use serde_json::{json, Value};

/// The recurrent cell of the bidirectional network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CellKind {
    /// Long short-term memory.
    Lstm,
    /// Gated recurrent unit.
    Gru,
}

impl CellKind {
    /// `"LSTM"` or `"GRU"`.
    pub fn name(self) -> &'static str {
        match self {
            CellKind::Lstm => "LSTM",
            CellKind::Gru => "GRU",
        }
    }
}

/// How the network's output sequence becomes one row per review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// The last layer's final forward and backward hidden states (the course's choice):
    /// `2·H` features.
    Final,
    /// The element-wise maximum and the mean over each review's valid steps, side by side:
    /// `4·H` features.
    MaxMean,
}

impl Pooling {
    /// Features per review, for a bidirectional network of `hidden` units per direction.
    pub fn features(self, hidden: usize) -> usize {
        match self {
            Pooling::Final => 2 * hidden,
            Pooling::MaxMean => 4 * hidden,
        }
    }

    fn key(self) -> &'static str {
        match self {
            Pooling::Final => "final",
            Pooling::MaxMean => "max+mean",
        }
    }
}

/// What [`Pooling`] keeps for its backward pass.
pub enum PoolingTrace {
    /// [`Pooling::Final`].
    Final(PoolTrace),
    /// [`Pooling::MaxMean`]: the maximum's and the mean's.
    MaxMean(PoolTrace, PoolTrace),
}

impl<T: Float> Layer<T> for Pooling {
    type Input = Sequence<T>;
    type Output = Tensor<T>;
    type InputGrad = Tensor<T>;
    type OutputGrad = Tensor<T>;
    type Trace = PoolingTrace;

    fn forward(&self, input: &Sequence<T>, mode: Mode) -> Result<(Tensor<T>, PoolingTrace)> {
        match self {
            Pooling::Final => {
                let (y, trace) = Layer::<T>::forward(&LastHidden, input, mode)?;
                Ok((y, PoolingTrace::Final(trace)))
            }
            Pooling::MaxMean => {
                let (max, max_trace) = Layer::<T>::forward(&MaxPool, input, mode)?;
                let (mean, mean_trace) = Layer::<T>::forward(&MeanPool, input, mode)?;
                Ok((
                    side_by_side(&max, &mean)?,
                    PoolingTrace::MaxMean(max_trace, mean_trace),
                ))
            }
        }
    }

    fn backward(&self, trace: &PoolingTrace, d_y: &Tensor<T>) -> Result<LayerGrads<T, Tensor<T>>> {
        let input = match trace {
            PoolingTrace::Final(trace) => LastHidden.backward(trace, d_y)?.input,
            PoolingTrace::MaxMean(max_trace, mean_trace) => {
                let (d_max, d_mean) = halves(d_y)?;
                let mut d_x = MaxPool.backward(max_trace, &d_max)?.input;
                let from_mean = MeanPool.backward(mean_trace, &d_mean)?.input;
                for (d, &m) in d_x.as_mut_slice().iter_mut().zip(from_mean.as_slice()) {
                    *d = *d + m;
                }
                d_x
            }
        };
        Ok(LayerGrads {
            input,
            params: NamedTensors::new(),
        })
    }
}

impl<T: Float> Parameters<T> for Pooling {
    fn visit_params(&self, _: &mut dyn FnMut(&str, &Tensor<T>)) {}

    fn visit_params_mut(&mut self, _: &mut dyn FnMut(&str, &mut Tensor<T>)) {}
}

impl fmt::Display for Pooling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pooling::Final => f.write_str("LastHidden()"),
            Pooling::MaxMean => f.write_str("[MaxPool() | MeanPool()]"),
        }
    }
}

/// `[a | b]`: rows `(B, F)` side by side into `(B, 2F)`.
fn side_by_side<T: Float>(a: &Tensor<T>, b: &Tensor<T>) -> Result<Tensor<T>> {
    let (rows, f) = (a.shape()[0], a.shape()[1]);
    let (a, b) = (a.as_slice(), b.as_slice());
    let mut data = Vec::with_capacity(2 * rows * f);
    for r in 0..rows {
        data.extend_from_slice(&a[r * f..(r + 1) * f]);
        data.extend_from_slice(&b[r * f..(r + 1) * f]);
    }
    Tensor::from_vec(data, &[rows, 2 * f])
}

/// The inverse of [`side_by_side`].
fn halves<T: Float>(x: &Tensor<T>) -> Result<(Tensor<T>, Tensor<T>)> {
    let (rows, f) = (x.shape()[0], x.shape()[1] / 2);
    let half = |k: usize| -> Vec<T> {
        let x = x.as_slice();
        (0..rows)
            .flat_map(|r| {
                x[r * 2 * f + k * f..r * 2 * f + (k + 1) * f]
                    .iter()
                    .copied()
            })
            .collect()
    };
    Ok((
        Tensor::from_vec(half(0), &[rows, f])?,
        Tensor::from_vec(half(1), &[rows, f])?,
    ))
}

/// Everything that decides the model's shape and its input: saved beside the weights.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// LSTM or GRU.
    pub cell: CellKind,
    /// Vocabulary size, with the padding and unknown entries.
    pub vocab: usize,
    /// Embedding width.
    pub embedding: usize,
    /// Hidden units per direction.
    pub hidden: usize,
    /// Recurrent layers.
    pub layers: usize,
    /// Dropout on the embeddings.
    pub embedding_dropout: f64,
    /// Dropout between recurrent layers.
    pub recurrent_dropout: f64,
    /// Dropout before the head.
    pub head_dropout: f64,
    /// What the head reads.
    pub pooling: Pooling,
}

impl ModelConfig {
    /// The configuration as JSON, for the weight file's metadata.
    pub fn to_json(&self) -> Value {
        json!({
            "cell": self.cell.name(),
            "vocab": self.vocab,
            "embedding": self.embedding,
            "hidden": self.hidden,
            "layers": self.layers,
            "embedding_dropout": self.embedding_dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "head_dropout": self.head_dropout,
            "pooling": self.pooling.key(),
        })
    }

    /// Reads what [`to_json`](Self::to_json) wrote; an error names the missing or bad field.
    pub fn from_json(value: &Value) -> std::result::Result<Self, String> {
        let text = |key: &str| {
            value[key]
                .as_str()
                .ok_or_else(|| format!("the model configuration has no text field `{key}`"))
        };
        let count = |key: &str| {
            value[key]
                .as_u64()
                .filter(|&n| n > 0)
                .map(|n| n as usize)
                .ok_or_else(|| format!("the model configuration has no positive `{key}`"))
        };
        let rate = |key: &str| {
            value[key]
                .as_f64()
                .filter(|p| (0.0..1.0).contains(p))
                .ok_or_else(|| format!("the model configuration has no rate in [0, 1) `{key}`"))
        };
        Ok(ModelConfig {
            cell: match text("cell")? {
                "LSTM" => CellKind::Lstm,
                "GRU" => CellKind::Gru,
                other => return Err(format!("unknown cell `{other}` in the model configuration")),
            },
            vocab: count("vocab")?,
            embedding: count("embedding")?,
            hidden: count("hidden")?,
            layers: count("layers")?,
            embedding_dropout: rate("embedding_dropout")?,
            recurrent_dropout: rate("recurrent_dropout")?,
            head_dropout: rate("head_dropout")?,
            pooling: match text("pooling")? {
                "final" => Pooling::Final,
                "max+mean" => Pooling::MaxMean,
                other => {
                    return Err(format!(
                        "unknown pooling `{other}` in the model configuration"
                    ))
                }
            },
        })
    }
}

/// The classifier over a recurrent network `R`: token ids in, two logits per review out.
/// Parameters are named as in PyTorch: `embedding.weight`, `rnn.weight_ih_l0`, …,
/// `head.weight`, `head.bias`.
pub type Classifier<R> = Chain<
    Chain<
        Chain<Chain<Chain<Named<Embedding<f32>>, TimeDistributed<Dropout>>, Named<R>>, Pooling>,
        Dropout,
    >,
    Named<Linear<f32>>,
>;

/// What a classifier is to the training loop: token ids in, logits `(B, 2)` out.
pub trait Model:
    Layer<f32, Input = TokenBatch, Output = Tensor<f32>, OutputGrad = Tensor<f32>>
    + fmt::Display
    + Clone
    + Send
    + Sync
{
}

impl<M> Model for M where
    M: Layer<f32, Input = TokenBatch, Output = Tensor<f32>, OutputGrad = Tensor<f32>>
        + fmt::Display
        + Clone
        + Send
        + Sync
{
}

/// The classifier of `config` around the recurrent network `rnn`, its other layers
/// initialised from `seed` (PyTorch's initialisations: N(0, 1) embeddings with a zero padding
/// row, uniform linear weights).
pub fn classifier<R>(config: &ModelConfig, rnn: R, seed: u64) -> Result<Classifier<R>>
where
    R: Layer<
        f32,
        Input = Sequence<f32>,
        Output = Sequence<f32>,
        InputGrad = Tensor<f32>,
        OutputGrad = Tensor<f32>,
    >,
{
    let embedding = EmbeddingConfig::new(config.vocab, config.embedding)
        .with_padding_idx(Some(0))
        .init_seeded(seed)?
        .named("embedding");
    let head = LinearConfig::new(config.pooling.features(config.hidden), 2)
        .init_seeded(seed + 1)?
        .named("head");
    Ok(embedding
        .then(TimeDistributed::new(
            DropoutConfig::new(config.embedding_dropout).init()?,
        ))
        .then(rnn.named("rnn"))
        .then(config.pooling)
        .then(DropoutConfig::new(config.head_dropout).init()?)
        .then(head))
}

/// Builds the classifier of `config` (with its network's weights from `seed`) and hands it to
/// `$body` as `$model`, whichever the cell: the two classifiers are different types.
macro_rules! with_classifier {
    ($config:expr, $seed:expr, |$model:ident| $body:expr) => {{
        let config: &crate::model::ModelConfig = $config;
        let seed: u64 = $seed;
        match config.cell {
            crate::model::CellKind::Lstm => {
                let rnn = crate::model::lstm(config, seed)?;
                #[allow(unused_mut)]
                let mut $model = crate::model::classifier(config, rnn, seed + 100)?;
                $body
            }
            crate::model::CellKind::Gru => {
                let rnn = crate::model::gru(config, seed)?;
                #[allow(unused_mut)]
                let mut $model = crate::model::classifier(config, rnn, seed + 100)?;
                $body
            }
        }
    }};
}

/// The bidirectional LSTM of `config`, PyTorch's default initialisation from `seed`.
pub fn lstm(config: &ModelConfig, seed: u64) -> Result<recurrent::Lstm<f32>> {
    LstmConfig::new(config.embedding, config.hidden)
        .with_num_layers(config.layers)
        .with_bidirectional(true)
        .with_dropout(config.recurrent_dropout)
        .init_seeded(seed)
}

/// The bidirectional GRU of `config`, PyTorch's default initialisation from `seed`.
pub fn gru(config: &ModelConfig, seed: u64) -> Result<recurrent::Gru<f32>> {
    GruConfig::new(config.embedding, config.hidden)
        .with_num_layers(config.layers)
        .with_bidirectional(true)
        .with_dropout(config.recurrent_dropout)
        .init_seeded(seed)
}
