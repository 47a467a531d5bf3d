//! `agreement`: the agreement score, accuracy matching, deterministic pool shards whose merge
//! is bit-for-bit the unsharded result, pool-file checks, and `--shard` parsing, on the tiny
//! bundle and the banded toy problem.

use crate::common;

use std::process::Command;

use ddlens::analysis::agreement::{
    agreement, agreement_from_pool, agreement_score, match_members, member_seed, merge_pool,
    pool_fingerprint, read_pool_files, train_pool_shard, train_pool_shard_into, AgreementConfig,
    Pool, PoolShard, Shard,
};
use ddlens::analysis::{no_progress, Budget, NamedSet, RealData};
use ddlens::Dataset;

#[test]
fn agreement_is_one_with_itself_symmetric_and_counts_equal_predictions() {
    let f = [0u16, 1, 2, 2, 1, 0, 0, 1];
    let g = [0u16, 2, 2, 1, 1, 0, 1, 1];
    assert_eq!(agreement_score(&f, &f).unwrap(), 1.0);
    assert_eq!(agreement_score(&f, &g).unwrap(), 5.0 / 8.0);
    assert_eq!(
        agreement_score(&f, &g).unwrap(),
        agreement_score(&g, &f).unwrap()
    );
    let e = agreement_score(&f, &g[..7]).unwrap_err().to_string();
    assert!(e.contains("`predictions`") && e.contains("8 and 7"), "{e}");
    assert!(agreement_score(&[], &[]).is_err());
}

#[test]
fn matching_takes_members_within_tolerance_or_the_k_nearest() {
    let acc = [0.5, 0.62, 0.6, 0.7, 0.59, 0.61];
    // Within 0.01 of 0.6: 0.6, 0.59, 0.61 (boundary included despite rounding).
    assert_eq!(match_members(&acc, 0.6, 0.01, 1), vec![2, 4, 5]);
    // More wanted than within tolerance: the k nearest.
    assert_eq!(match_members(&acc, 0.6, 0.0, 4), vec![1, 2, 4, 5]);
    assert_eq!(match_members(&acc, 0.6, 0.0, 1), vec![2]);
    // Equal distances: the lower index first.
    assert_eq!(match_members(&[0.5, 0.7], 0.6, 0.0, 1), vec![0]);
    // k larger than the pool: all of it; nothing within tolerance and k = 0: nothing.
    assert_eq!(match_members(&acc, 0.0, 0.0, 10), vec![0, 1, 2, 3, 4, 5]);
    assert!(match_members(&acc, 0.0, 0.1, 0).is_empty());
}

#[test]
fn shard_strings_parse_and_bad_ones_name_the_flag() {
    let s: Shard = "1/3".parse().unwrap();
    assert_eq!((s.index, s.count), (1, 3));
    assert_eq!(s.to_string(), "1/3");
    assert_eq!(s.file_name(), "agreement-pool-1of3.safetensors");
    assert!((0..9).filter(|&j| s.has(j)).eq([1, 4, 7]));
    for bad in ["2/2", "0/0", "a/2", "1", "1/x", "-1/2", ""] {
        let e = bad.parse::<Shard>().unwrap_err().to_string();
        assert!(
            e.contains("--shard") && e.contains(&format!("`{bad}`")),
            "{e}"
        );
    }
}

