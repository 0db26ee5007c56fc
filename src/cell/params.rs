//! [`CellParams`]: a cell's parameters under PyTorch's names, with the recurrent weight kept in
//! the layout of the per-step product and a version that changes with every mutation.

use core::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use rand::Rng;

use super::Init;
use crate::error::{check_shape, Error, Result};
use crate::float::Float;
use crate::linalg::PackedWeight;
use crate::tensor::{checked_size, Shape, Tensor};

/// The source of parameter versions: each mutable access to any [`CellParams`] takes a new
/// one, so two versions are equal only if no mutation happened in between.
static NEXT_VERSION: AtomicU64 = AtomicU64::new(1);

fn new_version() -> u64 {
    NEXT_VERSION.fetch_add(1, Ordering::Relaxed)
}

/// The parameters of a cell, under PyTorch's names (`weight_ih`, `weight_hh`, `bias_ih`,
/// `bias_hh`), plus any extra parameters a cell of your own needs; the same type holds their
/// gradients.
///
/// `weight_ih` is `(G·H, I)` and `weight_hh` is `(G·H, H_out)`: G gate blocks of H rows each,
/// in the cell's gate order. The biases are `(G·H)`, both present or both absent. The sequence
/// driver computes the gradients of these four; a cell accumulates those of its `extra`
/// parameters itself, in [`Cell::step_backward`](crate::Cell::step_backward).
///
/// The fields are private: every mutable accessor ([`weight_hh_mut`](CellParams::weight_hh_mut),
/// [`visit_mut`](CellParams::visit_mut), …) drops the copy of `weight_hh` kept for
/// [`kernels::recurrent_product`](crate::kernels::recurrent_product) and moves the
/// [`version`](CellParams::version) on, so neither can go stale.
#[derive(Clone)]
pub struct CellParams<T> {
    weight_ih: Tensor<T>,
    weight_hh: Tensor<T>,
    bias_ih: Option<Tensor<T>>,
    bias_hh: Option<Tensor<T>>,
    extra: Vec<(&'static str, Tensor<T>)>,
    /// Changes with every mutable access (see [`CellParams::version`]).
    version: u64,
    /// `weight_hhᵀ` packed for the per-step product, made on first use.
    packed_hh: OnceLock<PackedWeight<T>>,
    /// `weight_hh` packed for the per-step product of backward, made on first use.
    packed_hh_backward: OnceLock<PackedWeight<T>>,
}

/// Parameters are equal when their values are (whatever their versions and caches).
impl<T: PartialEq> PartialEq for CellParams<T> {
    fn eq(&self, other: &Self) -> bool {
        self.weight_ih == other.weight_ih
            && self.weight_hh == other.weight_hh
            && self.bias_ih == other.bias_ih
            && self.bias_hh == other.bias_hh
            && self.extra == other.extra
    }
}

impl<T: Float> CellParams<T> {
    /// The four standard parameters and no extra one.
    pub fn new(
        weight_ih: Tensor<T>,
        weight_hh: Tensor<T>,
        bias_ih: Option<Tensor<T>>,
        bias_hh: Option<Tensor<T>>,
    ) -> Self {
        CellParams {
            weight_ih,
            weight_hh,
            bias_ih,
            bias_hh,
            extra: Vec::new(),
            version: new_version(),
            packed_hh: OnceLock::new(),
            packed_hh_backward: OnceLock::new(),
        }
    }

    /// Adds an extra parameter called `name`.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::{Cell, LstmCellConfig, Tensor};
    ///
    /// let lstm = LstmCellConfig::new(2, 3).init::<f64>(&mut StdRng::seed_from_u64(0))?;
    /// let params = lstm.params().clone().with_extra("weight_ci", Tensor::zeros(&[3]));
    /// assert_eq!(params.extra("weight_ci").unwrap().shape(), &[3]);
    /// assert_eq!(params.count(), lstm.params().count() + 3);
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    #[must_use = "returns new parameters and does not modify self"]
    pub fn with_extra(mut self, name: &'static str, value: Tensor<T>) -> Self {
        self.renew_version();
        self.extra.push((name, value));
        self
    }

    /// Input-to-hidden weights, `(G·H, I)`.
    pub fn weight_ih(&self) -> &Tensor<T> {
        &self.weight_ih
    }

    /// Hidden-to-hidden weights, `(G·H, H_out)`.
    pub fn weight_hh(&self) -> &Tensor<T> {
        &self.weight_hh
    }

