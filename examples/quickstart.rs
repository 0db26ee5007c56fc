//! Quickstart: build an LSTM, run a batch of sequences of different lengths forward and
//! backward, and check every gradient against finite differences.
//!
//! Run it with `cargo run --release --example quickstart`.

use recurrent::rand::{rngs::StdRng, SeedableRng};
use recurrent::{Gradcheck, LstmCellConfig, Mode, Recurrent, SequenceLayer, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = StdRng::seed_from_u64(2026);
    let (seq_len, batch, input_size, hidden_size) = (12, 4, 8, 16);
    let lengths = [12, 9, 5, 2];

    // nn.LSTM(input_size=8, hidden_size=16): PyTorch's names, shapes and initialisation
    let lstm = Recurrent::new(LstmCellConfig::new(input_size, hidden_size).init::<f64>(&mut rng)?);
    println!("model     {}", lstm.cell());

    // forward over a time-major batch (T, B, I) whose sequences end at different steps
    let x = Tensor::randn(&[seq_len, batch, input_size], &mut rng);
    let out = lstm.forward_with_state(&x, None, Some(&lengths), Mode::Eval)?;
    let padded_zero = (0..seq_len).all(|t| {
        (0..batch)
            .all(|b| t < lengths[b] || (0..hidden_size).all(|k| out.output.at(&[t, b, k]) == 0.0))
    });
    println!(
        "forward   x {:?}, lengths {lengths:?} -> output {:?}, h_n {:?}, c_n {:?}; zero past each length: {padded_zero}",
        x.shape(),
        out.output.shape(),
        out.state.h().shape(),
        out.state.c().map(|c| c.shape().to_vec()).unwrap_or_default(),
    );

    // loss = ½·Σ output², so dL/d(output) = output
    let loss = 0.5 * out.output.dot(&out.output)?;
    let grads = lstm.backward_with_state(&out.trace, Some(&out.output), None)?;
    println!("loss      ½·Σ output² = {loss:.6}");
    let norms: Vec<String> = grads
        .params
        .iter()
        .map(|(name, g)| {
            format!(
                "{name} {:?} ‖·‖ {:.4}",
                g.shape(),
                g.dot(g).map(f64::sqrt).unwrap_or(0.0)
            )
        })
        .collect();
    println!(
        "backward  d_input {:?}; {}",
        grads.input.shape(),
        norms.join(", ")
    );

    // every parameter, input and initial-state gradient against central finite differences
    let report = Gradcheck::new().check_layer(&lstm, &x, None, Some(&lengths))?;
    println!("gradcheck {report}");
    if report.worst_error > 1e-6 {
        return Err(format!("gradients do not match finite differences: {report}").into());
    }
    Ok(())
}