#[test]
fn a_bad_shard_on_the_command_line_is_an_error_naming_it() {
    let o = Command::new(env!("CARGO_BIN_EXE_ddlens"))
        .args(["analyze", "agreement", "--shard", "3/2"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--shard") && err.contains("3/2"), "{err}");
}

/// A small problem where the two pools and the distilled model train in well under a second.
fn toy() -> (Dataset, Dataset, Vec<NamedSet>, AgreementConfig) {
    let train = common::banded_dataset(120, 1);
    let test = common::banded_dataset(45, 2);
    let sets = vec![
        NamedSet {
            name: "six".into(),
            data: common::banded_dataset(6, 3),
            lr: None,
        },
        NamedSet {
            name: "nine".into(),
            data: common::banded_dataset(9, 4),
            lr: None,
        },
    ];
    let config = AgreementConfig {
        test_images: 0,
        pool_a_size: 3,
        pool_a_fraction_min: 0.05,
        pool_a_fraction_max: 0.3,
        pool_a_epochs: 4,
        pool_a_max_steps: None,
        pool_b_runs: 2,
        // Batches of 256 on 120 images: one step per epoch, so steps 0, 1 and 2 per run.
        pool_b_epochs: 2,
        pool_b_max_steps: None,
        pool_b_every: 1,
        distilled_steps: 5,
        distilled_runs: 2,
        match_tolerance: 0.02,
        match_k: 2,
        seed: 11,
    };
    (train, test, sets, config)
}

#[test]
fn merged_shards_give_the_unsharded_result_bit_for_bit() {
    let b = common::open("tiny-1x8x8");
    let (train, test, sets, config) = toy();
    let real = RealData {
        train: &train,
        test: &test,
    };
    let whole = agreement(&b, real, &sets, &config, &mut no_progress).unwrap();
    let whole_json = serde_json::to_string(&whole).unwrap();

    // Pools: 3 A members, then 2 B runs of 3 records (steps 0, 1, 2).
    assert_eq!(whole.pool_a.members, 3);
    assert_eq!(whole.pool_b.members, 6);
    assert_eq!(
        whole.pool_b.labels,
        ["b0@0", "b0@1", "b0@2", "b1@0", "b1@1", "b1@2"]
    );
    assert_eq!(whole.test_images, 45);
    for s in &whole.sets {
        assert_eq!(s.run_accuracies.len(), 2);
        for m in [&s.pool_a, &s.pool_b] {
            assert!(m.matched >= 2 * 2, "k = 2 per run");
            assert_eq!(m.agreements.len(), m.matched);
            assert!(m.agreements.iter().all(|a| (0.0..=1.0).contains(a)));
        }
    }

    let dir = tempfile::tempdir().unwrap();
    for i in 0..2 {
        let shard = Shard { index: i, count: 2 };
        let pool = train_pool_shard(&b, real, &config, shard, &mut no_progress).unwrap();
        // Shard 0 has jobs 0, 2 (pool A) and 4 (B run 1); shard 1 jobs 1 (A) and 3 (B run 0).
        let jobs: Vec<usize> = pool.members.iter().map(|m| m.job).collect();
        let want: &[usize] = if i == 0 {
            &[0, 2, 4, 4, 4]
        } else {
            &[1, 3, 3, 3]
        };
        assert_eq!(jobs, want);
        let path = dir.path().join(shard.file_name());
        pool.write(&path).unwrap();
        assert_eq!(
            PoolShard::read(&path).unwrap(),
            pool,
            "pool files round-trip"
        );
        // Training the shard again writes the same bytes.
        let again = train_pool_shard(&b, real, &config, shard, &mut no_progress).unwrap();
        let path2 = dir.path().join("again.bin");
        again.write(&path2).unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            std::fs::read(&path2).unwrap()
        );
        std::fs::remove_file(&path2).unwrap();
    }
    let shards = read_pool_files(&[dir.path().to_path_buf()]).unwrap();
    let fp = pool_fingerprint(&b, real, &config).unwrap();
    let merged = merge_pool(&shards, &fp, &config).unwrap();
    let unsharded = train_pool_shard(&b, real, &config, Shard::WHOLE, &mut no_progress).unwrap();
    assert_eq!(merged, unsharded.members, "same members, same order");
    let result = agreement_from_pool(&b, real, &sets, &config, &merged, &mut no_progress).unwrap();
    assert_eq!(serde_json::to_string(&result).unwrap(), whole_json);

    // Three shards split differently but merge to the same pool too.
    let three: Vec<PoolShard> = (0..3)
        .map(|i| {
            let shard = Shard { index: i, count: 3 };
            train_pool_shard(&b, real, &config, shard, &mut no_progress).unwrap()
        })
        .collect();
    assert_eq!(merge_pool(&three, &fp, &config).unwrap(), unsharded.members);

    // A missing shard, a shard twice, and a pool from another seed are errors.
    let e = merge_pool(&shards[..1], &fp, &config)
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing shards: 1/2"), "{e}");
    let twice = [shards[0].clone(), shards[0].clone()];
    let e = merge_pool(&twice, &fp, &config).unwrap_err().to_string();
    assert!(e.contains("shard 0/2 is given twice"), "{e}");
    let other = AgreementConfig {
        seed: 12,
        ..config.clone()
    };
    let fp_other = pool_fingerprint(&b, real, &other).unwrap();
    let e = merge_pool(&shards, &fp_other, &other)
        .unwrap_err()
        .to_string();
    assert!(e.contains("seed: 11 in the file, 12 now"), "{e}");
}

#[test]
fn member_seeds_depend_only_on_seed_pool_and_index() {
    assert_eq!(member_seed(3, Pool::A, 5), member_seed(3, Pool::A, 5));
    let all = [
        member_seed(3, Pool::A, 0),
        member_seed(3, Pool::A, 1),
        member_seed(3, Pool::B, 0),
        member_seed(4, Pool::A, 0),
    ];
    for i in 0..all.len() {
        for j in i + 1..all.len() {
            assert_ne!(all[i], all[j]);
        }
    }
}

#[test]
fn pool_b_members_are_the_recorded_steps_and_match_by_accuracy() {
    let b = common::open("tiny-1x8x8");
    let (train, test, sets, config) = toy();
    let real = RealData {
        train: &train,
        test: &test,
    };
    let r = agreement(&b, real, &sets[..1], &config, &mut no_progress).unwrap();
    let s = &r.sets[0];
    for (pool, m) in [(&r.pool_a, &s.pool_a), (&r.pool_b, &s.pool_b)] {
        // Every matched member is one of the k nearest or within tolerance of its run.
        for (label, agreement) in m.members.iter().zip(&m.agreements) {
            let i = pool.labels.iter().position(|l| l == label).unwrap();
            let near = s.run_accuracies.iter().any(|&acc| {
                match_members(
                    &pool.accuracies,
                    acc,
                    config.match_tolerance,
                    config.match_k,
                )
                .contains(&i)
            });
            assert!(near, "{label} is not a match");
            assert!((0.0..=1.0).contains(agreement));
        }
        let gaps_ok = m.mean_accuracy_gap.unwrap() >= 0.0;
        assert!(gaps_ok);
    }
    assert!(r.distilled_protocol.starts_with("P_dist"));
}

#[test]
fn bad_settings_are_errors_naming_them() {
    let b = common::open("tiny-1x8x8");
    let (train, test, sets, config) = toy();
    let real = RealData {
        train: &train,
        test: &test,
    };
    for (field, cfg) in [
        (
            "pool_a_size",
            AgreementConfig {
                pool_a_size: 0,
                ..config.clone()
            },
        ),
        (
            "pool_b_every",
            AgreementConfig {
                pool_b_every: 0,
                ..config.clone()
            },
        ),
        (
            "pool_a_fraction_min",
            AgreementConfig {
                pool_a_fraction_min: 0.5,
                pool_a_fraction_max: 0.1,
                ..config.clone()
            },
        ),
    ] {
        let e = agreement(&b, real, &sets, &cfg, &mut no_progress)
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("`{field}`")), "{e}");
    }
    let defaults = AgreementConfig::for_budget(Budget::Paper, 0);
    assert_eq!(
        (defaults.pool_a_fraction_min, defaults.pool_a_fraction_max),
        (0.005, 0.05)
    );
    assert_eq!((defaults.pool_a_epochs, defaults.pool_b_epochs), (100, 1));
}