    /// Input-to-hidden bias, `(G·H)`, if the cell has biases.
    pub fn bias_ih(&self) -> Option<&Tensor<T>> {
        self.bias_ih.as_ref()
    }

    /// Hidden-to-hidden bias, `(G·H)`, if the cell has biases.
    pub fn bias_hh(&self) -> Option<&Tensor<T>> {
        self.bias_hh.as_ref()
    }

    /// The extra parameter called `name`.
    pub fn extra(&self, name: &str) -> Option<&Tensor<T>> {
        self.extra.iter().find(|(n, _)| *n == name).map(|(_, t)| t)
    }

    /// `weight_ih`, mutably.
    pub fn weight_ih_mut(&mut self) -> &mut Tensor<T> {
        self.renew_version();
        &mut self.weight_ih
    }

    /// `weight_hh`, mutably (the packed copy is made again on next use).
    pub fn weight_hh_mut(&mut self) -> &mut Tensor<T> {
        self.renew_version();
        &mut self.weight_hh
    }

    /// `bias_ih`, mutably.
    pub fn bias_ih_mut(&mut self) -> Option<&mut Tensor<T>> {
        self.renew_version();
        self.bias_ih.as_mut()
    }

    /// `bias_hh`, mutably.
    pub fn bias_hh_mut(&mut self) -> Option<&mut Tensor<T>> {
        self.renew_version();
        self.bias_hh.as_mut()
    }

    /// The extra parameter called `name`, mutably.
    pub fn extra_mut(&mut self, name: &str) -> Option<&mut Tensor<T>> {
        self.renew_version();
        self.extra
            .iter_mut()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t)
    }

    /// Replaces both biases (`None` for a cell without them); a cell checks that they come in
    /// pairs of the right shape when it next runs.
    pub fn set_biases(&mut self, bias_ih: Option<Tensor<T>>, bias_hh: Option<Tensor<T>>) {
        self.renew_version();
        self.bias_ih = bias_ih;
        self.bias_hh = bias_hh;
    }

    /// A number that changes whenever the parameters may have changed (any mutable access),
    /// and only then: a trace records it, and a backward pass refuses a trace made with other
    /// parameters.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Drops the packed copies of `weight_hh` and takes a new version: called by every mutable access,
    /// and by the cells' constructors, so that traces made with these values under another
    /// cell (built from a clone of them) are refused.
    pub(crate) fn renew_version(&mut self) {
        self.version = new_version();
        self.packed_hh = OnceLock::new();
        self.packed_hh_backward = OnceLock::new();
    }

    /// `weight_hhᵀ` packed for the per-step product `h·W_hhᵀ`, packed on first use.
    pub(crate) fn packed_weight_hh(&self) -> &PackedWeight<T> {
        let w = &self.weight_hh;
        let (rows, cols) = (w.shape()[0], w.shape()[1]);
        self.packed_hh
            .get_or_init(|| PackedWeight::transposed(w.as_slice(), rows, cols))
    }

    /// `weight_hh` packed for the per-step product of backward `d_g·W_hh`, packed on first
    /// use.
    pub(crate) fn packed_weight_hh_backward(&self) -> &PackedWeight<T> {
        let w = &self.weight_hh;
        let (rows, cols) = (w.shape()[0], w.shape()[1]);
        self.packed_hh_backward
            .get_or_init(|| PackedWeight::plain(w.as_slice(), rows, cols))
    }

    /// Draws every parameter from PyTorch's default `U(−1/√H, 1/√H)`, where `H` is
    /// `hidden_size`, in the order `weight_ih (gate_width, input_size)`,
    /// `weight_hh (gate_width, hidden_size)`, `bias_ih`, `bias_hh`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `hidden_size` is 0 (as PyTorch rejects it);
    /// [`Error::SizeOverflow`] or [`Error::Allocation`] for sizes beyond the machine.
    ///
    /// # Examples
    ///
    /// ```
    /// use recurrent::rand::{rngs::StdRng, SeedableRng};
    /// use recurrent::CellParams;
    ///
    /// // a cell of your own with two gates of 3 units reading 2 features
    /// let params = CellParams::<f32>::init(6, 2, 3, true, &mut StdRng::seed_from_u64(0))?;
    /// assert_eq!(params.weight_hh().shape(), &[6, 3]);
    /// assert!(params.weight_ih().as_slice().iter().all(|w| w.abs() <= 1.0 / 3f32.sqrt()));
    /// assert!(CellParams::<f32>::init(6, 2, 0, true, &mut StdRng::seed_from_u64(0)).is_err());
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn init<R: Rng + ?Sized>(
        gate_width: usize,
        input_size: usize,
        hidden_size: usize,
        bias: bool,
        rng: &mut R,
    ) -> Result<Self> {
        Self::init_with(
            gate_width,
            input_size,
            hidden_size,
            hidden_size,
            bias,
            [Init::Default; 2],
            rng,
        )
    }

