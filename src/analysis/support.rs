//! Helpers the training-based analyses share: seeded per-class draws and the random real
//! baselines built from them, the class-balanced test sample, one training-and-test run, and
//! the checks of the sets handed in.

use super::NamedSet;
use crate::bundle::Bundle;
use crate::data::{class_balanced, fraction_per_class, Dataset};
use crate::error::{Error, Result};
use crate::train::{evaluate_with_state, train, Control, Hook, StepContext, TrainConfig};

/// Per class, `n` random real images of `train` in draw order (one seeded random order per
/// class; a smaller `n` gives a prefix of a larger one).
pub(crate) fn draw_per_class(train: &Dataset, n: usize, seed: u64) -> Result<Vec<Vec<usize>>> {
    if n == 0 {
        return Ok(vec![Vec::new(); train.num_classes()]);
    }
    let flat = class_balanced(train, n, seed)?;
    Ok(flat.chunks(n).map(<[usize]>::to_vec).collect())
}

/// Positions `from..from + k` of every class's draw, classes in order.
pub(crate) fn take_per_class(per_class: &[Vec<usize>], from: usize, k: usize) -> Vec<usize> {
    per_class
        .iter()
        .flat_map(|c| c[from..from + k].iter().copied())
        .collect()
}

/// A random real set standing beside one or more given sets with the same per-class counts.
#[derive(Debug, Clone)]
pub(crate) struct Baseline {
    /// `random-ipc<n>` (or `random-<counts>` for unbalanced sets).
    pub name: String,
    /// Per-class counts.
    pub counts: Vec<usize>,
    /// Indices into the real training split.
    pub indices: Vec<usize>,
    /// The images.
    pub data: Dataset,
}

/// One random real baseline per distinct per-class count vector among `sets`, taking per
/// class positions `skip..skip + count` of a seeded draw (so `skip` images per class stay
/// free for extras). Returns the baselines and, per set, the index of its baseline.
pub(crate) fn baselines(
    train: &Dataset,
    sets: &[NamedSet],
    skip: usize,
    seed: u64,
) -> Result<(Vec<Baseline>, Vec<usize>)> {
    let counts: Vec<Vec<usize>> = sets.iter().map(|s| s.data.class_counts()).collect();
    let most = counts.iter().flatten().copied().max().unwrap_or(0);
    let per_class = draw_per_class(train, skip + most, seed)?;
    let mut out: Vec<Baseline> = Vec::new();
    let mut of_set = Vec::with_capacity(sets.len());
    for c in &counts {
        if let Some(i) = out.iter().position(|b| &b.counts == c) {
            of_set.push(i);
            continue;
        }
        let indices: Vec<usize> = per_class
            .iter()
            .zip(c)
            .flat_map(|(class, &n)| class[skip..skip + n].iter().copied())
            .collect();
        let mut name = if c.iter().all(|&n| n == c[0]) {
            format!("random-ipc{}", c[0])
        } else {
            let parts: Vec<String> = c.iter().map(usize::to_string).collect();
            format!("random-{}", parts.join("-"))
        };
        while sets.iter().any(|s| s.name == name) || out.iter().any(|b| b.name == name) {
            name.push_str("-baseline");
        }
        let data = train.select(&indices)?.with_name(name.clone());
        of_set.push(out.len());
        out.push(Baseline {
            name,
            counts: c.clone(),
            indices,
            data,
        });
    }
    Ok((out, of_set))
}

/// A class-balanced sample of about `n` test images (0 or `n >= len`: the whole split).
pub(crate) fn test_sample(test: &Dataset, n: usize, seed: u64) -> Result<Dataset> {
    if n == 0 || n >= test.len() {
        return Ok(test.clone());
    }
    let fraction = n as f64 / test.len() as f64;
    let idx = fraction_per_class(test, &vec![fraction; test.num_classes()], seed)?;
    test.select(&idx)
}

/// Trains a fresh model (`model.init_params(config.seed)`) on `data` with `config` and returns
/// its accuracy on `test`. `on_step(step)` is called after every update; its error stops
/// training and is returned.
pub(crate) fn train_and_test(
    model: &Bundle,
    data: &Dataset,
    config: &TrainConfig,
    test: &Dataset,
    on_step: &mut dyn FnMut(usize) -> Result<()>,
) -> Result<f64> {
    let mut hook = |ctx: &StepContext<'_>| {
        if ctx.step > 0 {
            on_step(ctx.step)?;
        }
        Ok(Control::Continue)
    };
    let hooks: &mut [&mut dyn Hook] = &mut [&mut hook];
    let out = train(model, model.init_params(config.seed), data, config, hooks)?;
    Ok(evaluate_with_state(model, &out.params, &out.state, test)?.accuracy)
}

/// `x` as the f64 with the same shortest decimal form (0.01f32 becomes 0.01, not
/// 0.009999999776482582), so results read the same whether serialised as JSON text or as a
/// `serde_json::Value`.
pub(crate) fn shortest_f64(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(x as f64)
}

/// Checks that every set has the real data's image shape and classes, naming the set.
pub(crate) fn check_sets(real: &Dataset, sets: &[NamedSet]) -> Result<()> {
    for s in sets {
        if s.data.input_shape() != real.input_shape() || s.data.num_classes() != real.num_classes()
        {
            return Err(Error::invalid(
                "sets",
                format!(
                    "set `{}` has images {:?} and {} classes, the real data {:?} and {}",
                    s.name,
                    s.data.input_shape(),
                    s.data.num_classes(),
                    real.input_shape(),
                    real.num_classes()
                ),
            ));
        }
        if s.data.is_empty() {
            return Err(Error::invalid("sets", format!("set `{}` is empty", s.name)));
        }
    }
    Ok(())
}