/// A progress that fails (as a kill would end the task) once `jobs` pool jobs have started
/// training after the first.
struct KillAfterJobs {
    started: usize,
    jobs: usize,
}

impl ddlens::analysis::Progress for KillAfterJobs {
    fn report(&mut self, _stage: &str, done: usize, _total: usize) -> ddlens::Result<()> {
        if done == 0 {
            self.started += 1;
            if self.started > self.jobs {
                return Err(ddlens::Error::Internal("killed".into()));
            }
        }
        Ok(())
    }
}

#[test]
fn a_preempted_pool_shard_continues_from_its_file_to_the_same_bytes() {
    let b = common::open("tiny-1x8x8");
    let (train, test, _sets, config) = toy();
    let real = RealData {
        train: &train,
        test: &test,
    };
    let dir = tempfile::tempdir().unwrap();
    let shard = Shard { index: 0, count: 2 };
    let whole_path = dir.path().join("whole.safetensors");
    train_pool_shard_into(&b, real, &config, shard, &whole_path, &mut no_progress).unwrap();
    // Killed during its third job (jobs 0 and 2 done, B run 1 not).
    let path = dir.path().join(shard.file_name());
    let mut kill = KillAfterJobs {
        started: 0,
        jobs: 2,
    };
    assert!(train_pool_shard_into(&b, real, &config, shard, &path, &mut kill).is_err());
    let partial = PoolShard::read(&path).unwrap();
    let jobs: Vec<usize> = partial.members.iter().map(|m| m.job).collect();
    assert_eq!(jobs, [0, 2], "the finished jobs were kept");
    // The requeued task trains job 4 only and ends with the uninterrupted file.
    let mut count = KillAfterJobs {
        started: 0,
        jobs: 1,
    };
    train_pool_shard_into(&b, real, &config, shard, &path, &mut count).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(&whole_path).unwrap()
    );
    // Another shard's file, or other settings: named, and left as it was.
    let other = Shard { index: 1, count: 2 };
    let err = train_pool_shard_into(&b, real, &config, other, &path, &mut no_progress)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&shard.file_name()) && err.contains("another shard"),
        "{err}"
    );
    let changed = AgreementConfig {
        seed: 12,
        ..config.clone()
    };
    let err = train_pool_shard_into(&b, real, &changed, shard, &path, &mut no_progress)
        .unwrap_err()
        .to_string();
    assert!(err.contains("other settings"), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(&whole_path).unwrap()
    );
}
