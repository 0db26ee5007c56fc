//! Rearrangements of sequence tensors and states shared by the combinators: time reversal
//! within each sequence's length, concatenation along features, and splitting states into the
//! slots of their layers and directions.

pub(crate) use super::recurrent::rows::check_lengths;
use super::recurrent::rows::SeqLayout;
use crate::error::{check_shape, Error, Result};
use crate::float::Float;
use crate::params::Parameters;
use crate::state::{State, StatePart};
use crate::tensor::{Shape, Tensor};

/// `(T, B)` of a sequence tensor with `features` per step, `(T, B, F)` or, if `batch_first`,
/// `(B, T, F)`.
pub(crate) fn sequence_dims<T: Float>(
    op: &'static str,
    x: &Tensor<T>,
    features: usize,
    batch_first: bool,
) -> Result<(usize, usize)> {
    let layout = if batch_first {
        "(B, T, F)"
    } else {
        "(T, B, F)"
    };
    let &[d0, d1, f] = x.shape() else {
        return Err(Error::RankMismatch {
            op,
            expected: 3,
            layout,
            actual: x.raw_shape(),
        });
    };
    check_shape(
        op,
        Shape::from([d0, d1, features]),
        Shape::from([d0, d1, f]),
    )?;
    Ok(if batch_first { (d1, d0) } else { (d0, d1) })
}

/// `(T, B, F)` of a sequence tensor (`(B, T, F)` in memory if `batch_first`).
fn dims<T: Float>(x: &Tensor<T>, batch_first: bool) -> (usize, usize, usize) {
    let &[d0, d1, f] = x.shape() else {
        unreachable!("sequence tensors are validated as rank 3 before they get here")
    };
    if batch_first {
        (d1, d0, f)
    } else {
        (d0, d1, f)
    }
}

/// Each sequence reversed in time within its own length: step `t < n_b` of sample `b` becomes
/// step `n_b − 1 − t`; steps past the length stay where they are. Its own inverse.
pub(crate) fn reverse_time<T: Float>(
    x: &Tensor<T>,
    lengths: Option<&[usize]>,
    batch_first: bool,
) -> Tensor<T> {
    let (seq_len, batch, f) = dims(x, batch_first);
    let layout = SeqLayout {
        seq_len,
        batch,
        batch_first,
    };
    let src = x.as_slice();
    let mut out = src.to_vec();
    for b in 0..batch {
        let n = lengths.map_or(seq_len, |l| l[b]);
        for t in 0..n {
            let from = layout.row(n - 1 - t, b) * f;
            out[layout.row(t, b) * f..][..f].copy_from_slice(&src[from..][..f]);
        }
    }
    Tensor::from_vec(out, x.shape()).expect("same shape as the input")
}

/// `[a | b]` along the last axis of two tensors with the same leading dimensions.
pub(crate) fn concat_features<T: Float>(a: &Tensor<T>, b: &Tensor<T>) -> Tensor<T> {
    let (fa, fb) = (a.shape()[a.rank() - 1], b.shape()[b.rank() - 1]);
    let mut out = Vec::with_capacity(a.len() + b.len());
    for (ra, rb) in a
        .as_slice()
        .chunks_exact(fa)
        .zip(b.as_slice().chunks_exact(fb))
    {
        out.extend_from_slice(ra);
        out.extend_from_slice(rb);
    }
    let mut dims = a.shape().to_vec();
    *dims.last_mut().expect("rank ≥ 1") = fa + fb;
    Tensor::from_vec(out, &dims).expect("the rows of both")
}

/// The inverse of [`concat_features`]: the first `fa` features and the rest.
pub(crate) fn split_features<T: Float>(x: &Tensor<T>, fa: usize) -> (Tensor<T>, Tensor<T>) {
    let f = x.shape()[x.rank() - 1];
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for row in x.as_slice().chunks_exact(f) {
        a.extend_from_slice(&row[..fa]);
        b.extend_from_slice(&row[fa..]);
    }
    let with_last = |n: usize| {
        let mut dims = x.shape().to_vec();
        *dims.last_mut().expect("rank ≥ 1") = n;
        dims
    };
    (
        Tensor::from_vec(a, &with_last(fa)).expect("the first features of every row"),
        Tensor::from_vec(b, &with_last(f - fa)).expect("the last features of every row"),
    )
}

