//! The lookup table of learned vectors, as PyTorch's `nn.Embedding`.

use core::fmt;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::data::TokenBatch;
use crate::error::{check_shape, Error, Result};
use crate::float::Float;
use crate::mode::Mode;
use crate::nn::{zero_padding, Layer, LayerGrads, Sequence};
use crate::params::{NamedTensors, Parameters};
use crate::tensor::{Shape, Tensor};

/// A table of `num_embeddings` learned vectors of `embedding_dim` features: token id `i` maps
/// to row `i` of `weight (num_embeddings, embedding_dim)`, as
/// [`torch.nn.Embedding`](https://pytorch.org/docs/stable/generated/torch.nn.Embedding.html).
///
/// An optional `padding_idx` names a row that receives no gradient (for the padding token of
/// variable-length batches); [`EmbeddingConfig::with_padding_idx`] also zeroes it, as PyTorch
/// does when it creates the layer.
///
/// As a [`Layer`] it reads a [`TokenBatch`] (time-major ids with their lengths) and returns a
/// [`Sequence`] of their vectors with the same lengths, zero past each length.
///
/// # Shapes
///
/// - input: a [`TokenBatch`] `(T, B)`
/// - output: a [`Sequence`] `(T, B, embedding_dim)`
///
/// # Examples
///
/// ```
/// use recurrent::{EmbeddingConfig, Layer, Mode, Parameters, TokenBatch};
///
/// let emb = EmbeddingConfig::new(100, 8).with_padding_idx(Some(0)).init_seeded::<f32>(0)?;
/// // two sequences of three and two tokens, time-major (T, B) = (3, 2), padded with 0
/// let tokens = TokenBatch::new(vec![5, 7, 9, 5, 0, 0], 3, 2, Some(vec![3, 2]))?;
/// let (x, trace) = emb.forward(&tokens, Mode::Eval)?;
/// let data = x.data().as_slice();
/// assert_eq!(x.data().shape(), &[3, 2, 8]);
/// assert_eq!(data[..8], data[24..32]); // token 5 twice
/// assert!(data[40..48].iter().all(|&v| v == 0.0)); // padding
///
/// let grads = emb.backward(&trace, &x.data().map(|_| 1.0))?;
/// let d_weight = grads.params.get("weight").unwrap();
/// assert_eq!(d_weight.as_slice()[5 * 8], 2.0); // token 5 occurs twice
/// assert!(d_weight.as_slice()[..8].iter().all(|&v| v == 0.0)); // padding gets no gradient
/// assert_eq!(emb.param_names(), ["weight"]);
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding<T> {
    weight: Tensor<T>,
    padding_idx: Option<usize>,
}

/// Configuration of an [`Embedding`]: `EmbeddingConfig::new(num_embeddings, embedding_dim)`,
/// then `with_*` options, then [`init`](EmbeddingConfig::init), as PyTorch's
/// `nn.Embedding(num_embeddings, embedding_dim, padding_idx=None)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddingConfig {
    num_embeddings: usize,
    embedding_dim: usize,
    padding_idx: Option<usize>,
}

impl EmbeddingConfig {
    /// A table of `num_embeddings` vectors of `embedding_dim` features.
    pub fn new(num_embeddings: usize, embedding_dim: usize) -> Self {
        EmbeddingConfig {
            num_embeddings,
            embedding_dim,
            padding_idx: None,
        }
    }

    /// The padding row: [`init`](EmbeddingConfig::init) sets it to zero and it never
    /// receives a gradient; `init` rejects it unless `padding_idx < num_embeddings`. Defaults
    /// to `None`, no padding row.
    #[must_use = "returns a new config and does not modify self"]
    pub fn with_padding_idx(self, padding_idx: Option<usize>) -> Self {
        EmbeddingConfig {
            padding_idx,
            ..self
        }
    }

