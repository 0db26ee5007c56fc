//! Input a careless or hostile caller can give, each case once a defect: sizes whose products
//! overflow or cannot be allocated, state gradients with parts left out, traces used with
//! another layer or after the parameters changed, and a process-wide thread setting that a
//! layer's threshold must not override. Each must give an error or the right answer, never a
//! panic, an abort or silently wrong gradients. Not covered here: weight files (`io.rs`) and
//! the `nn` layers (`nn.rs`).

use rand::{rngs::StdRng, SeedableRng};
use recurrent::{
    Adam, AdamConfig, Bidirectional, Cell, Error, GruConfig, LstmCell, LstmCellConfig, LstmConfig,
    Mode, Nonlinearity, Optimizer, Parameters, Recurrent, RnnCell, RnnCellConfig, SequenceLayer,
    State, Tensor,
};

fn rng() -> StdRng {
    StdRng::seed_from_u64(0)
}

#[test]
fn sizes_that_overflow_are_errors_that_name_them() {
    let e = Tensor::<f32>::from_vec(vec![], &[1 << 32, 1 << 32]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "size overflow in tensor: the product of [4294967296, 4294967296] does not fit in usize"
    );
    // 4·2^62 gate rows: the gate width itself overflows
    let e = LstmConfig::new(4, 1 << 62)
        .init::<f32>(&mut rng())
        .unwrap_err();
    assert!(matches!(e, Error::SizeOverflow { .. }), "{e}");
    assert!(e.to_string().contains("4611686018427387904"), "{e}");
    // 3·2^62 GRU gate rows overflow as well
    let config = GruConfig::new(4, 1 << 62)
        .with_bidirectional(true)
        .with_num_layers(2);
    let e = config.init::<f32>(&mut rng()).unwrap_err();
    assert!(matches!(e, Error::SizeOverflow { .. }), "{e}");
}

#[test]
fn sizes_beyond_the_machine_are_errors_not_aborts() {
    // 4·2^40 × 2^40 weights overflow no integer, but no machine holds them
    let e = LstmConfig::new(4, 1 << 40)
        .init::<f32>(&mut rng())
        .unwrap_err();
    assert!(
        matches!(e, Error::SizeOverflow { .. } | Error::Allocation { .. }),
        "{e}"
    );
    // 2^20 × 2^28 = 2^48 values, 1 PiB: a size that fits but cannot be allocated
    let e = GruConfig::new(1 << 28, 1 << 18)
        .init::<f32>(&mut rng())
        .unwrap_err();
    assert_eq!(
        e,
        Error::Allocation {
            what: "weight_ih",
            bytes: 3 << 48
        }
    );
    assert!(e.to_string().starts_with("cannot allocate "), "{e}");
    // a stream's buffers are sized by its batch
    let layer = Recurrent::new(LstmCellConfig::new(3, 4).init::<f32>(&mut rng()).unwrap());
    let e = layer.stream(usize::MAX / 4, None).unwrap_err();
    assert!(matches!(e, Error::SizeOverflow { .. }), "{e}");
    let e = layer.stream(1 << 58, None).unwrap_err();
    assert!(matches!(e, Error::Allocation { .. }), "{e}");
}

/// `sum(h_n)` of an LSTM: the loss reads `h_n` only, so `c_n`'s gradient may be left out, and
/// an empty state gradient is a zero one; both give what `None` and explicit zeros give.
#[test]
fn a_state_gradient_may_leave_parts_out() {
    let mut r = rng();
    let config = LstmConfig::new(3, 4)
        .with_num_layers(2)
        .with_bidirectional(true);
    let lstm = config.init::<f64>(&mut r).unwrap();
    let x = Tensor::randn(&[5, 2, 3], &mut r);
    let out = lstm
        .forward_with_state(&x, None, Some(&[5, 3]), Mode::Eval)
        .unwrap();
    let ones = out.state.h().map(|_| 1.0);
    let zeros_c = out.state.c().unwrap().zeros_like();
    let full = State::from_hc(ones.clone(), zeros_c.clone());
    let expected = lstm
        .backward_with_state(&out.trace, None, Some(&full))
        .unwrap();
    let only_h = lstm
        .backward_with_state(&out.trace, None, Some(&State::from_h(ones)))
        .unwrap();
    assert_eq!(only_h.input, expected.input);
    assert_eq!(only_h.params, expected.params);

    let d_out = out.output.map(|v| v * 0.5);
    let empty = lstm
        .backward_with_state(&out.trace, Some(&d_out), Some(&State::new(vec![])))
        .unwrap();
    let zero = State::from_hc(out.state.h().zeros_like(), zeros_c);
    let none = lstm
        .backward_with_state(&out.trace, Some(&d_out), Some(&zero))
        .unwrap();
    assert_eq!(empty.input, none.input);
    assert_eq!(empty.params, none.params);

    // the same for one layer and for a single cell step
    let cell = LstmCellConfig::new(3, 4).init::<f64>(&mut r).unwrap();
    let step_x = Tensor::randn(&[2, 3], &mut r);
    let (next, trace) = Cell::forward(&cell, &step_x, None).unwrap();
    let only_h = Cell::backward(&cell, &trace, &State::from_h(next.h().clone()));
    let both = State::from_hc(next.h().clone(), next.c().unwrap().zeros_like());
    let both = Cell::backward(&cell, &trace, &both).unwrap();
    assert_eq!(only_h.unwrap().input, both.input);
}

