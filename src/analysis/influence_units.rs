//! `influence`'s leave-one-out retrainings as a sharded job ([`super::sharded::Sharded`]): the
//! paper's 101 trainings per set are independent, each from the shared initialisation `seed`,
//! so they run as units in any number of processes (or Slurm array tasks) and the analysis
//! then reads their test losses instead of training, giving the result of one process bit for
//! bit.
//!
//! Unit ids: the sets in order, within a set the images of [`loo_images`] in order.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::influence::{
    influence_with, loo_images, loo_losses, sample, Influence, InfluenceConfig, InfluenceResult,
};
use super::sharded::{base_settings, Sharded};
use super::{NamedSet, Progress, RealData};
use crate::bundle::{Bundle, Params};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::train::content_hash;

/// The `kind` of an influence unit store.
pub const INFLUENCE_KIND: &str = "influence";

/// The leave-one-out units of `sets`: `(set, k, image)` per unit id.
pub fn loo_units(sets: &[NamedSet], config: &InfluenceConfig) -> Vec<(usize, usize, usize)> {
    sets.iter()
        .enumerate()
        .flat_map(|(s, set)| {
            loo_images(&set.data, config)
                .into_iter()
                .enumerate()
                .map(move |(k, i)| (s, k, i))
        })
        .collect()
}

/// The set-up of the leave-one-out units: the inputs, the units, the test sample and the
/// shared initialisation.
pub struct InfluencePlan<'a> {
    model: &'a Bundle,
    real: RealData<'a>,
    sets: &'a [NamedSet],
    config: &'a InfluenceConfig,
    units: Vec<(usize, usize, usize)>,
    test: Dataset,
    init: Params,
}

/// One leave-one-out retraining: the per-example test losses of the model trained without
/// the unit's image.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LooUnit {
    /// Per-example losses on the test sample.
    pub losses: Vec<f32>,
}

impl Sharded for Influence {
    type Plan<'a> = InfluencePlan<'a>;
    type Unit = LooUnit;

    fn plan<'a>(
        model: &'a Bundle,
        real: RealData<'a>,
        sets: &'a [NamedSet],
        config: &'a InfluenceConfig,
    ) -> Result<InfluencePlan<'a>> {
        config.validate()?;
        let test = real
            .test
            .select(&sample(real.test, config.test_images, config.seed)?)?;
        Ok(InfluencePlan {
            model,
            real,
            sets,
            config,
            units: loo_units(sets, config),
            test,
            init: model.init_params(config.seed),
        })
    }

    fn units(plan: &InfluencePlan<'_>) -> usize {
        plan.units.len()
    }

    fn settings(plan: &InfluencePlan<'_>) -> Result<Value> {
        let mut settings = base_settings(plan.model, plan.sets, plan.config);
        settings["test"] =
            json!({ "len": plan.test.len(), "content": content_hash(&plan.test, false) });
        Ok(settings)
    }

    fn run_unit(
        plan: &InfluencePlan<'_>,
        u: usize,
        progress: &mut dyn Progress,
    ) -> Result<LooUnit> {
        let (s, _, i) = plan.units[u];
        let set = &plan.sets[s];
        progress.note(&format!("{} without image {i}", set.name));
        let losses = loo_losses(
            plan.model,
            &plan.init,
            &set.data,
            i,
            &plan.test,
            plan.config,
        )?;
        Ok(LooUnit { losses })
    }

    fn assemble(
        plan: &InfluencePlan<'_>,
        units: Vec<LooUnit>,
        progress: &mut dyn Progress,
    ) -> Result<InfluenceResult> {
        if units.len() != plan.units.len() {
            return Err(Error::Internal(format!(
                "{} unit results for {} leave-one-out retrainings",
                units.len(),
                plan.units.len()
            )));
        }
        let mut loo: Vec<Vec<Vec<f32>>> = vec![Vec::new(); plan.sets.len()];
        for (unit, &(s, _, _)) in units.into_iter().zip(&plan.units) {
            loo[s].push(unit.losses);
        }
        influence_with(
            plan.model,
            plan.real,
            plan.sets,
            plan.config,
            Some(&loo),
            progress,
        )
    }
}