    /// A table with PyTorch's default initialisation: every entry drawn from `N(0, 1)`, then
    /// the padding row, if any, set to zero.
    ///
    /// # Errors
    ///
    /// [`Error::IndexOutOfRange`] unless the padding row is below `num_embeddings`;
    /// [`Error::SizeOverflow`] naming `num_embeddings` and `embedding_dim` if the table's size
    /// (in elements or bytes) overflows `usize`; [`Error::Allocation`] if its memory cannot be
    /// allocated.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::EmbeddingConfig;
    ///
    /// let mut rng = StdRng::seed_from_u64(0);
    /// let emb = EmbeddingConfig::new(1000, 16).init::<f32>(&mut rng)?;
    /// assert_eq!(emb.weight().shape(), &[1000, 16]);
    ///
    /// let e = EmbeddingConfig::new(1 << 40, 1 << 24).init::<f32>(&mut rng).unwrap_err();
    /// assert_eq!(
    ///     e.to_string(),
    ///     "size overflow in embedding weight: the product of [1099511627776, 16777216] does \
    ///      not fit in usize"
    /// );
    /// let e = EmbeddingConfig::new(4, 2).with_padding_idx(Some(4)).init::<f64>(&mut rng);
    /// assert_eq!(
    ///     e.unwrap_err().to_string(),
    ///     "index out of range in embedding padding_idx: 4 is not in 0..4"
    /// );
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn init<T: Float>(&self, rng: &mut (impl Rng + ?Sized)) -> Result<Embedding<T>> {
        if let Some(idx) = self.padding_idx {
            check_padding_idx(idx, self.num_embeddings)?;
        }
        let dims = [self.num_embeddings, self.embedding_dim];
        let mut weight = Tensor::try_randn("embedding weight", &dims, rng)?;
        if let Some(idx) = self.padding_idx {
            let dim = self.embedding_dim;
            weight.as_mut_slice()[idx * dim..(idx + 1) * dim].fill(T::zero());
        }
        Ok(Embedding {
            weight,
            padding_idx: self.padding_idx,
        })
    }

    /// [`init`](EmbeddingConfig::init) from `StdRng::seed_from_u64(seed)`.
    ///
    /// # Errors
    ///
    /// As [`init`](EmbeddingConfig::init).
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::EmbeddingConfig;
    ///
    /// let config = EmbeddingConfig::new(10, 3).with_padding_idx(Some(0));
    /// let emb = config.init_seeded::<f32>(7)?;
    /// assert_eq!(emb, config.init(&mut StdRng::seed_from_u64(7))?);
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn init_seeded<T: Float>(&self, seed: u64) -> Result<Embedding<T>> {
        self.init(&mut StdRng::seed_from_u64(seed))
    }
}

impl<T: Float> Embedding<T> {
    /// A table with the given weight `(num_embeddings, embedding_dim)` (for example loaded from
    /// PyTorch) and padding row. The padding row is kept as given, not zeroed, as in PyTorch's
    /// `Embedding.from_pretrained`.
    ///
    /// # Errors
    ///
    /// [`Error::RankMismatch`] if `weight` is not a matrix; [`Error::IndexOutOfRange`] unless
    /// `padding_idx` is a row of it.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::{Embedding, Layer, Tensor, TokenBatch};
    ///
    /// let w = Tensor::from_vec(vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0], &[3, 2])?;
    /// let emb = Embedding::from_weight(w, None)?;
    /// let tokens = TokenBatch::new(vec![2, 0], 2, 1, None)?;
    /// assert_eq!(emb.infer(&tokens)?.data().as_slice(), &[4.0, 5.0, 0.0, 1.0]);
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn from_weight(weight: Tensor<T>, padding_idx: Option<usize>) -> Result<Self> {
        let emb = Embedding {
            weight,
            padding_idx,
        };
        emb.check_weight()?;
        if let Some(idx) = padding_idx {
            check_padding_idx(idx, emb.num_embeddings())?;
        }
        Ok(emb)
    }

    /// The table, `(num_embeddings, embedding_dim)`.
    pub fn weight(&self) -> &Tensor<T> {
        &self.weight
    }

    /// The number of rows (the vocabulary size).
    pub fn num_embeddings(&self) -> usize {
        self.weight.shape()[0]
    }

    /// The features per row.
    ///
    /// # Panics
    ///
    /// Panics if the weight is not a matrix, which only
    /// [`visit_params_mut`](Parameters::visit_params_mut) can make it.
    pub fn embedding_dim(&self) -> usize {
        self.weight.shape()[1]
    }

    /// The row that receives no gradient, if any.
    pub fn padding_idx(&self) -> Option<usize> {
        self.padding_idx
    }