/// Messages about a state gradient give the batch of the call, not the bad gradient's.
#[test]
fn a_wrong_state_gradient_is_measured_against_the_call() {
    let mut r = rng();
    let lstm = LstmConfig::new(3, 4)
        .with_num_layers(2)
        .init::<f64>(&mut r)
        .unwrap();
    let out = lstm
        .forward_with_state(&Tensor::randn(&[5, 2, 3], &mut r), None, None, Mode::Eval)
        .unwrap();
    let e = lstm
        .backward_with_state(
            &out.trace,
            None,
            Some(&State::from_h(Tensor::zeros(&[2, 7, 4]))),
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "shape mismatch in final state gradient: expected [2, 2, 4], got [2, 7, 4]"
    );
    // a part the layer does not have
    let e = lstm
        .backward_with_state(
            &out.trace,
            None,
            Some(&State::new(vec![("z", Tensor::zeros(&[2, 2, 4]))])),
        )
        .unwrap_err();
    assert!(matches!(e, Error::StatePartsMismatch { .. }), "{e}");
}

/// A forward pass of an input without features is sized like any other: an enormous number
/// of steps or samples is an error, not a wrapped product or an abort.
#[test]
fn an_empty_input_of_enormous_size_is_an_error() {
    let layer = Recurrent::new(LstmCellConfig::new(0, 4).init::<f32>(&mut rng()).unwrap());
    let x = Tensor::<f32>::from_vec(vec![], &[1 << 40, 1 << 30, 0]).unwrap();
    let e = layer
        .forward_with_state(&x, None, None, Mode::Eval)
        .unwrap_err();
    assert!(matches!(e, Error::SizeOverflow { .. }), "{e}");
    // 3·2^58 states of 8 values fit in usize, not their bytes in any address space
    let x = Tensor::<f32>::from_vec(vec![], &[2, 1 << 58, 0]).unwrap();
    let e = layer
        .forward_with_state(&x, None, None, Mode::Eval)
        .unwrap_err();
    assert!(matches!(e, Error::Allocation { .. }), "{e}");
    // a batch of no sample runs (the cell itself never sees it)
    let x = Tensor::<f32>::zeros(&[3, 0, 0]);
    assert_eq!(
        layer
            .forward_with_state(&x, None, None, Mode::Eval)
            .unwrap()
            .output
            .shape(),
        &[3, 0, 4]
    );
}

