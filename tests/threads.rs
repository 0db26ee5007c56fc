//! Two threads give one thread's results bit for bit, at sizes where every split is taken: the
//! per-step products in two halves of the hidden units, the LSTM's gate updates and their
//! gradients in two halves of the batch rows, the products over all time steps in two halves
//! of their rows; and with a threshold of 0, the batch of a layer in two halves (whose
//! parameter gradients, sums over the two halves, are equal to rounding). Also that threads of
//! the program calling at the same time get the results they get alone.

use std::sync::{Mutex, PoisonError};

use rand::{rngs::StdRng, SeedableRng};
use recurrent::{
    Cell, Float, GruCellConfig, LstmCellConfig, Mode, Parameters, Recurrent, RnnCellConfig,
    SequenceLayer, Tensor,
};

/// The thread setting is process-wide: tests that change it hold this lock.
static THREAD_SETTING: Mutex<()> = Mutex::new(());

/// Large enough for every split: `B·H·G·H` multiply-adds per step (above 2²¹ for the LSTM and
/// the GRU), `B·G·H` gate values per step (above 2¹⁴), `T·B` rows and `T·B·I·G·H`
/// multiply-adds in the input projection (32 rows and 2²⁰); lengths so that the batch shrinks
/// over time.
const SEQ_LEN: usize = 5;
const BATCH: usize = 40;
const INPUT: usize = 40;
const HIDDEN: usize = 144;
const LENGTHS: [usize; BATCH] = [
    5, 5, 4, 5, 3, 5, 5, 2, 5, 1, 5, 5, 4, 5, 5, 3, 5, 5, 5, 2, 5, 5, 4, 5, 5, 5, 5, 5, 5, 5, 5, 4,
    3, 5, 5, 5, 5, 5, 5, 5,
];

/// Everything a training step of `layer` computes: the output (also by `infer`), the final
/// state, and the gradients of the input, the initial state and every parameter for the
/// output gradient `d_output`.
fn everything<T: Float, C: Cell<T> + Clone>(
    layer: &Recurrent<C>,
    x: &Tensor<T>,
    d_output: &Tensor<T>,
) -> Vec<Tensor<T>> {
    let out = layer
        .forward_with_state(x, None, Some(&LENGTHS), Mode::Eval)
        .unwrap();
    let inferred = layer.infer_with_state(x, None, Some(&LENGTHS)).unwrap();
    assert_eq!(inferred.output, out.output);
    let grads = layer
        .backward_with_state(&out.trace, Some(d_output), None)
        .unwrap();
    let mut all = vec![out.output, grads.input];
    all.extend(out.state.parts().map(|(_, t)| t.clone()));
    all.extend(grads.initial_state.parts().map(|(_, t)| t.clone()));
    all.extend(grads.params.iter().map(|(_, t)| t.clone()));
    all
}

/// [`everything`] with `threads` threads.
fn on_threads<T: Float, C: Cell<T> + Clone>(
    threads: usize,
    layer: &Recurrent<C>,
    x: &Tensor<T>,
    d_output: &Tensor<T>,
) -> Vec<Tensor<T>> {
    let _lock = THREAD_SETTING
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    recurrent::set_num_threads(threads);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        everything(layer, x, d_output)
    }));
    recurrent::set_num_threads(0);
    result.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// One and two threads agree bit for bit on `cell`, with the batch split off (the products
/// and gate updates split) and on (threshold 0: the halves of the batch side by side).
fn same_on_two_threads<T: Float, C: Cell<T> + Clone>(cell: C, what: &str, rng: &mut StdRng) {
    let x = Tensor::<T>::randn(&[SEQ_LEN, BATCH, INPUT], rng);
    let d_output = Tensor::<T>::randn(&[SEQ_LEN, BATCH, cell.output_size()], rng);
    for threshold in [usize::MAX, 0] {
        let layer = Recurrent::new(cell.clone()).with_parallel_threshold(threshold);
        let one = on_threads(1, &layer, &x, &d_output);
        let two = on_threads(2, &layer, &x, &d_output);
        assert_eq!(one.len(), two.len());
        let params = Parameters::<T>::param_names(&layer).len();
        for (i, (a, b)) in one.iter().zip(&two).enumerate() {
            if threshold == 0 && i >= one.len() - params {
                // a split batch sums its halves' parameter gradients: equal to rounding
                let scale = a
                    .as_slice()
                    .iter()
                    .fold(1.0, |m, v| v.as_f64().abs().max(m));
                let diff = a.max_abs_diff(b).unwrap().as_f64();
                assert!(
                    diff <= 1e3 * T::epsilon().as_f64() * scale,
                    "{what}, split batch: parameter gradient {i} differs by {diff:e}"
                );
            } else {
                assert_eq!(a, b, "{what}, threshold {threshold}: result {i} differs");
            }
        }
    }
}

#[test]
fn two_threads_give_one_threads_results_bit_for_bit() {
    let rng = &mut StdRng::seed_from_u64(5);
    let lstm = LstmCellConfig::new(INPUT, HIDDEN);
    same_on_two_threads(lstm.init::<f32>(rng).unwrap(), "LSTM f32", rng);
    same_on_two_threads(lstm.init::<f64>(rng).unwrap(), "LSTM f64", rng);
    let projected = lstm.with_proj_size(HIDDEN / 2);
    same_on_two_threads(projected.init::<f32>(rng).unwrap(), "LSTM P f32", rng);
    let gru = GruCellConfig::new(INPUT, HIDDEN);
    same_on_two_threads(gru.init::<f32>(rng).unwrap(), "GRU f32", rng);
    let rnn = RnnCellConfig::new(INPUT, HIDDEN);
    same_on_two_threads(rnn.init::<f32>(rng).unwrap(), "RNN f32", rng);
}

/// Threads of the program calling at once share one worker: each gets the results it gets
/// alone.
#[test]
fn concurrent_callers_get_their_own_results() {
    let rng = &mut StdRng::seed_from_u64(6);
    let cell = LstmCellConfig::new(INPUT, HIDDEN).init::<f32>(rng).unwrap();
    let layer = Recurrent::new(cell).with_parallel_threshold(usize::MAX);
    let inputs: Vec<Tensor<f32>> = (0..3)
        .map(|_| Tensor::randn(&[SEQ_LEN, BATCH, INPUT], rng))
        .collect();
    let d_output = Tensor::randn(&[SEQ_LEN, BATCH, HIDDEN], rng);
    let alone: Vec<_> = inputs
        .iter()
        .map(|x| on_threads(1, &layer, x, &d_output))
        .collect();
    let _lock = THREAD_SETTING
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    recurrent::set_num_threads(2);
    let together: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = inputs
            .iter()
            .map(|x| s.spawn(|| everything(&layer, x, &d_output)))
            .collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    recurrent::set_num_threads(0);
    for (alone, together) in alone.iter().zip(together) {
        assert_eq!(alone, &together.expect("no panic"));
    }
}
