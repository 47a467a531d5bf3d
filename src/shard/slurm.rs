//! The shard of a Slurm job-array task, and the CPUs Slurm gave it.
//!
//! Slurm sets, in every task of `sbatch --array=...`: `SLURM_ARRAY_TASK_ID` (this task's
//! array index), `SLURM_ARRAY_TASK_COUNT` (tasks in the array), `SLURM_ARRAY_TASK_MIN` and
//! `SLURM_ARRAY_TASK_MAX` (smallest and largest index) and `SLURM_ARRAY_TASK_STEP` (the step
//! of the index range). Indices need not start at 0 (`--array=1-8`) and may be spaced
//! (`--array=0-14:2`, or the list `--array=1,3,5`), so the shard index is computed, never read
//! raw: `index = (ID - MIN) / step`, `count = COUNT`.
//!
//! The step: Slurm (22.05, checked on a local cluster) reports `SLURM_ARRAY_TASK_STEP=2` for
//! `--array=1-7:2` but `1` for the list `--array=1,3,5`, so when the reported step does not
//! fit `MIN..MAX` with `COUNT` tasks, the step is inferred as `(MAX - MIN) / (COUNT - 1)`.
//!
//! Limitation: an irregular list such as `--array=1,2,7` gives a task no way to know its rank.
//! Such a list always holds a task off the evenly spaced grid (`COUNT` distinct values on a
//! grid of `COUNT` points with both ends taken are the whole grid), and that task fails with
//! an error saying to use a range, a range with a step, an evenly spaced list, or
//! `--shard I/N`; its units stay missing, which the gather names. A throttle
//! (`--array=0-99%10`) changes nothing.

use super::Shard;
use crate::error::{Error, Result};

/// The array variables of one task, as Slurm set them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArrayTask {
    /// `SLURM_ARRAY_TASK_ID`.
    pub id: usize,
    /// `SLURM_ARRAY_TASK_MIN`.
    pub min: usize,
    /// `SLURM_ARRAY_TASK_MAX`.
    pub max: usize,
    /// `SLURM_ARRAY_TASK_STEP` (1 when absent).
    pub step: usize,
    /// `SLURM_ARRAY_TASK_COUNT`.
    pub count: usize,
}

impl ArrayTask {
    /// Reads the task's variables through `var` (the process environment in
    /// [`Shard::from_env`]); `None` when `SLURM_ARRAY_TASK_ID` is not set (not an array
    /// task), an error naming the variable when one is missing or not a number.
    pub fn read(var: impl Fn(&str) -> Option<String>) -> Result<Option<ArrayTask>> {
        let Some(id) = var("SLURM_ARRAY_TASK_ID") else {
            return Ok(None);
        };
        let num = |name: &str, text: Option<String>| -> Result<usize> {
            let text = text.ok_or_else(|| {
                Error::invalid(
                    name,
                    "not set, but SLURM_ARRAY_TASK_ID is (Slurm sets both in array tasks)",
                )
            })?;
            text.trim().parse().map_err(|_| {
                Error::invalid(name, format!("`{text}` is not a non-negative integer"))
            })
        };
        let step = match var("SLURM_ARRAY_TASK_STEP") {
            Some(s) => num("SLURM_ARRAY_TASK_STEP", Some(s))?,
            None => 1,
        };
        Ok(Some(ArrayTask {
            id: num("SLURM_ARRAY_TASK_ID", Some(id))?,
            min: num("SLURM_ARRAY_TASK_MIN", var("SLURM_ARRAY_TASK_MIN"))?,
            max: num("SLURM_ARRAY_TASK_MAX", var("SLURM_ARRAY_TASK_MAX"))?,
            step,
            count: num("SLURM_ARRAY_TASK_COUNT", var("SLURM_ARRAY_TASK_COUNT"))?,
        }))
    }

    /// This task's shard: `(ID - MIN) / step` of `COUNT`, the step being `STEP` when it fits
    /// (`MIN + (COUNT - 1) * STEP == MAX`), else `(MAX - MIN) / (COUNT - 1)` (an evenly spaced
    /// list). A task off that grid is an error.
    pub fn shard(&self) -> Result<Shard> {
        let irregular = |why: &str| {
            Error::invalid(
                "SLURM_ARRAY_TASK_ID",
                format!(
                    "task {} of an array from {} to {} with {} tasks: {why}; submit the array \
                     as a range (--array=0-{}), a range with a step or an evenly spaced list, \
                     or pass --shard I/N",
                    self.id,
                    self.min,
                    self.max,
                    self.count,
                    self.count.saturating_sub(1)
                ),
            )
        };
        if self.count == 0 || self.id < self.min || self.id > self.max {
            return Err(irregular("the id is outside MIN..MAX or the count is 0"));
        }
        let span = self.max - self.min;
        let fits =
            |step: usize| step > 0 && span.is_multiple_of(step) && span / step + 1 == self.count;
        let step = if self.count == 1 {
            1
        } else if fits(self.step) {
            self.step
        } else if fits(span / (self.count - 1)) {
            span / (self.count - 1)
        } else {
            return Err(irregular("the indices are not evenly spaced"));
        };
        if span > 0 && !(self.id - self.min).is_multiple_of(step) {
            return Err(irregular(
                "the indices are not evenly spaced, so this task cannot know its rank",
            ));
        }
        Shard::new((self.id - self.min) / step, self.count)
    }
}

