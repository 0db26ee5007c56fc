//! Bad input gives an error (or, for the internal `gemm`, a panic) whose message names what was
//! expected and what was given; never silent garbage. Not covered here: weight files
//! (`io.rs`), the combinators' configurations (`combinators.rs`) and the `nn` layers (beside
//! their code).

use rand::{rngs::StdRng, SeedableRng};
use recurrent::{
    Cell, Error, GruCellConfig, LstmCellConfig, Mode, Recurrent, SequenceLayer, State, Tensor,
};

fn lstm() -> Recurrent<recurrent::LstmCell<f64>> {
    Recurrent::new(
        LstmCellConfig::new(8, 4)
            .init(&mut StdRng::seed_from_u64(0))
            .unwrap(),
    )
}

#[test]
fn input_width_mismatch_names_both_shapes() {
    let e = lstm()
        .forward_with_state(&Tensor::zeros(&[5, 2, 7]), None, None, Mode::Eval)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "shape mismatch in recurrent input: expected [5, 2, 8], got [5, 2, 7]"
    );
}

#[test]
fn input_rank_mismatch_names_the_layout() {
    let e = lstm()
        .forward_with_state(&Tensor::zeros(&[2, 8]), None, None, Mode::Eval)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "rank mismatch in recurrent input: expected a rank-3 tensor (T, B, F), got shape [2, 8]"
    );
    let e = lstm()
        .with_batch_first(true)
        .forward_with_state(&Tensor::zeros(&[8]), None, None, Mode::Eval)
        .unwrap_err();
    assert!(e.to_string().contains("(B, T, F), got shape [8]"), "{e}");
}

#[test]
fn zero_or_too_long_lengths_are_rejected() {
    let x = Tensor::zeros(&[5, 3, 8]);
    let e = lstm()
        .forward_with_state(&x, None, Some(&[5, 0, 2]), Mode::Eval)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid sequence length 0 at batch index 1: lengths must be in 1..=5"
    );
    let e = lstm()
        .forward_with_state(&x, None, Some(&[5, 6, 2]), Mode::Eval)
        .unwrap_err();
    assert_eq!(
        e,
        Error::InvalidLength {
            index: 1,
            length: 6,
            seq_len: 5
        }
    );
    let e = lstm()
        .forward_with_state(&x, None, Some(&[5, 2]), Mode::Eval)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "sequence length count mismatch: expected 3 (one per sample), got 2"
    );
}

#[test]
fn initial_state_shape_mismatch_names_both_shapes() {
    let x = Tensor::zeros(&[5, 3, 8]);
    let bad = State::from_hc(Tensor::zeros(&[1, 3, 4]), Tensor::zeros(&[1, 2, 4]));
    let e = lstm()
        .forward_with_state(&x, Some(&bad), None, Mode::Eval)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "shape mismatch in initial state: expected [1, 3, 4], got [1, 2, 4]"
    );
    let e = lstm()
        .forward_with_state(
            &x,
            Some(&State::from_h(Tensor::zeros(&[1, 3, 4]))),
            None,
            Mode::Eval,
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "state parts mismatch in initial state: expected [h, c], got [h]"
    );
}

#[test]
fn gradient_shape_mismatch_names_both_shapes() {
    let layer = lstm();
    let out = layer
        .forward_with_state(&Tensor::zeros(&[5, 3, 8]), None, None, Mode::Eval)
        .unwrap();
    let e = layer
        .backward_with_state(&out.trace, Some(&Tensor::zeros(&[5, 3, 5])), None)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "shape mismatch in output gradient: expected [5, 3, 4], got [5, 3, 5]"
    );
    let e = layer
        .backward_with_state(&out.trace, Some(&Tensor::zeros(&[4, 3, 4])), None)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "shape mismatch in output gradient: expected [5, 3, 4], got [4, 3, 4]"
    );
}

#[test]
fn cell_step_mismatch_names_both_shapes() {
    let cell = GruCellConfig::new(3, 2)
        .init::<f32>(&mut StdRng::seed_from_u64(0))
        .unwrap();
    let e = cell.forward(&Tensor::zeros(&[4, 2]), None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "shape mismatch in cell input: expected [4, 3], got [4, 2]"
    );
    let e = cell
        .forward(
            &Tensor::zeros(&[4, 3]),
            Some(&State::from_h(Tensor::zeros(&[4, 3]))),
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "shape mismatch in cell state: expected [4, 2], got [4, 3]"
    );
}

#[test]
fn unpaired_bias_is_a_missing_parameter() {
    let mut params = LstmCellConfig::new(2, 3)
        .init::<f64>(&mut StdRng::seed_from_u64(1))
        .unwrap()
        .params()
        .clone();
    let bias_ih = params.bias_ih().cloned();
    params.set_biases(bias_ih, None);
    let e = recurrent::LstmCell::from_params(2, 3, params).unwrap_err();
    assert_eq!(
        e.to_string(),
        "missing parameter `bias_hh`: bias_ih is given and the biases come in pairs"
    );
}

#[test]
fn stream_input_mismatch_names_both_shapes() {
    let layer = lstm();
    let mut stream = layer.stream(2, None).unwrap();
    let e = stream.step(&Tensor::zeros(&[3, 8])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "shape mismatch in stream input: expected [2, 8], got [3, 8]"
    );
}

#[test]
fn parameters_that_do_not_fit_the_cell_are_rejected_by_name() {
    let mut layer = lstm();
    *layer.cell_mut().params_mut().weight_ih_mut() = Tensor::zeros(&[12, 8]);
    let e = layer
        .forward_with_state(&Tensor::zeros(&[5, 3, 8]), None, None, Mode::Eval)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "shape mismatch in weight_ih: expected [16, 8], got [12, 8]"
    );
    let mut layer = lstm();
    let bias_hh = layer.cell().params().bias_hh().cloned();
    layer.cell_mut().params_mut().set_biases(None, bias_hh);
    let e = layer
        .forward_with_state(&Tensor::zeros(&[5, 3, 8]), None, None, Mode::Eval)
        .unwrap_err();
    assert!(matches!(e, Error::MissingParameter { .. }), "{e}");
}

#[test]
fn a_trace_from_another_layer_is_rejected() {
    let small = Recurrent::new(
        LstmCellConfig::new(3, 4)
            .init(&mut StdRng::seed_from_u64(1))
            .unwrap(),
    );
    let out = small
        .forward_with_state(&Tensor::<f64>::zeros(&[5, 3, 3]), None, None, Mode::Eval)
        .unwrap();
    let e = lstm()
        .backward_with_state(&out.trace, None, None)
        .unwrap_err();
    assert_eq!(
        e,
        Error::TraceMismatch {
            what: "input size",
            expected: 8,
            actual: 3
        }
    );
    assert_eq!(
        e.to_string(),
        "trace mismatch: the layer's input size is 8, the trace's is 3"
    );
    let cell = GruCellConfig::new(3, 2)
        .init::<f64>(&mut StdRng::seed_from_u64(0))
        .unwrap();
    let other = GruCellConfig::new(3, 5)
        .init::<f64>(&mut StdRng::seed_from_u64(0))
        .unwrap();
    let (_, trace) = other.forward(&Tensor::zeros(&[2, 3]), None).unwrap();
    let e = cell
        .backward(&trace, &State::from_h(Tensor::zeros(&[2, 2])))
        .unwrap_err();
    assert_eq!(
        e,
        Error::TraceMismatch {
            what: "gate width",
            expected: 6,
            actual: 15
        }
    );
}
