//! The data helpers: `TokenBatch`, `pad_collate`, `BatchSampler`, and the parameter summary.

use rand::{rngs::StdRng, Rng, SeedableRng};
use recurrent::{
    pad_collate, BatchSampler, BatchSamplerConfig, Error, Parameters, Summary, Tensor, TokenBatch,
};

#[test]
fn token_batch_checks_its_shape_and_lengths() {
    let batch = TokenBatch::new(vec![1, 2, 3, 4, 5, 6], 3, 2, Some(vec![3, 1])).unwrap();
    assert_eq!(batch.ids(), &[1, 2, 3, 4, 5, 6]);
    assert_eq!((batch.steps(), batch.batch_size()), (3, 2));
    assert_eq!(batch.lengths(), Some(&[3, 1][..]));
    assert_eq!((batch.length(0), batch.length(1)), (3, 1));
    assert_eq!(batch.clone(), batch);
    assert_eq!(
        format!("{batch:?}"),
        "TokenBatch { shape: [3, 2], lengths: Some([3, 1]) }"
    );
    let full = TokenBatch::new(vec![0; 6], 2, 3, None).unwrap();
    assert_eq!(full.lengths(), None);
    assert_eq!(full.length(2), 2);
    assert_ne!(full, TokenBatch::new(vec![0; 6], 3, 2, None).unwrap());
    assert_eq!(full.into_ids(), vec![0; 6]);

    assert_eq!(
        TokenBatch::new(vec![0; 5], 3, 2, None)
            .unwrap_err()
            .to_string(),
        "data length mismatch: shape [3, 2] needs 6 values, got 5"
    );
    let e = TokenBatch::new(vec![0; 6], 3, 2, Some(vec![3])).unwrap_err();
    assert_eq!(
        e,
        Error::LengthCount {
            expected: 2,
            actual: 1
        }
    );
    for bad in [0, 4] {
        let e = TokenBatch::new(vec![0; 6], 3, 2, Some(vec![3, bad])).unwrap_err();
        assert_eq!(
            e,
            Error::InvalidLength {
                index: 1,
                length: bad,
                seq_len: 3
            }
        );
    }
    let e = TokenBatch::new(vec![], usize::MAX, 2, None).unwrap_err();
    assert!(matches!(e, Error::SizeOverflow { .. }), "{e}");
}

/// Every token lands at `t·B + b`, the rest is padding; the lengths are the sequences'.
#[test]
fn pad_collate_lays_out_time_major() {
    let mut rng = StdRng::seed_from_u64(5);
    for _ in 0..50 {
        let batch_size = rng.random_range(1..6);
        let sequences: Vec<Vec<usize>> = (0..batch_size)
            .map(|_| {
                let len = rng.random_range(1..9);
                (0..len).map(|_| rng.random_range(1..100)).collect()
            })
            .collect();
        let max_len = rng.random_bool(0.5).then(|| rng.random_range(1..9));
        let tokens = pad_collate(&sequences, 0, max_len).unwrap();
        let kept: Vec<usize> = sequences
            .iter()
            .map(|s| s.len().min(max_len.unwrap_or(usize::MAX)))
            .collect();
        assert_eq!(tokens.lengths(), Some(kept.as_slice()));
        assert_eq!(tokens.steps(), *kept.iter().max().unwrap());
        assert_eq!(tokens.batch_size(), batch_size);
        for t in 0..tokens.steps() {
            for (b, s) in sequences.iter().enumerate() {
                let expected = if t < kept[b] { s[t] } else { 0 };
                assert_eq!(
                    tokens.ids()[t * batch_size + b],
                    expected,
                    "step {t}, sample {b}"
                );
            }
        }
    }
}

#[test]
fn pad_collate_takes_slices_and_truncates_from_the_end() {
    let a: &[usize] = &[7, 8, 9, 10];
    let b: &[usize] = &[3];
    let tokens = pad_collate(&[a, b], 99, Some(2)).unwrap();
    assert_eq!(tokens.ids(), &[7, 3, 8, 99]);
    assert_eq!(tokens.lengths(), Some(&[2, 1][..]));
    let tokens = pad_collate(&[[1, 2], [3, 4]], 0, None).unwrap();
    assert_eq!(tokens.ids(), &[1, 3, 2, 4]);
}