    /// The rows of `ids`, shaped `(dims…, embedding_dim)`; see [`Layer::infer`](#method.infer).
    fn lookup(&self, ids: &[usize], dims: &[usize]) -> Result<Tensor<T>> {
        self.check_weight()?;
        if dims.len() > 2 {
            return Err(Error::InvalidRank {
                rank: dims.len() + 1,
            });
        }
        let layout = Shape::new(dims);
        if ids.len() != layout.len() {
            return Err(Error::DataLength {
                shape: layout,
                actual: ids.len(),
            });
        }
        self.check_ids(ids)?;
        let dim = self.embedding_dim();
        let table = self.weight.as_slice();
        let mut data = Vec::with_capacity(ids.len() * dim);
        for &id in ids {
            data.extend_from_slice(&table[id * dim..(id + 1) * dim]);
        }
        let mut out_dims = dims.to_vec();
        out_dims.push(dim);
        Tensor::from_vec(data, &out_dims)
    }

    /// The weight's gradient for the lookup of `ids`; see [`Layer::backward`](#method.backward).
    fn weight_gradient(&self, ids: &[usize], d_output: &Tensor<T>) -> Result<NamedTensors<T>> {
        self.check_weight()?;
        self.check_ids(ids)?;
        let dim = self.embedding_dim();
        let dims = d_output.shape();
        let lead = &dims[..dims.len() - 1];
        let expected = if lead.iter().product::<usize>() == ids.len() {
            let mut e = lead.to_vec();
            e.push(dim);
            Shape::new(&e)
        } else {
            Shape::from([ids.len(), dim])
        };
        check_shape("embedding d_output", expected, d_output.raw_shape())?;
        let mut d_weight = self.weight.zeros_like();
        let table = d_weight.as_mut_slice();
        for (&id, row) in ids.iter().zip(d_output.as_slice().chunks_exact(dim.max(1))) {
            if Some(id) == self.padding_idx {
                continue;
            }
            // dW[id] += dY[k]
            table[id * dim..(id + 1) * dim]
                .iter_mut()
                .zip(row)
                .for_each(|(s, &g)| *s = *s + g);
        }
        let mut grads = NamedTensors::new();
        grads.push("weight", d_weight);
        Ok(grads)
    }

    /// Checks that the weight is a matrix: [`from_weight`](Embedding::from_weight) ensures it,
    /// but [`visit_params_mut`](Parameters::visit_params_mut) can replace it.
    fn check_weight(&self) -> Result<()> {
        if self.weight.rank() == 2 {
            Ok(())
        } else {
            Err(Error::RankMismatch {
                op: "embedding weight",
                expected: 2,
                layout: "(num_embeddings, embedding_dim)",
                actual: self.weight.raw_shape(),
            })
        }
    }

    fn check_ids(&self, ids: &[usize]) -> Result<()> {
        let bound = self.num_embeddings();
        match ids.iter().find(|&&id| id >= bound) {
            Some(&index) => Err(Error::IndexOutOfRange {
                op: "embedding lookup",
                index,
                bound,
            }),
            None => Ok(()),
        }
    }
}

/// [`Error::IndexOutOfRange`] unless `index < bound` (the number of rows).
fn check_padding_idx(index: usize, bound: usize) -> Result<()> {
    if index < bound {
        Ok(())
    } else {
        Err(Error::IndexOutOfRange {
            op: "embedding padding_idx",
            index,
            bound,
        })
    }
}

impl<T: Float> Parameters<T> for Embedding<T> {
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Tensor<T>)) {
        f("weight", &self.weight);
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor<T>)) {
        f("weight", &mut self.weight);
    }
}

/// `Embedding` as a [`Layer`]: a [`TokenBatch`] `(T, B)` becomes a [`Sequence`] `(T, B, E)`
/// with the batch's lengths; the gradient of a step past its sequence's length is dropped, as
/// those steps are never read.
impl<T: Float> Layer<T> for Embedding<T> {
    type Input = TokenBatch;
    type Output = Sequence<T>;
    type InputGrad = ();
    type OutputGrad = Tensor<T>;
    type Trace = TokenBatch;

    /// Looks up every token; keeps the tokens for the backward pass. See
    /// [`infer`](#method.infer).
    fn forward(&self, tokens: &TokenBatch, _mode: Mode) -> Result<(Sequence<T>, TokenBatch)> {
        Ok((self.infer(tokens)?, tokens.clone()))
    }

