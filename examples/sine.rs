//! Regression on a noisy sine wave: an LSTM with a linear head at every step reads noisy
//! samples of sine waves of random phase and frequency and predicts the clean value of the
//! next sample. It ends well below what repeating its noisy input would score.
//!
//! ```sh
//! cargo run --release --example sine -- --steps 300
//! ```

use std::error::Error;

use clap::Parser;
use recurrent::rand::{rngs::StdRng, Rng, SeedableRng};
use recurrent::{
    mse_loss, AdamConfig, Layer, LinearConfig, LstmConfig, Mode, Optimizer, Sequence, Tensor,
    TimeDistributed,
};

#[derive(Parser)]
#[command(about = "An LSTM predicting the next clean value of a noisy sine wave")]
struct Args {
    /// Training steps.
    #[arg(long, default_value_t = 300)]
    steps: u64,
    /// Standard deviation of the noise on the inputs.
    #[arg(long, default_value_t = 0.1)]
    noise: f64,
    /// Seed of the data and the initialisation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// `batch` noisy waves of `steps` samples `(T, B, 1)`, and the clean value one sample later.
fn waves(
    steps: usize,
    batch: usize,
    noise: f64,
    rng: &mut StdRng,
) -> recurrent::Result<(Sequence<f32>, Tensor<f32>)> {
    let gaussian = Tensor::<f64>::randn(&[steps * batch], rng);
    let (mut x, mut y) = (vec![0.0; steps * batch], vec![0.0; steps * batch]);
    for b in 0..batch {
        let (phase, speed) = (rng.random_range(0.0..6.3), rng.random_range(0.1..0.3));
        for t in 0..steps {
            let at = |t: usize| (phase + speed * t as f64).sin();
            x[t * batch + b] = (at(t) + noise * gaussian.as_slice()[t * batch + b]) as f32;
            y[t * batch + b] = at(t + 1) as f32;
        }
    }
    let x = Sequence::new(Tensor::from_vec(x, &[steps, batch, 1])?, None)?;
    Ok((x, Tensor::from_vec(y, &[steps, batch, 1])?))
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse();
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut model =
        LstmConfig::new(1, 32)
            .init_seeded::<f32>(args.seed)?
            .then(TimeDistributed::new(
                LinearConfig::new(32, 1).init_seeded(args.seed + 1)?,
            ));
    let mut adam = AdamConfig::new(1e-2).init()?;

    for step in 0..args.steps {
        let (x, target) = waves(50, 32, args.noise, &mut rng)?;
        let (prediction, trace) = model.forward(&x, Mode::Train { seed: step })?;
        let loss = mse_loss(prediction.data(), &target)?;
        let grads = model.backward(&trace, &loss.grad)?.params;
        adam.step(&mut model, &grads)?;
        if step % 50 == 0 {
            println!("step {step:>4}: mse {:.5}", loss.value);
        }
    }

    let (x, target) = waves(100, 64, args.noise, &mut rng)?;
    let test = mse_loss(model.infer(&x)?.data(), &target)?.value;
    let repeat = mse_loss(x.data(), &target)?.value;
    println!("test mse {test:.5}; repeating the noisy input scores {repeat:.5}");
    Ok(())
}
