//! The LSTM variants PyTorch does not have, timed against this crate's own LSTM on the same
//! workloads: the peephole LSTM, the layer-normalised LSTM, and the LSTM with variational
//! dropout (input 0.25, recurrent 0.25). Each round times the variant and the LSTM one right
//! after the other, the one going first alternating, as `compare` does with PyTorch. Forward
//! and train run in training mode (`Mode::Train`), where the dropout draws and applies its
//! masks; `infer` never drops, so the dropout variant has no `infer` row.

use recurrent::rand::rngs::StdRng;
use recurrent::{
    LayerNormLstm, LayerNormLstmConfig, Lstm, LstmConfig, Mode, PeepholeLstm, PeepholeLstmConfig,
    SequenceLayer, Tensor,
};
use serde_json::{json, Value};

use crate::{aligned_line, forward_flops, median_ms, Rounds, Workload, MODES};

/// The variants, by the name the table gives them.
const VARIANTS: &[&str] = &["peephole_lstm", "layernorm_lstm", "lstm_vd"];

/// The time target of a variant against the LSTM's, on every workload and mode.
const TARGET_RATIO: f64 = 1.3;

/// One variant's network.
enum Variant {
    Peephole(PeepholeLstm<f32>),
    LayerNorm(LayerNormLstm<f32>),
    Dropout(Lstm<f32>),
}

impl Variant {
    /// The network of `name` with `(I, H, layers, bidirectional)`.
    fn new(
        name: &str,
        (i, h, layers, bi): (usize, usize, usize, bool),
        rng: &mut StdRng,
    ) -> recurrent::Result<Variant> {
        Ok(match name {
            "peephole_lstm" => Variant::Peephole(
                PeepholeLstmConfig::new(i, h)
                    .with_num_layers(layers)
                    .with_bidirectional(bi)
                    .init(rng)?,
            ),
            "layernorm_lstm" => Variant::LayerNorm(
                LayerNormLstmConfig::new(i, h)
                    .with_num_layers(layers)
                    .with_bidirectional(bi)
                    .init(rng)?,
            ),
            _ => Variant::Dropout(
                LstmConfig::new(i, h)
                    .with_num_layers(layers)
                    .with_bidirectional(bi)
                    .with_variational_dropout(0.25, 0.25)
                    .init(rng)?,
            ),
        })
    }

    /// Milliseconds of one `mode` call on `x`.
    fn time_ms(&self, x: &Tensor<f32>, mode: &str, min_seconds: f64) -> f64 {
        match self {
            Variant::Peephole(n) => training_ms(n, x, mode, min_seconds),
            Variant::LayerNorm(n) => training_ms(n, x, mode, min_seconds),
            Variant::Dropout(n) => training_ms(n, x, mode, min_seconds),
        }
    }
}

/// Milliseconds of `mode` on `net`, forward and train in `Mode::Train` (a new seed per call).
fn training_ms<N: SequenceLayer<f32>>(
    net: &N,
    x: &Tensor<f32>,
    mode: &str,
    min_seconds: f64,
) -> f64 {
    let mut seed = 0;
    let mut train = || {
        seed += 1;
        Mode::Train { seed }
    };
    match mode {
        "infer" => median_ms(min_seconds, || {
            net.infer_with_state(x, None, None).expect("valid input");
        }),
        "forward" => median_ms(min_seconds, || {
            net.forward_with_state(x, None, None, train())
                .expect("valid input");
        }),
        _ => median_ms(min_seconds, || {
            let out = net
                .forward_with_state(x, None, None, train())
                .expect("valid input");
            let d_output = Tensor::full(out.output.shape(), 1.0);
            net.backward_with_state(&out.trace, Some(&d_output), None)
                .expect("valid gradient");
        }),
    }
}

/// One measured entry: a variant in one mode on one workload, beside the LSTM.
pub(crate) struct VariantRow {
    workload: &'static str,
    variant: &'static str,
    mode: &'static str,
    /// Forward FLOPs of the LSTM on the workload (×3 for train).
    flops: f64,
    ours: Rounds,
    lstm: Rounds,
}

impl VariantRow {
    /// The variant's time over the LSTM's, round by round.
    fn ratios(&self) -> Rounds {
        self.ours.ratios(&self.lstm)
    }

    /// Its line of the table.
    pub(crate) fn line(&self) -> String {
        let (ours, lstm, ratios) = (self.ours.median(), self.lstm.median(), self.ratios());
        let cells = [
            self.workload.to_string(),
            self.variant.to_string(),
            self.mode.to_string(),
            format!("{ours:.3}"),
            format!("±{:.0}%", self.ours.spread_percent()),
            format!("{lstm:.3}"),
            format!("±{:.0}%", self.lstm.spread_percent()),
            format!("{:.2}", ratios.median()),
            format!("{:.2}-{:.2}", ratios.min(), ratios.max()),
            format!("{:.1}", self.flops / 1e6 / ours),
        ];
        aligned_line(&cells, &HEADING)
    }