impl Shard {
    /// The shard of this process from Slurm's array variables ([`ArrayTask`]); `None`
    /// outside an array task.
    pub fn from_env() -> Result<Option<Shard>> {
        Shard::from_slurm(|k| std::env::var(k).ok())
    }

    /// [`Shard::from_env`] over any variable lookup.
    pub fn from_slurm(var: impl Fn(&str) -> Option<String>) -> Result<Option<Shard>> {
        ArrayTask::read(var)?.map(|t| t.shard()).transpose()
    }

    /// The shard to run: `explicit` (`--shard`) when given, else the Slurm array task's,
    /// else `None` (the whole job in one process).
    pub fn resolve(explicit: Option<Shard>) -> Result<Option<Shard>> {
        match explicit {
            Some(s) => Ok(Some(s)),
            None => Shard::from_env(),
        }
    }
}

/// `SLURM_CPUS_PER_TASK` through `var`, when set: the threads a task should use unless told
/// otherwise. An error names the variable when it is not a positive integer.
pub fn cpus_per_task(var: impl Fn(&str) -> Option<String>) -> Result<Option<usize>> {
    let Some(text) = var("SLURM_CPUS_PER_TASK") else {
        return Ok(None);
    };
    match text.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(Error::invalid(
            "SLURM_CPUS_PER_TASK",
            format!("`{text}` is not a positive integer"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    fn task(id: &str, min: &str, max: &str, step: &str, count: &str) -> Result<Option<Shard>> {
        Shard::from_slurm(env(&[
            ("SLURM_ARRAY_TASK_ID", id),
            ("SLURM_ARRAY_TASK_MIN", min),
            ("SLURM_ARRAY_TASK_MAX", max),
            ("SLURM_ARRAY_TASK_STEP", step),
            ("SLURM_ARRAY_TASK_COUNT", count),
        ]))
    }

    #[test]
    fn the_index_is_computed_from_min_and_step() {
        // --array=0-3
        assert_eq!(
            task("2", "0", "3", "1", "4").unwrap(),
            Some(Shard::new(2, 4).unwrap())
        );
        // --array=1-4: starts at 1
        assert_eq!(
            task("1", "1", "4", "1", "4").unwrap(),
            Some(Shard::new(0, 4).unwrap())
        );
        // --array=1-7:2
        assert_eq!(
            task("5", "1", "7", "2", "4").unwrap(),
            Some(Shard::new(2, 4).unwrap())
        );
        // --array=1,3,5: Slurm says step 1
        assert_eq!(
            task("3", "1", "5", "1", "3").unwrap(),
            Some(Shard::new(1, 3).unwrap())
        );
        assert_eq!(
            task("5", "1", "5", "1", "3").unwrap(),
            Some(Shard::new(2, 3).unwrap())
        );
        // --array=4: one task
        assert_eq!(task("4", "4", "4", "1", "1").unwrap(), Some(Shard::WHOLE));
        // no step variable: a plain range
        let no_step = Shard::from_slurm(env(&[
            ("SLURM_ARRAY_TASK_ID", "11"),
            ("SLURM_ARRAY_TASK_MIN", "10"),
            ("SLURM_ARRAY_TASK_MAX", "11"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
        ]));
        assert_eq!(no_step.unwrap(), Some(Shard::new(1, 2).unwrap()));
        assert_eq!(Shard::from_slurm(env(&[])).unwrap(), None);
    }

    #[test]
    fn irregular_arrays_and_bad_variables_are_named() {
        // --array=1,2,7: Slurm says step 1, count 3; task 2 is off the grid 1, 4, 7.
        let e = task("2", "1", "7", "1", "3").unwrap_err().to_string();
        assert!(
            e.contains("SLURM_ARRAY_TASK_ID") && e.contains("--shard"),
            "{e}"
        );
        // --array=1,2,4: no even spacing at all; every task refuses.
        assert!(task("1", "1", "4", "1", "3").is_err());
        let e = task("x", "0", "1", "1", "2").unwrap_err().to_string();
        assert!(
            e.contains("SLURM_ARRAY_TASK_ID") && e.contains("`x`"),
            "{e}"
        );
        let e = Shard::from_slurm(env(&[("SLURM_ARRAY_TASK_ID", "0")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("SLURM_ARRAY_TASK_MIN"), "{e}");
    }

    #[test]
    fn cpus_per_task_is_read_and_checked() {
        assert_eq!(cpus_per_task(env(&[])).unwrap(), None);
        assert_eq!(
            cpus_per_task(env(&[("SLURM_CPUS_PER_TASK", "4")])).unwrap(),
            Some(4)
        );
        let e = cpus_per_task(env(&[("SLURM_CPUS_PER_TASK", "0")])).unwrap_err();
        assert!(e.to_string().contains("SLURM_CPUS_PER_TASK"));
    }
}