    /// The gradient of the table, `weight`: row `i` is the sum of the rows of `d_output`
    /// `(T, B, embedding_dim)` at the valid steps holding token `i` (a scatter-add), and zero
    /// for the padding row.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `d_output` is not `(T, B, embedding_dim)`, naming both
    /// shapes; [`Error::IndexOutOfRange`] if a token is not below `num_embeddings`.
    fn backward(&self, tokens: &TokenBatch, d_output: &Tensor<T>) -> Result<LayerGrads<T, ()>> {
        self.check_weight()?;
        let (t_n, b_n, dim) = (tokens.steps(), tokens.batch_size(), self.embedding_dim());
        check_shape(
            "embedding output gradient",
            [t_n, b_n, dim].into(),
            d_output.raw_shape(),
        )?;
        let params = match tokens.lengths() {
            None => self.weight_gradient(tokens.ids(), d_output)?,
            lengths => {
                let mut d = d_output.clone();
                zero_padding(d.as_mut_slice(), dim, lengths);
                self.weight_gradient(tokens.ids(), &d)?
            }
        };
        Ok(LayerGrads { input: (), params })
    }

    /// The vector of every token, `(T, B, embedding_dim)`, with the batch's lengths.
    ///
    /// # Errors
    ///
    /// [`Error::IndexOutOfRange`], naming the token, if it is not below `num_embeddings`;
    /// [`Error::RankMismatch`] naming the weight if it is not a matrix (possible only after
    /// [`visit_params_mut`](Parameters::visit_params_mut) replaced it).
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::{EmbeddingConfig, Layer, TokenBatch};
    ///
    /// let emb = EmbeddingConfig::new(10, 4).init_seeded::<f32>(0)?;
    /// let tokens = TokenBatch::new(vec![1, 2, 3], 3, 1, None)?;
    /// assert_eq!(emb.infer(&tokens)?.data().shape(), &[3, 1, 4]);
    /// let e = emb.infer(&TokenBatch::new(vec![1, 12], 2, 1, None)?).unwrap_err();
    /// assert_eq!(e.to_string(), "index out of range in embedding lookup: 12 is not in 0..10");
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    fn infer(&self, tokens: &TokenBatch) -> Result<Sequence<T>> {
        let dims = [tokens.steps(), tokens.batch_size()];
        let mut data = self.lookup(tokens.ids(), &dims)?;
        zero_padding(data.as_mut_slice(), self.embedding_dim(), tokens.lengths());
        Sequence::new(data, tokens.lengths().map(<[usize]>::to_vec))
    }
}

