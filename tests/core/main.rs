//! The foundations: datasets and distilled-set files, augmentation, bundles and their graph roles
//! (against finite differences), a user module's export, and training.
//!
//! One test crate per area (one link, one process per area); shared helpers in tests/common.

#[path = "../common/mod.rs"]
mod common;

mod augment_semantics;
mod augment_vjp;
mod bundle_chunks;
mod bundle_errors;
mod data_cifar;
mod data_dataset;
mod data_distilled;
mod data_fashion_mnist;
mod data_idx;
mod data_import;
mod data_subset;
mod data_zca;
mod fused_kernels;
mod params_init;
mod roles_finite_differences;
mod running_stats_roles;
mod running_stats_train;
mod session_race;
mod tiny_bn;
mod train;
mod train_ranking;
mod user_module;