    /// Its JSON: medians, spreads and every round.
    pub(crate) fn to_json(&self) -> Value {
        let ratios = self.ratios();
        json!({
            "workload": self.workload, "variant": self.variant, "mode": self.mode,
            "ms": self.ours.median(), "ms_rounds": self.ours.0,
            "lstm_ms": self.lstm.median(), "lstm_ms_rounds": self.lstm.0,
            "ratio": ratios.median(), "ratio_min": ratios.min(), "ratio_max": ratios.max(),
            "lstm_equivalent_gflops": self.flops / 1e6 / self.ours.median(),
        })
    }
}

/// The heading of the variants' table.
pub(crate) const HEADING: [(&str, usize); 10] = [
    ("workload", 8),
    ("variant", 14),
    ("mode", 7),
    ("ms", 10),
    ("±", 5),
    ("lstm ms", 10),
    ("±", 5),
    ("× lstm", 6),
    ("min-max", 12),
    ("GFLOP/s", 8),
];

/// Times every variant against the LSTM on `workload`, printing each row as it comes, and
/// adds each time measured to `timings` (for `--quick`'s check).
pub(crate) fn measure(
    workload: &Workload,
    x: &Tensor<f32>,
    (rounds, min_seconds): (usize, f64),
    rng: &mut StdRng,
    timings: &mut Vec<(String, f64)>,
) -> recurrent::Result<Vec<VariantRow>> {
    let &(name, t, b, i, h, layers, bi) = workload;
    let sizes = (i, h, layers, bi);
    let lstm = LstmConfig::new(i, h)
        .with_num_layers(layers)
        .with_bidirectional(bi)
        .init::<f32>(rng)?;
    let fwd = forward_flops(t, b, i, h, layers, bi, 4);
    let mut rows = Vec::new();
    for &variant in VARIANTS {
        let net = Variant::new(variant, sizes, rng)?;
        for &mode in MODES {
            if variant == "lstm_vd" && mode == "infer" {
                continue; // inference never drops: the plain LSTM
            }
            let (mut ours, mut plain) = (Vec::new(), Vec::new());
            for round in 0..rounds {
                let lstm_first = round % 2 == 1;
                if lstm_first {
                    plain.push(training_ms(&lstm, x, mode, min_seconds));
                }
                ours.push(net.time_ms(x, mode, min_seconds));
                if !lstm_first {
                    plain.push(training_ms(&lstm, x, mode, min_seconds));
                }
            }
            let what = format!("{name} {variant} {mode}");
            timings.extend(ours.iter().map(|&ms| (what.clone(), ms)));
            timings.extend(plain.iter().map(|&ms| (format!("{what} lstm"), ms)));
            let row = VariantRow {
                workload: name,
                variant,
                mode,
                flops: if mode == "train" { 3.0 * fwd } else { fwd },
                ours: Rounds(ours),
                lstm: Rounds(plain),
            };
            println!("{}", row.line());
            rows.push(row);
        }
    }
    Ok(rows)
}

/// The summary line: each variant's worst and median ratio against the LSTM, and the rows
/// above the target.
pub(crate) fn summary(rows: &[VariantRow]) -> (String, Value) {
    let mut parts = Vec::new();
    let mut json = serde_json::Map::new();
    for &variant in VARIANTS {
        let ratios = Rounds(
            rows.iter()
                .filter(|r| r.variant == variant)
                .map(|r| r.ratios().median())
                .collect(),
        );
        if ratios.0.is_empty() {
            continue;
        }
        parts.push(format!(
            "{variant} {:.2} (median {:.2})",
            ratios.max(),
            ratios.median()
        ));
        json.insert(
            variant.to_string(),
            json!({"max": ratios.max(), "median": ratios.median(), "rows": ratios.0.len()}),
        );
    }
    let over: Vec<String> = rows
        .iter()
        .filter(|r| r.ratios().median() > TARGET_RATIO)
        .map(|r| format!("{} {} {}", r.workload, r.variant, r.mode))
        .collect();
    let line = format!(
        "LSTM variants, time against this crate's LSTM (worst row): {}; above {TARGET_RATIO}×: {}",
        parts.join(", "),
        if over.is_empty() {
            "none".to_string()
        } else {
            over.join(", ")
        }
    );
    json.insert("above_target".into(), json!(over));
    (line, Value::Object(json))
}