impl<T: Float> fmt::Display for Embedding<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Embedding {{ num_embeddings: {}, embedding_dim: {}, padding_idx: {:?} }}",
            self.num_embeddings(),
            self.embedding_dim(),
            self.padding_idx
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    fn table() -> Embedding<f64> {
        let w = Tensor::from_vec(vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0], &[3, 2]).unwrap();
        Embedding::from_weight(w, None).unwrap()
    }

    /// `W = [[0, 1], [2, 3], [4, 5]]`, ids `[2, 0, 2]`: the output is rows 2, 0, 2; with
    /// `dY = [[1, 2], [3, 4], [5, 6]]`, `dW[2] = [1 + 5, 2 + 6]`, `dW[0] = [3, 4]`, `dW[1] = 0`.
    #[test]
    fn lookup_and_scatter_add_by_hand() {
        let emb = table();
        let y = emb.lookup(&[2, 0, 2], &[3]).unwrap();
        assert_eq!(y.shape(), &[3, 2]);
        assert_eq!(y.as_slice(), &[4.0, 5.0, 0.0, 1.0, 4.0, 5.0]);
        let d_out = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2]).unwrap();
        let grads = emb.weight_gradient(&[2, 0, 2], &d_out).unwrap();
        assert_eq!(grads.len(), 1);
        assert_eq!(
            grads.get("weight").unwrap().as_slice(),
            &[3.0, 4.0, 0.0, 0.0, 6.0, 8.0]
        );
    }

    #[test]
    fn padding_row_is_zeroed_and_gets_no_gradient() {
        let config = EmbeddingConfig::new(3, 2).with_padding_idx(Some(1));
        let emb = config.init::<f64>(&mut StdRng::seed_from_u64(5)).unwrap();
        assert_eq!(emb.padding_idx(), Some(1));
        // the N(0, 1) draw of every row, then row 1 zeroed
        let mut expected = Tensor::randn(&[3, 2], &mut StdRng::seed_from_u64(5));
        expected.as_mut_slice()[2..4].fill(0.0);
        assert_eq!(emb.weight(), &expected);
        let d_out = Tensor::full(&[2, 2, 2], 1.0);
        let grads = emb.weight_gradient(&[1, 1, 0, 1], &d_out).unwrap();
        assert_eq!(
            grads.get("weight").unwrap().as_slice(),
            &[1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
        );
        // from_weight keeps the padding row as given
        let kept = Embedding::from_weight(table().weight().clone(), Some(1)).unwrap();
        assert_eq!(kept.lookup(&[1], &[]).unwrap().as_slice(), &[2.0, 3.0]);
    }

    #[test]
    fn time_major_ids_give_time_batch_features() {
        let emb = EmbeddingConfig::new(7, 3)
            .init::<f32>(&mut StdRng::seed_from_u64(0))
            .unwrap();
        let y = emb.lookup(&[0, 1, 2, 3, 4, 5], &[3, 2]).unwrap();
        assert_eq!(y.shape(), &[3, 2, 3]);
        assert_eq!(&y.as_slice()[9..12], &emb.weight().as_slice()[9..12]);
        assert_eq!(
            emb.to_string(),
            "Embedding { num_embeddings: 7, embedding_dim: 3, padding_idx: None }"
        );
    }

    #[test]
    fn bad_ids_and_shapes_are_errors() {
        let emb = table();
        assert_eq!(
            emb.lookup(&[0, 3], &[2]).unwrap_err(),
            Error::IndexOutOfRange {
                op: "embedding lookup",
                index: 3,
                bound: 3
            }
        );
        assert!(matches!(
            emb.weight_gradient(&[5], &Tensor::zeros(&[1, 2])),
            Err(Error::IndexOutOfRange { index: 5, .. })
        ));
        assert_eq!(
            emb.lookup(&[0; 8], &[2, 2, 2]).unwrap_err(),
            Error::InvalidRank { rank: 4 }
        );
        let e = emb
            .weight_gradient(&[0, 1], &Tensor::zeros(&[1, 2, 3]))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "shape mismatch in embedding d_output: expected [1, 2, 2], got [1, 2, 3]"
        );
        let e = Embedding::from_weight(Tensor::<f64>::zeros(&[2, 2]), Some(2)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "index out of range in embedding padding_idx: 2 is not in 0..2"
        );
        let e = Embedding::from_weight(Tensor::<f64>::zeros(&[2, 2, 2]), None).unwrap_err();
        assert!(
            e.to_string().contains("(num_embeddings, embedding_dim)"),
            "{e}"
        );
    }

    /// A seeded table is the same as before the fallible allocation.
    #[test]
    fn init_draws_what_tensor_randn_draws() {
        let emb = EmbeddingConfig::new(6, 4)
            .init::<f32>(&mut StdRng::seed_from_u64(7))
            .unwrap();
        let expected = Tensor::randn(&[6, 4], &mut StdRng::seed_from_u64(7));
        assert_eq!(emb.weight(), &expected);
    }

    #[test]
    fn sizes_too_large_for_memory_are_errors_not_aborts() {
        let rng = &mut StdRng::seed_from_u64(0);
        // the number of elements overflows usize (it was wrapped before: an empty "success")
        let e = EmbeddingConfig::new(1 << 40, 1 << 24)
            .init::<f32>(rng)
            .unwrap_err();
        assert_eq!(
            e,
            Error::SizeOverflow {
                what: "embedding weight",
                sizes: vec![1 << 40, 1 << 24]
            }
        );
        // an empty table is no overflow
        let empty = EmbeddingConfig::new(usize::MAX, 0)
            .init::<f64>(rng)
            .unwrap();
        assert_eq!(empty.weight().shape(), &[usize::MAX, 0]);
        // 2⁶⁰ bytes fit in usize but in no address space
        let e = EmbeddingConfig::new(1 << 30, 1 << 27)
            .init::<f64>(rng)
            .unwrap_err();
        assert_eq!(
            e,
            Error::Allocation {
                what: "embedding weight",
                bytes: 1 << 60
            }
        );
    }

    #[test]
    fn a_replaced_weight_of_the_wrong_rank_is_an_error_not_a_panic() {
        for replacement in [Tensor::zeros(&[6]), Tensor::zeros(&[3, 2, 1])] {
            let message = format!(
                "rank mismatch in embedding weight: expected a rank-2 tensor \
                 (num_embeddings, embedding_dim), got shape {}",
                replacement.raw_shape()
            );
            let mut emb = table();
            let mut replacement = Some(replacement);
            emb.visit_params_mut(&mut |_, p| *p = replacement.take().unwrap());
            let e = emb.lookup(&[0, 2], &[2]).unwrap_err();
            assert_eq!(e.to_string(), message);
            let e = emb
                .weight_gradient(&[0, 2], &Tensor::zeros(&[2, 2]))
                .unwrap_err();
            assert_eq!(e.to_string(), message);
        }
    }
}