#[test]
fn pad_collate_rejects_empty_input() {
    let none: [Vec<usize>; 0] = [];
    assert_eq!(
        pad_collate(&none, 0, None).unwrap_err().to_string(),
        "invalid batch: no sequences to pad"
    );
    assert_eq!(
        pad_collate(&[vec![1], vec![2, 3], vec![]], 0, None)
            .unwrap_err()
            .to_string(),
        "invalid sequence: sample 2 of the batch is empty"
    );
    assert_eq!(
        pad_collate(&[vec![1]], 0, Some(0)).unwrap_err().to_string(),
        "invalid max_len: 0: a sequence needs at least one step"
    );
}

/// Asserts that the batches hold every item of `0..n` exactly once.
#[track_caller]
fn assert_partition(batches: &[Vec<usize>], n: usize) {
    let mut seen = vec![0; n];
    for &i in batches.iter().flatten() {
        seen[i] += 1;
    }
    assert!(seen.iter().all(|&c| c == 1), "counts {seen:?}");
}

fn configs(n: usize, lengths: &[usize]) -> Vec<BatchSamplerConfig> {
    vec![
        BatchSamplerConfig::new(n, 8),
        BatchSamplerConfig::new(n, 8).with_shuffle(1),
        BatchSamplerConfig::new(n, 8).with_buckets(lengths.to_vec(), 4),
        BatchSamplerConfig::new(n, 8)
            .with_shuffle(2)
            .with_buckets(lengths.to_vec(), 3),
    ]
}

fn random_lengths(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(1..=100)).collect()
}

#[test]
fn every_item_appears_once_per_epoch() {
    for n in [0, 1, 7, 8, 61, 64] {
        let lengths = random_lengths(n, 3);
        for config in configs(n, &lengths) {
            let sampler = config.clone().init().unwrap();
            for epoch in 0..3 {
                let batches = sampler.epoch(epoch);
                assert_partition(&batches, n);
                assert_eq!(batches.len(), sampler.num_batches());
                // all full but one at most
                assert!(batches.iter().filter(|b| b.len() < 8).count() <= 1);
                assert!(batches.iter().all(|b| !b.is_empty()));
            }
            // drop_last: only full batches, all of them distinct items
            let sampler = config.with_drop_last(true).init().unwrap();
            let batches = sampler.epoch(0);
            assert_eq!(batches.len(), n / 8);
            assert_eq!(sampler.num_batches(), n / 8);
            assert!(batches.iter().all(|b| b.len() == 8));
            let mut items: Vec<usize> = batches.concat();
            items.sort_unstable();
            items.dedup();
            assert_eq!(items.len(), n / 8 * 8);
        }
    }
}

#[test]
fn shuffles_repeat_per_seed_and_epoch_and_differ_otherwise() {
    let lengths = random_lengths(100, 4);
    for config in configs(100, &lengths)
        .into_iter()
        .filter(|c| c != &BatchSamplerConfig::new(100, 8))
        .filter(|c| c != &BatchSamplerConfig::new(100, 8).with_buckets(lengths.clone(), 4))
    {
        let a = config.clone().init().unwrap();
        let b = config.init().unwrap();
        let epochs: Vec<Vec<Vec<usize>>> = (0..6).map(|e| a.epoch(e)).collect();
        for (e, epoch) in epochs.iter().enumerate() {
            assert_eq!(epoch, &b.epoch(e as u64), "a rerun repeats epoch {e}");
            for other in &epochs[..e] {
                assert_ne!(epoch, other, "epoch {e} repeats an earlier one");
            }
        }
    }
    // another seed, another order
    let one = BatchSamplerConfig::new(100, 8)
        .with_shuffle(1)
        .init()
        .unwrap();
    let two = BatchSamplerConfig::new(100, 8)
        .with_shuffle(2)
        .init()
        .unwrap();
    assert_ne!(one.epoch(0), two.epoch(0));
    // without shuffling, the items in order every epoch
    let plain = BatchSamplerConfig::new(10, 3).init().unwrap();
    let expected = vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7, 8], vec![9]];
    assert_eq!(plain.epoch(0), expected);
    assert_eq!(plain.epoch(5), expected);
}

/// The mean over batches of the spread of lengths (longest minus shortest) in a batch.
fn mean_spread(batches: &[Vec<usize>], lengths: &[usize]) -> f64 {
    let spread = |b: &Vec<usize>| {
        let ls = b.iter().map(|&i| lengths[i]);
        ls.clone().max().unwrap() - ls.min().unwrap()
    };
    batches.iter().map(spread).sum::<usize>() as f64 / batches.len() as f64
}