    /// [`CellParams::init`] with `weight_hh (gate_width, h_out)` and the weights drawn by
    /// `inits` (`weight_ih`'s, then `weight_hh`'s; gate blocks of `hidden_size` rows), the
    /// biases by PyTorch's default, in the same order.
    pub(crate) fn init_with<R: Rng + ?Sized>(
        gate_width: usize,
        input_size: usize,
        hidden_size: usize,
        h_out: usize,
        bias: bool,
        [ih, hh]: [Init; 2],
        rng: &mut R,
    ) -> Result<Self> {
        check_hidden_size(hidden_size)?;
        checked_size("weight_ih", &[gate_width, input_size])?;
        checked_size("weight_hh", &[gate_width, h_out])?;
        let h = hidden_size;
        let weight_ih = ih.draw("weight_ih", [gate_width, input_size], h, h, rng)?;
        let weight_hh = hh.draw("weight_hh", [gate_width, h_out], h, h, rng)?;
        // the biases as earlier versions drew them, so that draws stay bit-identical
        let k = T::one() / T::from_f64(h as f64).sqrt();
        let mut draw_bias = |what| Tensor::try_uniform(what, &[gate_width], -k, k, rng);
        let (bias_ih, bias_hh) = if bias {
            (Some(draw_bias("bias_ih")?), Some(draw_bias("bias_hh")?))
        } else {
            (None, None)
        };
        Ok(CellParams::new(weight_ih, weight_hh, bias_ih, bias_hh))
    }

    /// Checks the shapes against a cell with these sizes.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] naming the first parameter whose shape is wrong;
    /// [`Error::MissingParameter`] if exactly one of the two biases is present.
    pub fn validate(&self, gate_width: usize, input_size: usize, h_out: usize) -> Result<()> {
        check_shape(
            "weight_ih",
            Shape::from([gate_width, input_size]),
            self.weight_ih.raw_shape(),
        )?;
        check_shape(
            "weight_hh",
            Shape::from([gate_width, h_out]),
            self.weight_hh.raw_shape(),
        )?;
        match (&self.bias_ih, &self.bias_hh) {
            (Some(b_ih), Some(b_hh)) => {
                check_shape("bias_ih", Shape::from([gate_width]), b_ih.raw_shape())?;
                check_shape("bias_hh", Shape::from([gate_width]), b_hh.raw_shape())
            }
            (None, None) => Ok(()),
            (Some(_), None) => Err(Error::MissingParameter {
                name: "bias_hh".into(),
                reason: "bias_ih is given and the biases come in pairs",
            }),
            (None, Some(_)) => Err(Error::MissingParameter {
                name: "bias_ih".into(),
                reason: "bias_hh is given and the biases come in pairs",
            }),
        }
    }

    /// Zeros with the same shapes (for accumulating gradients).
    #[must_use = "returns new parameters and does not modify self"]
    pub fn zeros_like(&self) -> Self {
        let mut zeros = CellParams::new(
            self.weight_ih.zeros_like(),
            self.weight_hh.zeros_like(),
            self.bias_ih.as_ref().map(Tensor::zeros_like),
            self.bias_hh.as_ref().map(Tensor::zeros_like),
        );
        zeros.extra = self
            .extra
            .iter()
            .map(|(n, t)| (*n, t.zeros_like()))
            .collect();
        zeros
    }