/// A GRU's backward on an LSTM's trace (both networks share the trace type) is refused,
/// whatever the widths; so is a trace of a cell of another non-linearity built from a copy of
/// the same parameters.
#[test]
fn a_trace_of_another_cell_is_refused() {
    let mut r = rng();
    let lstm = LstmConfig::new(3, 3)
        .with_proj_size(1)
        .init::<f64>(&mut r)
        .unwrap();
    let gru = GruConfig::new(3, 4).init::<f64>(&mut r).unwrap();
    let x = Tensor::randn(&[4, 2, 3], &mut r);
    let out = lstm.forward_with_state(&x, None, None, Mode::Eval).unwrap();
    let e = gru.backward_with_state(&out.trace, None, None).unwrap_err();
    assert!(matches!(e, Error::StaleTrace { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "stale trace: it was made by a layer of LstmCell<f64>, this layer has GruCell<f64>; \
         run forward again with the current layer"
    );
    let tanh = RnnCellConfig::new(3, 4).init::<f64>(&mut r).unwrap();
    let relu = RnnCell::from_params(3, 4, Nonlinearity::Relu, tanh.params().clone()).unwrap();
    let (tanh, relu) = (Recurrent::new(tanh), Recurrent::new(relu));
    let out = tanh.forward_with_state(&x, None, None, Mode::Eval).unwrap();
    let e = relu
        .backward_with_state(&out.trace, Some(&out.output), None)
        .unwrap_err();
    assert!(matches!(e, Error::StaleTrace { .. }), "{e}");
    // the single cell step checks its trace the same way
    let cell = LstmCellConfig::new(3, 4).init::<f64>(&mut r).unwrap();
    let twin = LstmCell::from_params(3, 4, cell.params().clone()).unwrap();
    let (next, trace) = Cell::forward(&cell, &Tensor::zeros(&[2, 3]), None).unwrap();
    assert!(Cell::backward(&twin, &trace, &next).is_err());
    assert!(Cell::backward(&cell, &trace, &next).is_ok());
}

/// Gradients are those of the parameters of the forward pass: after an optimiser step, a load
/// or any mutable access to the parameters, an old trace is refused.
#[test]
fn a_trace_is_refused_after_the_parameters_change() {
    let mut r = rng();
    let mut gru = GruConfig::new(3, 4)
        .with_num_layers(2)
        .init::<f64>(&mut r)
        .unwrap();
    let x = Tensor::randn(&[4, 2, 3], &mut r);
    let out = gru.forward_with_state(&x, None, None, Mode::Eval).unwrap();
    let grads = gru
        .backward_with_state(&out.trace, Some(&out.output), None)
        .unwrap();
    let mut adam: Adam<f64> = AdamConfig::new(1e-2).init().unwrap();
    adam.step(&mut gru, &grads.params).unwrap();
    let e = gru
        .backward_with_state(&out.trace, Some(&out.output), None)
        .unwrap_err();
    assert!(matches!(e, Error::StaleTrace { .. }), "{e}");
    assert!(e.to_string().contains("parameters changed"), "{e}");
    // a fresh forward pass is accepted again
    let out = gru.forward_with_state(&x, None, None, Mode::Eval).unwrap();
    let bytes = recurrent::to_bytes(&gru).unwrap();
    gru.backward_with_state(&out.trace, Some(&out.output), None)
        .unwrap();
    recurrent::from_bytes(&mut gru, &bytes).unwrap();
    let e = gru
        .backward_with_state(&out.trace, Some(&out.output), None)
        .unwrap_err();
    assert!(matches!(e, Error::StaleTrace { .. }), "{e}");
    // mutable access through the visitor counts, even if nothing is written
    let out = gru.forward_with_state(&x, None, None, Mode::Eval).unwrap();
    gru.visit_params_mut(&mut |_, _| {});
    assert!(gru.backward_with_state(&out.trace, None, None).is_err());
}

/// `set_num_threads(1)` means one thread, even for a layer whose threshold is 0; with two, a
/// threshold of 0 splits the batch, with the same results.
#[test]
fn one_thread_is_one_thread_whatever_the_threshold() {
    let mut r = rng();
    let layer = Recurrent::new(LstmCellConfig::new(3, 4).init::<f64>(&mut r).unwrap())
        .with_parallel_threshold(0);
    let bi = Bidirectional::new(layer.clone(), layer.clone())
        .unwrap()
        .with_parallel_threshold(0);
    let x = Tensor::randn(&[4, 6, 3], &mut r);
    recurrent::set_num_threads(1);
    let one = layer
        .forward_with_state(&x, None, None, Mode::Eval)
        .unwrap();
    let bi_one = bi.forward_with_state(&x, None, None, Mode::Eval).unwrap();
    recurrent::set_num_threads(2);
    let two = layer
        .forward_with_state(&x, None, None, Mode::Eval)
        .unwrap();
    let bi_two = bi.forward_with_state(&x, None, None, Mode::Eval).unwrap();
    recurrent::set_num_threads(0);
    assert!(!one.trace.is_split());
    assert!(two.trace.is_split());
    assert_eq!(one.output, two.output);
    assert_eq!(bi_one.output, bi_two.output);
    let g1 = layer
        .backward_with_state(&one.trace, Some(&one.output), None)
        .unwrap();
    let g2 = layer
        .backward_with_state(&two.trace, Some(&two.output), None)
        .unwrap();
    assert!(g1.input.max_abs_diff(&g2.input).unwrap() < 1e-14);
    // a trace made with two threads goes back on one after set_num_threads(1)
    recurrent::set_num_threads(1);
    let g1 = bi.backward_with_state(&bi_two.trace, Some(&bi_two.output), None);
    recurrent::set_num_threads(0);
    let g2 = bi
        .backward_with_state(&bi_one.trace, Some(&bi_one.output), None)
        .unwrap();
    assert_eq!(g1.unwrap().input, g2.input);
    // the pool gives its memory back on request, and the layer keeps working
    layer.release_buffers();
    assert_eq!(
        layer
            .forward_with_state(&x, None, None, Mode::Eval)
            .unwrap()
            .output,
        one.output
    );
}