/// Lengths uniform in 1..=100, batches of 16, pools of 8 batches: a random batch of 16 spans
/// about 100·15/17 ≈ 88 in length, a batch cut from a sorted pool of 128 about
/// 100·16/129 ≈ 12. The measured spreads are asserted to differ by more than a factor 4.
#[test]
fn buckets_group_similar_lengths() {
    let n = 2000;
    let lengths = random_lengths(n, 9);
    let shuffled = BatchSamplerConfig::new(n, 16).with_shuffle(3);
    let bucketed = shuffled.clone().with_buckets(lengths.clone(), 8);
    let (shuffled, bucketed) = (shuffled.init().unwrap(), bucketed.init().unwrap());
    for epoch in 0..3 {
        let plain = mean_spread(&shuffled.epoch(epoch), &lengths);
        let grouped = mean_spread(&bucketed.epoch(epoch), &lengths);
        println!("epoch {epoch}: mean spread {plain:.1} shuffled, {grouped:.1} bucketed");
        assert!(plain > 70.0, "{plain}");
        assert!(grouped * 4.0 < plain, "{grouped} vs {plain}");
    }
    // the batches of a bucketed epoch are not in length order: the shortest lengths of the
    // first ten batches are not sorted
    let firsts: Vec<usize> = bucketed.epoch(0)[..10]
        .iter()
        .map(|b| b.iter().map(|&i| lengths[i]).min().unwrap())
        .collect();
    assert!(firsts.windows(2).any(|w| w[0] > w[1]), "{firsts:?}");
}

#[test]
fn sampler_options_are_checked() {
    let e = BatchSamplerConfig::new(10, 0).init().unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid batch size: 0: a batch needs at least one item"
    );
    let e = BatchSamplerConfig::new(3, 2)
        .with_buckets(vec![1, 2, 3], 0)
        .init()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid bucket batches: 0: a pool needs at least one batch"
    );
    let e = BatchSamplerConfig::new(3, 2)
        .with_buckets(vec![1, 2], 2)
        .init()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid bucket lengths: 2 lengths for 3 items: there must be one per item"
    );
    let sampler: BatchSampler = BatchSamplerConfig::new(3, 2).init().unwrap();
    assert_eq!((sampler.num_items(), sampler.batch_size()), (3, 2));
}

/// A hand-made model: an embedding, a recurrent layer's two weights and a wide head.
struct Toy {
    params: Vec<(&'static str, Tensor<f32>)>,
}

impl Parameters<f32> for Toy {
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Tensor<f32>)) {
        self.params.iter().for_each(|(n, t)| f(n, t));
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor<f32>)) {
        self.params.iter_mut().for_each(|(n, t)| f(n, t));
    }
}

#[test]
fn summary_is_an_aligned_table() {
    let toy = Toy {
        params: vec![
            ("embedding.weight", Tensor::zeros(&[10, 4])),
            ("rnn.weight_ih_l0", Tensor::zeros(&[8, 4])),
            ("rnn.bias_ih_l0", Tensor::zeros(&[8])),
            ("head.weight", Tensor::zeros(&[1000, 2, 3])),
        ],
    };
    let summary: Summary = toy.summary();
    assert_eq!(summary.total(), toy.param_count());
    assert_eq!(summary.total(), 40 + 32 + 8 + 6000);
    let names: Vec<&str> = summary.entries().iter().map(|e| e.name()).collect();
    assert_eq!(names, toy.param_names());
    assert_eq!(summary.entries()[3].shape(), &[1000, 2, 3]);
    assert_eq!(summary.entries()[3].count(), 6000);
    let expected = "\
name             | shape        | parameters
-----------------+--------------+-----------
embedding.weight | [10, 4]      |         40
rnn.weight_ih_l0 | [8, 4]       |         32
rnn.bias_ih_l0   | [8]          |          8
head.weight      | [1000, 2, 3] |      6,000
-----------------+--------------+-----------
total            |              |      6,080";
    assert_eq!(summary.to_string(), expected);

    // an empty model still has its header and total
    let empty = Toy { params: vec![] }.summary();
    assert_eq!(
        empty.to_string(),
        "name  | shape | parameters\n\
         ------+-------+-----------\n\
         ------+-------+-----------\n\
         total |       |          0"
    );
}