    /// Calls `f` with each parameter's name and value, in PyTorch's `state_dict` order.
    pub fn visit(&self, mut f: impl FnMut(&'static str, &Tensor<T>)) {
        f("weight_ih", &self.weight_ih);
        f("weight_hh", &self.weight_hh);
        if let Some(b) = &self.bias_ih {
            f("bias_ih", b);
        }
        if let Some(b) = &self.bias_hh {
            f("bias_hh", b);
        }
        for (name, t) in &self.extra {
            f(name, t);
        }
    }

    /// Calls `f` with each parameter's name and a mutable reference to it.
    pub fn visit_mut(&mut self, mut f: impl FnMut(&'static str, &mut Tensor<T>)) {
        self.renew_version();
        f("weight_ih", &mut self.weight_ih);
        f("weight_hh", &mut self.weight_hh);
        if let Some(b) = &mut self.bias_ih {
            f("bias_ih", b);
        }
        if let Some(b) = &mut self.bias_hh {
            f("bias_hh", b);
        }
        for (name, t) in &mut self.extra {
            f(name, t);
        }
    }

    /// The total number of scalar parameters.
    pub fn count(&self) -> usize {
        let mut n = 0;
        self.visit(|_, t| n += t.len());
        n
    }
}

/// [`Error::InvalidArgument`] for a layer of no unit (PyTorch rejects it too).
pub(crate) fn check_hidden_size(hidden_size: usize) -> Result<()> {
    if hidden_size == 0 {
        return Err(Error::InvalidArgument {
            name: "hidden_size",
            reason: "0: a layer needs at least one unit".into(),
        });
    }
    Ok(())
}

impl<T: fmt::Debug> fmt::Debug for CellParams<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CellParams")
            .field("weight_ih", &self.weight_ih)
            .field("weight_hh", &self.weight_hh)
            .field("bias_ih", &self.bias_ih)
            .field("bias_hh", &self.bias_hh)
            .field("extra", &self.extra)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::t;

    fn params() -> CellParams<f64> {
        CellParams::new(
            t(&[1.0, 2.0], &[2, 1]),
            t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]),
            None,
            None,
        )
    }

    #[test]
    fn every_mutable_access_moves_the_version_and_repacks() {
        let mut p = params();
        let v0 = p.version();
        // W_hh = [[1, 2], [3, 4]]: the packed operands are W_hhᵀ and W_hh
        let packed = p.packed_weight_hh();
        assert_eq!((packed.rows(), packed.cols()), (2, 2));
        let x = [1.0, 0.0];
        let mut out = [0.0; 2];
        let product = |p: &CellParams<f64>, out: &mut [f64; 2], backward: bool| {
            let w = if backward {
                p.packed_weight_hh_backward()
            } else {
                p.packed_weight_hh()
            };
            let out = crate::linalg::MatMut::new(out, 1, 2);
            crate::linalg::packed_gemm(crate::linalg::MatRef::new(&x, 1, 2), w, 0.0, out);
        };
        product(&p, &mut out, false);
        assert_eq!(out, [1.0, 3.0]); // x·W_hhᵀ, the first column of W_hh
        product(&p, &mut out, true);
        assert_eq!(out, [1.0, 2.0]); // x·W_hh, its first row
        p.weight_hh_mut().as_mut_slice()[2] = 30.0;
        assert_ne!(p.version(), v0);
        product(&p, &mut out, false);
        assert_eq!(out, [1.0, 30.0]);
        product(&p, &mut out, true);
        assert_eq!(out, [1.0, 2.0]);
        p.weight_hh_mut().as_mut_slice()[0] = 10.0;
        product(&p, &mut out, true);
        assert_eq!(out, [10.0, 2.0]);
        let v1 = p.version();
        p.visit_mut(|_, _| {});
        assert_ne!(p.version(), v1);
        // reading and cloning keep the version
        let _ = p.weight_hh();
        assert_eq!(p.clone().version(), p.version());
    }

    #[test]
    fn init_reports_impossible_sizes() {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
        let e = CellParams::<f32>::init(usize::MAX / 2, 4, 1 << 62, true, &mut rng).unwrap_err();
        assert!(
            matches!(
                e,
                Error::SizeOverflow {
                    what: "weight_ih",
                    ..
                }
            ),
            "{e}"
        );
        // no integer overflows, but 2^50 values (4 PiB) cannot be allocated
        let e = CellParams::<f32>::init(1 << 40, 1 << 10, 1, false, &mut rng).unwrap_err();
        assert!(matches!(e, Error::Allocation { .. }), "{e}");
        let e = CellParams::<f32>::init(4, 4, 0, true, &mut rng).unwrap_err();
        assert!(matches!(
            e,
            Error::InvalidArgument {
                name: "hidden_size",
                ..
            }
        ));
    }
}