/// `x` (rank 3) cut along `axis` (0 or 1) into its first `at` entries and the rest.
pub(crate) fn split_batch<T: Float>(
    x: &Tensor<T>,
    at: usize,
    axis: usize,
) -> (Tensor<T>, Tensor<T>) {
    let dims = x.shape();
    let (outer, n, inner) = if axis == 0 {
        (1, dims[0], dims[1] * dims[2])
    } else {
        (dims[0], dims[1], dims[2])
    };
    let (mut a, mut b) = (Vec::with_capacity(outer * at * inner), Vec::new());
    for block in x.as_slice().chunks_exact(n * inner) {
        a.extend_from_slice(&block[..at * inner]);
        b.extend_from_slice(&block[at * inner..]);
    }
    let with = |m: usize| {
        let mut d = dims.to_vec();
        d[axis] = m;
        d
    };
    (
        Tensor::from_vec(a, &with(at)).expect("the first entries"),
        Tensor::from_vec(b, &with(n - at)).expect("the other entries"),
    )
}

/// The inverse of [`split_batch`]: `a` then `b` along `axis` (0 or 1).
pub(crate) fn concat_batch<T: Float>(a: &Tensor<T>, b: &Tensor<T>, axis: usize) -> Tensor<T> {
    let (da, db) = (a.shape(), b.shape());
    let inner = if axis == 0 { da[1] * da[2] } else { da[2] };
    let (na, nb) = (da[axis] * inner, db[axis] * inner);
    let mut out = Vec::with_capacity(a.len() + b.len());
    for (ra, rb) in a
        .as_slice()
        .chunks_exact(na)
        .zip(b.as_slice().chunks_exact(nb))
    {
        out.extend_from_slice(ra);
        out.extend_from_slice(rb);
    }
    let mut dims = da.to_vec();
    dims[axis] += db[axis];
    Tensor::from_vec(out, &dims).expect("the entries of both")
}

/// `state` (parts `(S, B, width)`) cut along the batch into its first `at` samples and the rest.
pub(crate) fn split_state_batch<T: Float>(state: &State<T>, at: usize) -> (State<T>, State<T>) {
    let (a, b) = state
        .parts()
        .map(|(name, t)| {
            let (x, y) = split_batch(t, at, 1);
            ((name, x), (name, y))
        })
        .unzip();
    (State::new(a), State::new(b))
}

/// The inverse of [`split_state_batch`].
pub(crate) fn concat_state_batch<T: Float>(a: &State<T>, b: &State<T>) -> State<T> {
    State::new(
        a.parts()
            .zip(b.parts())
            .map(|((name, x), (_, y))| (name, concat_batch(x, y, 1)))
            .collect(),
    )
}

/// Element-wise `a + b` of tensors of the same shape.
pub(crate) fn add<T: Float>(a: &Tensor<T>, b: &Tensor<T>) -> Tensor<T> {
    debug_assert_eq!(a.shape(), b.shape());
    let sum = a.as_slice().iter().zip(b.as_slice()).map(|(&x, &y)| x + y);
    Tensor::from_vec(sum.collect(), a.shape()).expect("the shape of both")
}

/// The states of consecutive slot groups (parts `(S_k, B, width)`) joined into one state with
/// parts `(Σ S_k, B, width)`.
pub(crate) fn concat_slots<T: Float>(states: &[State<T>]) -> State<T> {
    let first = &states[0];
    let parts = first
        .parts()
        .enumerate()
        .map(|(p, (name, t))| {
            let mut slots = 0;
            let mut data = Vec::new();
            for s in states {
                let part = s.parts().nth(p).expect("the states have the same parts").1;
                slots += part.shape()[0];
                data.extend_from_slice(part.as_slice());
            }
            let dims = [slots, t.shape()[1], t.shape()[2]];
            (
                name,
                Tensor::from_vec(data, &dims).expect("the slots of every state"),
            )
        })
        .collect();
    State::new(parts)
}

/// Validates `state` (parts `(Σ counts, batch, width)` with `layout`'s parts) and splits it
/// into one state per group of `counts[k]` slots; `None` gives `None` for every group.
pub(crate) fn split_state<T: Float>(
    op: &'static str,
    state: Option<&State<T>>,
    layout: &[StatePart],
    counts: &[usize],
    batch: usize,
) -> Result<Vec<Option<State<T>>>> {
    let lead = [counts.iter().sum(), batch];
    split_checked(state, counts, |s| s.validate(op, layout, &lead))
}

/// As [`split_state`] for the gradient of a state, whose parts may be left out (they count as
/// zero); `batch` comes from the trace of the call.
pub(crate) fn split_state_gradient<T: Float>(
    op: &'static str,
    state: Option<&State<T>>,
    layout: &[StatePart],
    counts: &[usize],
    batch: usize,
) -> Result<Vec<Option<State<T>>>> {
    let lead = [counts.iter().sum(), batch];
    split_checked(state, counts, |s| s.validate_gradient(op, layout, &lead))
}

