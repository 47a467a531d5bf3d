//! Embarrassingly parallel jobs split over processes: a job is a numbered set of independent
//! *units* (an evaluation run, a leave-one-out retraining, a pool member...), each seeded from
//! its own id and never from the process that runs it, so any split gives the same result.
//!
//! * [`Shard`] (`split.rs`): which units a process takes: `i/n` takes unit `u` iff
//!   `u % n == i` (round robin, so every shard gets a mix of cheap and costly units).
//! * [`Shard::from_slurm`] (`slurm.rs`): the shard of a Slurm job-array task, from
//!   `SLURM_ARRAY_TASK_{ID,MIN,MAX,STEP,COUNT}`; [`cpus_per_task`] reads
//!   `SLURM_CPUS_PER_TASK`.
//! * [`UnitStore`] (`store.rs`): a folder with the job's settings (`job.json`) and one atomic
//!   file per finished unit (`units/<id>.json`), so a re-run skips the units already done
//!   (pre-empted or requeued tasks continue), and [`UnitStore::gather`] checks that every unit
//!   is present and from the same settings before the final result is written.

mod slurm;
mod split;
mod store;

pub use slurm::{cpus_per_task, ArrayTask};
pub use split::{Shard, ShardRun};
pub use store::{JobSpec, UnitStore, UNIT_FORMAT};
