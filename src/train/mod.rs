//! Training and evaluation: SGD with momentum, weight decay and step schedules; minibatch or
//! full-batch (the paper's P_dist); per-step hooks for the analyses; evaluation with accuracy,
//! per-example loss, predictions and confusion matrix; parameter files.

mod checkpoint;
mod config;
mod eval;
mod eval_units;
mod hooks;
mod optimizer;
mod protocol;
mod ranking;
mod resume;
mod saved_eval;
mod schedule;
mod shared;
mod trainer;

pub use checkpoint::{load_model, load_params, load_state, save_model, save_params};
pub use config::TrainConfig;
pub use eval::{evaluate, evaluate_with_state, loss_and_argmax, softmax, Evaluation, EVAL_BATCH};
pub(crate) use eval_units::content_hash;
pub use eval_units::{eval_report, gather_eval, EvalJob, EVAL_KIND};
pub use hooks::{Control, EvalRecord, Hook, RecordEval, SaveParams, StepContext};
pub use optimizer::{Sgd, SgdConfig};
pub use protocol::{
    standard_evaluation, standard_evaluation_run, EvalSummary, StandardEval, STANDARD_EPOCHS,
    STANDARD_EPOCHS_DSA,
};
pub use ranking::{
    dd_ranking, dd_ranking_of, normalised_score, Accuracies, DdRanking, Metric, ARS_WEIGHT,
    LRS_WEIGHT,
};
pub use resume::{Checkpointing, TrainCheckpoint, TRAIN_CHECKPOINT_FORMAT};
pub use saved_eval::{dd_ranking_from_saved, protocol_pair, SavedEval};
pub use schedule::Schedule;
pub use shared::{train_at, SharedRuns, RECORD_EVERY};
pub use trainer::{train, train_checkpointed, StepLog, TrainOutcome};
