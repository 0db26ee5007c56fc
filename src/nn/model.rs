//! [`model!`](crate::model): declare a model that is not a chain as a struct of named layers,
//! once.

/// Declares a model as a struct whose fields are its layers, with the field names as the
/// parameters' prefixes — PyTorch's submodule attributes: a field `rnn` holding an LSTM has
/// parameters `rnn.weight_ih_l0`, …. It writes the struct as given, its
/// [`Parameters`](crate::Parameters) implementation (fields visited in declaration order), and
/// `collect_grads`, which names the parameter gradients of each field the same way, taking
/// one argument per field in the same order:
///
/// ```text
/// fn collect_grads(field_1: NamedTensors<T>, field_2: NamedTensors<T>, …) -> NamedTensors<T>
/// ```
///
/// So the names live in one place: optimisers, [`save`](crate::save) / [`load`](crate::load),
/// clipping and [`state_dict`](crate::Parameters::state_dict) all see the same ones. The
/// struct must have one type parameter, the float type, and every field must be a layer (a
/// [`Parameters`](crate::Parameters) implementation over it). Write the forward and backward
/// passes of the model as methods; a model that is a straight line is simpler as a
/// [`Chain`](crate::Chain).
///
/// # Examples
///
/// An encoder whose final hidden state and mean-pooled output are both fed to the head:
///
/// ```
/// use recurrent::{
///     model, Float, Gru, GruConfig, LastHidden, Layer, Linear, LinearConfig, MeanPool, Mode,
///     NamedTensors, NetworkTrace, Parameters, PoolTrace, Result, Sequence, SequenceTrace, Tensor,
/// };
///
/// model! {
///     /// Final state and mean of a GRU's output, side by side, into a linear head.
///     #[derive(Debug, Clone)]
///     pub struct Encoder<T> {
///         rnn: Gru<T>,
///         head: Linear<T>,
///     }
/// }
///
/// impl<T: Float> Encoder<T> {
///     fn forward(&self, x: &Sequence<T>, mode: Mode) -> Result<(Tensor<T>, Traces<T>)> {
///         let (out, rnn) = self.rnn.forward(x, mode)?;
///         let (last, last_trace) = Layer::<T>::forward(&LastHidden, &out, mode)?;
///         let (mean, mean_trace) = Layer::<T>::forward(&MeanPool, &out, mode)?;
///         let both = concat(&last, &mean)?;
///         let (y, head) = self.head.forward(&both, mode)?;
///         Ok((y, Traces { rnn, last_trace, mean_trace, head }))
///     }
///
///     fn backward(&self, tr: &Traces<T>, d_y: &Tensor<T>) -> Result<NamedTensors<T>> {
///         let head = self.head.backward(&tr.head, d_y)?;
///         let (d_last, d_mean) = split(&head.input)?;
///         let from_last = LastHidden.backward(&tr.last_trace, &d_last)?.input;
///         let from_mean = MeanPool.backward(&tr.mean_trace, &d_mean)?.input;
///         let d_out = Tensor::from_vec(
///             from_last.as_slice().iter().zip(from_mean.as_slice()).map(|(&a, &b)| a + b).collect(),
///             from_last.shape(),
///         )?;
///         let rnn = self.rnn.backward(&tr.rnn, &d_out)?;
///         Ok(Self::collect_grads(rnn.params, head.params))
///     }
/// }
///
/// struct Traces<T> {
///     rnn: SequenceTrace<NetworkTrace<T>>,
///     last_trace: PoolTrace,
///     mean_trace: PoolTrace,
///     head: Tensor<T>,
/// }
///
/// /// `[a | b]` along features, rows `(B, F)`.
/// fn concat<T: Float>(a: &Tensor<T>, b: &Tensor<T>) -> Result<Tensor<T>> {
///     let (rows, f) = (a.shape()[0], a.shape()[1]);
///     let data = (0..rows)
///         .flat_map(|r| a.as_slice()[r * f..(r + 1) * f].iter().chain(&b.as_slice()[r * f..(r + 1) * f]))
///         .copied()
///         .collect();
///     Tensor::from_vec(data, &[rows, 2 * f])
/// }
///
/// /// The inverse of `concat`.
/// fn split<T: Float>(x: &Tensor<T>) -> Result<(Tensor<T>, Tensor<T>)> {
///     let (rows, f) = (x.shape()[0], x.shape()[1] / 2);
///     let half = |k: usize| (0..rows).flat_map(|r| x.as_slice()[r * 2 * f + k * f..][..f].to_vec()).collect();
///     Ok((Tensor::from_vec(half(0), &[rows, f])?, Tensor::from_vec(half(1), &[rows, f])?))
/// }
///
/// let model = Encoder::<f64> {
///     rnn: GruConfig::new(3, 4).init_seeded(0)?,
///     head: LinearConfig::new(8, 1).init_seeded(1)?,
/// };
/// assert_eq!(model.param_names()[0], "rnn.weight_ih_l0");
/// assert_eq!(model.param_names()[4], "head.weight");
///
/// let x = Sequence::new(Tensor::full(&[5, 2, 3], 0.5), Some(vec![5, 3]))?;
/// let (y, traces) = model.forward(&x, Mode::Eval)?;
/// let grads = model.backward(&traces, &y.map(|_| 1.0))?;
/// assert_eq!(grads.len(), model.param_names().len());
/// assert!(grads.get("head.bias").is_some());
/// # Ok::<(), recurrent::Error>(())
/// ```
#[macro_export]
macro_rules! model {
    (
        $(#[$attr:meta])*
        $vis:vis struct $name:ident<$t:ident> {
            $($(#[$field_attr:meta])* $field_vis:vis $field:ident : $ty:ty),+ $(,)?
        }
    ) => {
        $(#[$attr])*
        $vis struct $name<$t> {
            $($(#[$field_attr])* $field_vis $field: $ty),+
        }

        impl<$t: $crate::Float> $crate::Parameters<$t> for $name<$t> {
            fn visit_params(&self, f: &mut dyn FnMut(&str, &$crate::Tensor<$t>)) {
                $(
                    $crate::Parameters::<$t>::visit_params(&self.$field, &mut |n, t| {
                        f(&::std::format!("{}.{}", ::core::stringify!($field), n), t)
                    });
                )+
            }

            fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut $crate::Tensor<$t>)) {
                $(
                    $crate::Parameters::<$t>::visit_params_mut(&mut self.$field, &mut |n, t| {
                        f(&::std::format!("{}.{}", ::core::stringify!($field), n), t)
                    });
                )+
            }
        }

        impl<$t: $crate::Float> $name<$t> {
            /// The parameter gradients of the fields, one argument per field in declaration
            /// order, named as the model's parameters are: `"{field}.{name}"`.
            #[allow(dead_code)]
            $vis fn collect_grads(
                $($field: $crate::NamedTensors<$t>),+
            ) -> $crate::NamedTensors<$t> {
                let mut all = $crate::NamedTensors::new();
                $(
                    all.extend_prefixed(
                        &::std::format!("{}.", ::core::stringify!($field)),
                        $field,
                    );
                )+
                all
            }
        }
    };
}
