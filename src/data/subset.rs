//! Seeded class-balanced subsets of a [`Dataset`], as index lists.
//!
//! Each class draws from its own ChaCha8 stream (stream number = class label), so the picks
//! of one class depend only on the seed and that class's examples, not on the other classes.
//! All functions return indices grouped by class (class 0 first), in draw order within a class.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{data_err, dataset_origin, Dataset};
use crate::error::{Error, Result};

/// `per_class` random examples of every class. Fails, naming the class, when a class has fewer.
/// With the same seed, a smaller `per_class` picks a per-class prefix of a larger one.
pub fn class_balanced(data: &Dataset, per_class: usize, seed: u64) -> Result<Vec<usize>> {
    let mut nested = nested_class_balanced(data, &[per_class], seed)?;
    Ok(nested.pop().expect("one size in, one subset out"))
}

/// One class-balanced subset per size in `sizes` (strictly increasing, `0` allowed). Within a
/// class, each subset's picks are a prefix of the next one's, so the subsets are nested: what
/// the mixing analysis needs when it adds more and more real images to a distilled set.
pub fn nested_class_balanced(
    data: &Dataset,
    sizes: &[usize],
    seed: u64,
) -> Result<Vec<Vec<usize>>> {
    if sizes.windows(2).any(|w| w[0] >= w[1]) {
        return Err(Error::invalid(
            "sizes",
            format!("per-class sizes must be strictly increasing, got {sizes:?}"),
        ));
    }
    let largest = sizes.last().copied().unwrap_or(0);
    let drawn = draw_per_class(data, seed, |_, _| Ok(largest))?;
    Ok(sizes
        .iter()
        .map(|&k| {
            drawn
                .iter()
                .flat_map(|class| &class[..k])
                .copied()
                .collect()
        })
        .collect())
}

/// For every class `c`, `round(fractions[c] * count_c)` random examples of that class.
/// `fractions` has one value in `[0, 1]` per class.
pub fn fraction_per_class(data: &Dataset, fractions: &[f64], seed: u64) -> Result<Vec<usize>> {
    if fractions.len() != data.num_classes() {
        return Err(Error::invalid(
            "fractions",
            format!(
                "{} fractions for {} classes",
                fractions.len(),
                data.num_classes()
            ),
        ));
    }
    if let Some(f) = fractions.iter().find(|f| !(0.0..=1.0).contains(*f)) {
        return Err(Error::invalid(
            "fractions",
            format!("fraction {f} is outside [0, 1]"),
        ));
    }
    let drawn = draw_per_class(data, seed, |c, available| {
        Ok((fractions[c] * available as f64).round() as usize)
    })?;
    Ok(drawn.into_iter().flatten().collect())
}

/// `num_classes` fractions drawn uniformly from `[low, high]` (seeded), e.g. the
/// `[0.005, 0.05]` of the agreement analysis's pool of models trained on random real subsets.
pub fn uniform_fractions(num_classes: usize, low: f64, high: f64, seed: u64) -> Result<Vec<f64>> {
    if !(0.0 <= low && low <= high && high <= 1.0) {
        return Err(Error::invalid(
            "fractions",
            format!("need 0 <= low <= high <= 1, got [{low}, {high}]"),
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Ok((0..num_classes)
        .map(|_| rng.random_range(low..=high))
        .collect())
}

/// Shuffles each class's indices on its own stream and keeps the first `want(class, count)`.
fn draw_per_class(
    data: &Dataset,
    seed: u64,
    want: impl Fn(usize, usize) -> Result<usize>,
) -> Result<Vec<Vec<usize>>> {
    data.class_indices()
        .into_iter()
        .enumerate()
        .map(|(c, mut indices)| {
            let k = want(c, indices.len())?;
            if k > indices.len() {
                return Err(data_err(
                    dataset_origin(data.name()),
                    format!(
                        "class {c} has {} examples, {k} were requested",
                        indices.len()
                    ),
                ));
            }
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(c as u64);
            Ok(draw_prefix(&mut indices, k, &mut rng).to_vec())
        })
        .collect()
}

/// The first `k` steps of a forward Fisher-Yates shuffle. Step `i` only depends on the draws
/// before it, so a smaller `k` gives a prefix of a larger one's result: with the same seed,
/// `class_balanced(k)` picks, per class, the first `k` of `class_balanced(K)` for any `K > k`.
fn draw_prefix<'a>(items: &'a mut [usize], k: usize, rng: &mut ChaCha8Rng) -> &'a [usize] {
    let n = items.len();
    for i in 0..k {
        let j = rng.random_range(i..n);
        items.swap(i, j);
    }
    &items[..k]
}