/// [`split_slots`] after `check`; `None` for every group without a state.
fn split_checked<T: Float>(
    state: Option<&State<T>>,
    counts: &[usize],
    check: impl FnOnce(&State<T>) -> Result<()>,
) -> Result<Vec<Option<State<T>>>> {
    let Some(state) = state else {
        return Ok(vec![None; counts.len()]);
    };
    check(state)?;
    Ok(split_slots(state, counts).into_iter().map(Some).collect())
}

/// Checks that no two parameters of a combinator's layers share a name (which happens when a
/// layer does not rename itself in
/// [`set_position`](super::SequenceLayer::set_position), or when stacks nest).
pub(crate) fn check_unique_names<T: Float>(
    what: &'static str,
    model: &impl Parameters<T>,
) -> Result<()> {
    let mut names = model.param_names();
    names.sort_unstable();
    match names.windows(2).find(|w| w[0] == w[1]) {
        Some(w) => Err(Error::InvalidArgument {
            name: what,
            reason: format!(
                "two parameters are named `{}`: a layer inside does not name its parameters \
                 after its place (see SequenceLayer::set_position)",
                w[0]
            ),
        }),
        None => Ok(()),
    }
}

/// The inverse of [`concat_slots`]: `counts[k]` slots for group `k`.
pub(crate) fn split_slots<T: Float>(state: &State<T>, counts: &[usize]) -> Vec<State<T>> {
    let mut groups: Vec<Vec<(&'static str, Tensor<T>)>> = vec![Vec::new(); counts.len()];
    for (name, t) in state.parts() {
        let slot_len = t.shape()[1] * t.shape()[2];
        let mut offset = 0;
        for (group, &n) in groups.iter_mut().zip(counts) {
            let data = t.as_slice()[offset * slot_len..][..n * slot_len].to_vec();
            let dims = [n, t.shape()[1], t.shape()[2]];
            group.push((name, Tensor::from_vec(data, &dims).expect("n slots")));
            offset += n;
        }
    }
    groups.into_iter().map(State::new).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(dims: &[usize]) -> Tensor<f64> {
        let n = dims.iter().product::<usize>();
        Tensor::from_vec((0..n).map(|v| v as f64).collect(), dims).unwrap()
    }

    #[test]
    fn reverse_time_stays_within_each_length() {
        // T = 3, B = 2, F = 1: sample 0 has length 3, sample 1 length 2
        let x = seq(&[3, 2, 1]);
        let r = reverse_time(&x, Some(&[3, 2]), false);
        assert_eq!(r.as_slice(), &[4.0, 3.0, 2.0, 1.0, 0.0, 5.0]);
        assert_eq!(reverse_time(&r, Some(&[3, 2]), false), x);
        let b = seq(&[2, 3, 1]); // batch-first: (B, T, F)
        let r = reverse_time(&b, Some(&[3, 2]), true);
        assert_eq!(r.as_slice(), &[2.0, 1.0, 0.0, 4.0, 3.0, 5.0]);
    }

    #[test]
    fn batch_halves_round_trip_on_either_axis() {
        let x = seq(&[3, 4, 2]);
        for axis in [0, 1] {
            let (a, b) = split_batch(&x, 1, axis);
            assert_eq!(a.shape()[axis], 1);
            assert_eq!(concat_batch(&a, &b, axis), x);
        }
        let (a, _) = split_batch(&x, 1, 1);
        assert_eq!(a.as_slice(), &[0.0, 1.0, 8.0, 9.0, 16.0, 17.0]);
        let s = State::from_hc(seq(&[2, 4, 3]), seq(&[2, 4, 1]));
        let (p, q) = split_state_batch(&s, 3);
        assert_eq!(p.c().unwrap().as_slice(), &[0.0, 1.0, 2.0, 4.0, 5.0, 6.0]);
        assert_eq!(concat_state_batch(&p, &q), s);
    }

    #[test]
    fn features_and_slots_round_trip() {
        let (a, b) = (seq(&[2, 2, 3]), seq(&[2, 2, 1]));
        let joined = concat_features(&a, &b);
        assert_eq!(joined.shape(), &[2, 2, 4]);
        assert_eq!(&joined.as_slice()[..4], &[0.0, 1.0, 2.0, 0.0]);
        assert_eq!(split_features(&joined, 3), (a, b));

        let s = State::from_hc(seq(&[3, 2, 2]), seq(&[3, 2, 1]));
        let groups = split_slots(&s, &[1, 2]);
        assert_eq!(groups[1].h().shape(), &[2, 2, 2]);
        assert_eq!(groups[1].c().unwrap().as_slice(), &[2.0, 3.0, 4.0, 5.0]);
        assert_eq!(concat_slots(&groups), s);
    }
}
