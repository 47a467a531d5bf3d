//! The C ABI called in-process from Rust: conventions (status, per-thread message, NULL and
//! size checks, bad enum values, missing files), every area's round trip, progress and
//! cancellation, and agreement with the safe Rust API it wraps.

use crate::common;

use std::ffi::{c_char, c_int, c_void, CStr};
use std::path::PathBuf;
use std::ptr::{null, null_mut};

use ddlens::ffi::*;

use super::support::*;

/// Takes a library string, frees it, returns it parsed as JSON.
fn take_json(s: *mut c_char) -> serde_json::Value {
    assert!(!s.is_null());
    let text = unsafe { CStr::from_ptr(s) }.to_str().unwrap().to_owned();
    unsafe { ddl_string_free(s) };
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn models_dir() -> PathBuf {
    std::env::var_os("DDLENS_TEST_MODELS").map_or_else(common::models_dir, PathBuf::from)
}

fn open_tiny() -> *mut DdlBundle {
    runtime();
    let path = cstr(models_dir().join("tiny-1x8x8").to_str().unwrap());
    let mut b = null_mut();
    let s = unsafe { ddl_bundle_open(path.as_ptr(), &mut b) };
    assert_eq!(s, DdlStatus::Ok, "{}", last_error());
    b
}

/// The learnable 3-class problem of tests/train.rs, as caller memory: class c lights rows
/// 2c..2c+2 of an 8x8 image.
fn synthetic(n: usize, seed: u64) -> (Vec<f32>, Vec<i64>) {
    let mut r = common::rng(seed);
    let mut x: Vec<f32> = common::normal_vec(&mut r, n * 64)
        .iter()
        .map(|v| 0.3 * v)
        .collect();
    let y: Vec<i64> = (0..n).map(|i| (i % 3) as i64).collect();
    for i in 0..n {
        let c = (i % 3) * 2;
        for h in c..c + 2 {
            for w in 0..8 {
                x[i * 64 + h * 8 + w] += 2.0;
            }
        }
    }
    (x, y)
}

fn dataset(n: usize, seed: u64) -> *mut DdlDataset {
    let (x, y) = synthetic(n, seed);
    let shape = [n, 1, 8, 8];
    let mut d = null_mut();
    let s = unsafe {
        ddl_dataset_from_memory(
            x.as_ptr().cast(),
            DDL_DTYPE_F32,
            shape.as_ptr(),
            4,
            y.as_ptr(),
            n,
            3,
            null(),
            null(),
            null(),
            &mut d,
        )
    };
    assert_eq!(s, DdlStatus::Ok, "{}", last_error());
    d
}

#[test]
fn version_and_status_names() {
    let v = unsafe { CStr::from_ptr(ddl_version()) }.to_str().unwrap();
    assert_eq!(v, ddlens::VERSION);
    let name = |s: u32| {
        unsafe { CStr::from_ptr(ddl_status_name(s)) }
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(name(0), "DDL_STATUS_OK");
    assert_eq!(name(DdlStatus::NotFound as u32), "DDL_STATUS_NOT_FOUND");
    assert_eq!(name(DdlStatus::Cancelled as u32), "DDL_STATUS_CANCELLED");
    assert_eq!(name(DdlStatus::Internal as u32), "DDL_STATUS_INTERNAL");
    assert_eq!(name(9999), "DDL_STATUS_UNKNOWN");
    // The header must carry every status name the library reports.
    let header =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/ddlens.h")).unwrap();
    for s in 0..=DdlStatus::Internal as u32 {
        let n = name(s);
        assert!(
            header.contains(&format!("{n} = {s},")),
            "header lacks {n} = {s}"
        );
    }
}

#[test]
fn null_arguments_are_errors_naming_the_argument() {
    let b = open_tiny();
    let mut n = 0usize;
    expect(
        unsafe { ddl_bundle_num_classes(null(), &mut n) },
        DdlStatus::NullArgument,
        &["ddl_bundle_num_classes", "`bundle`"],
    );
    expect(
        unsafe { ddl_bundle_num_classes(b, null_mut()) },
        DdlStatus::NullArgument,
        &["`out`"],
    );
    let mut p = null_mut();
    expect(
        unsafe { ddl_bundle_open(null(), &mut p) },
        DdlStatus::NullArgument,
        &["`path`"],
    );
    expect(
        unsafe { ddl_params_init(b, 0, null_mut()) },
        DdlStatus::NullArgument,
        &["`out`"],
    );
    let mut json = null_mut();
    expect(
        unsafe { ddl_dataset_describe(null(), &mut json) },
        DdlStatus::NullArgument,
        &["`dataset`"],
    );
    assert!(json.is_null(), "string outputs are NULL on failure");
    let mut out = null_mut();
    expect(
        unsafe {
            ddl_train(
                b,
                null(),
                null(),
                null(),
                None,
                null_mut(),
                &mut out,
                null_mut(),
            )
        },
        DdlStatus::NullArgument,
        &["`init`"],
    );
    assert!(out.is_null());
    // Free functions accept NULL.
    unsafe {
        ddl_bundle_free(null_mut());
        ddl_params_free(null_mut());
        ddl_dataset_free(null_mut());
        ddl_distilled_free(null_mut());
        ddl_train_config_free(null_mut());
        ddl_string_free(null_mut());
        ddl_bundle_free(b);
    }
}

#[test]
fn bad_enum_values_are_errors() {
    runtime();
    expect(
        unsafe { ddl_runtime_init(null(), 7, 1) },
        DdlStatus::InvalidArgument,
        &["`provider`", "7"],
    );
    let x = [0u8; 64];
    let y = [0i64];
    let shape = [1usize, 1, 8, 8];
    let mut d = null_mut();
    let s = unsafe {
        ddl_dataset_from_memory(
            x.as_ptr().cast(),
            42,
            shape.as_ptr(),
            4,
            y.as_ptr(),
            1,
            3,
            null(),
            null(),
            null(),
            &mut d,
        )
    };
    expect(s, DdlStatus::InvalidArgument, &["`dtype`", "42"]);
    assert!(d.is_null());
}

#[test]
fn runtime_cannot_change_once_set_up() {
    runtime();
    expect(
        unsafe { ddl_runtime_init(null(), DDL_PROVIDER_CPU, 2) },
        DdlStatus::RuntimeConfig,
        &["already set up"],
    );
    assert!(ddl_runtime_is_initialized());
    let mut json = null_mut();
    assert_eq!(unsafe { ddl_runtime_describe(&mut json) }, DdlStatus::Ok);
    let j = take_json(json);
    assert_eq!(j["provider"], "cpu");
    assert_eq!(j["threads"], 1);
}

#[test]
fn missing_files_are_not_found() {
    runtime();
    let missing = cstr("/nonexistent/ddlens-test");
    let mut b = null_mut();
    expect(
        unsafe { ddl_bundle_open(missing.as_ptr(), &mut b) },
        DdlStatus::NotFound,
        &["/nonexistent/ddlens-test"],
    );
    let mut set = null_mut();
    expect(
        unsafe { ddl_distilled_read(missing.as_ptr(), &mut set) },
        DdlStatus::NotFound,
        &["`path`", "does not exist"],
    );
    let (mut tr, mut te) = (null_mut(), null_mut());
    let name = cstr("mnist");
    expect(
        unsafe { ddl_dataset_load(name.as_ptr(), missing.as_ptr(), &mut tr, &mut te) },
        DdlStatus::NotFound,
        &["`dir`"],
    );
    assert!(tr.is_null() && te.is_null());
    // A folder that exists but lacks the files is a data error naming them.
    let empty = tempfile::tempdir().unwrap();
    let dir = cstr(empty.path().to_str().unwrap());
    expect(
        unsafe { ddl_dataset_load(name.as_ptr(), dir.as_ptr(), &mut tr, null_mut()) },
        DdlStatus::Data,
        &["train-images-idx3-ubyte"],
    );
    let bad = cstr("imagenet");
    expect(
        unsafe { ddl_dataset_load(bad.as_ptr(), null(), &mut tr, null_mut()) },
        DdlStatus::InvalidArgument,
        &["imagenet"],
    );
    let b = open_tiny();
    let mut p = null_mut();
    expect(
        unsafe { ddl_params_load(b, missing.as_ptr(), &mut p) },
        DdlStatus::NotFound,
        &["does not exist"],
    );
    // A malformed bundle folder is a bundle error.
    let mut malformed = null_mut();
    expect(
        unsafe { ddl_bundle_open(dir.as_ptr(), &mut malformed) },
        DdlStatus::Bundle,
        &["manifest.json"],
    );
    assert!(malformed.is_null());
    unsafe { ddl_bundle_free(b) };
}

#[test]
fn wrong_sizes_are_errors() {
    let b = open_tiny();
    let (x, y) = synthetic(4, 1);
    // Images that do not fill the shape, labels that do not match N, zero dims, wrong ndim.
    let mut d = null_mut();
    let mk = |shape: &[usize], ndim: usize, labels: usize, d: &mut *mut DdlDataset| unsafe {
        ddl_dataset_from_memory(
            x.as_ptr().cast(),
            DDL_DTYPE_F32,
            shape.as_ptr(),
            ndim,
            y.as_ptr(),
            labels,
            3,
            null(),
            null(),
            null(),
            d,
        )
    };
    expect(
        mk(&[4, 1, 8, 8], 3, 4, &mut d),
        DdlStatus::InvalidArgument,
        &["`ndim`"],
    );
    expect(
        mk(&[4, 1, 8, 8], 4, 3, &mut d),
        DdlStatus::InvalidArgument,
        &["`num_labels`", "3"],
    );
    expect(
        mk(&[4, 0, 8, 8], 4, 4, &mut d),
        DdlStatus::InvalidArgument,
        &["`shape`"],
    );
    let labels_bad = [0i64, 1, 2, 5];
    let s = unsafe {
        ddl_dataset_from_memory(
            x.as_ptr().cast(),
            DDL_DTYPE_F32,
            [4usize, 1, 8, 8].as_ptr(),
            4,
            labels_bad.as_ptr(),
            4,
            3,
            null(),
            null(),
            null(),
            &mut d,
        )
    };
    expect(s, DdlStatus::Data, &["label 5"]);
    // A dataset whose examples do not fit the model.
    assert_eq!(mk(&[4, 1, 4, 16], 4, 4, &mut d), DdlStatus::Ok);
    let mut p = null_mut();
    assert_eq!(unsafe { ddl_params_init(b, 0, &mut p) }, DdlStatus::Ok);
    let mut acc = 0.0;
    expect(
        unsafe { ddl_evaluate(b, p, d, &mut acc, null_mut(), null_mut()) },
        DdlStatus::Data,
        &["[1, 4, 16]", "tiny-1x8x8"],
    );
    // Flat parameter vectors must have the exact length; output buffers must be large enough.
    let mut n = 0;
    unsafe { ddl_params_numel(p, &mut n) };
    let short = vec![0.0f32; n - 1];
    expect(
        unsafe { ddl_params_set_flat(p, short.as_ptr(), short.len()) },
        DdlStatus::InvalidArgument,
        &["`len`"],
    );
    let mut buf = vec![0.0f32; n - 1];
    expect(
        unsafe { ddl_params_get_flat(p, buf.as_mut_ptr(), buf.len()) },
        DdlStatus::BufferTooSmall,
        &[&format!("{n} are needed")],
    );
    let mut logits = [0.0f32; 5];
    expect(
        unsafe {
            ddl_bundle_forward(
                b,
                p,
                x.as_ptr(),
                2,
                logits.as_mut_ptr(),
                logits.len(),
                null_mut(),
                0,
            )
        },
        DdlStatus::BufferTooSmall,
        &["`logits`", "6 are needed"],
    );
    expect(
        unsafe {
            ddl_bundle_forward(
                b,
                p,
                x.as_ptr(),
                0,
                logits.as_mut_ptr(),
                logits.len(),
                null_mut(),
                0,
            )
        },
        DdlStatus::InvalidArgument,
        &["`batch`"],
    );
    // A misaligned float pointer is rejected rather than read.
    let bytes = vec![0u8; 4 * 65];
    let odd = unsafe { bytes.as_ptr().add(1) }.cast::<f32>();
    let mut big = [0.0f32; 3];
    expect(
        unsafe { ddl_bundle_forward(b, p, odd, 1, big.as_mut_ptr(), 3, null_mut(), 0) },
        DdlStatus::InvalidArgument,
        &["`x`", "aligned"],
    );
    unsafe {
        ddl_dataset_free(d);
        ddl_params_free(p);
        ddl_bundle_free(b);
    }
}

#[test]
fn errors_are_per_thread_and_survive_success() {
    let mut n = 0usize;
    expect(
        unsafe { ddl_dataset_len(null(), &mut n) },
        DdlStatus::NullArgument,
        &["ddl_dataset_len"],
    );
    std::thread::spawn(|| {
        assert_eq!(last_error(), "", "a fresh thread has no message");
        let mut n = 0usize;
        let _ = unsafe { ddl_bundle_num_classes(null(), &mut n) };
        assert!(last_error().contains("ddl_bundle_num_classes"));
    })
    .join()
    .unwrap();
    assert!(
        last_error().contains("ddl_dataset_len"),
        "other threads do not touch this one's message"
    );
    // A successful call leaves the message alone.
    let _ = ddl_version();
    let d = dataset(3, 0);
    assert!(last_error().contains("ddl_dataset_len"));
    // The copy variant truncates like snprintf and reports the full length.
    let full = last_error();
    let mut buf = [0 as c_char; 8];
    let len = unsafe { ddl_last_error_copy(buf.as_mut_ptr(), buf.len()) };
    assert_eq!(len, full.len());
    let copied = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
    assert_eq!(copied, &full[..7]);
    assert_eq!(unsafe { ddl_last_error_copy(null_mut(), 0) }, full.len());
    unsafe { ddl_dataset_free(d) };
}

#[test]
fn bundle_describe_and_queries_match_the_manifest() {
    let b = open_tiny();
    let rust = ddlens::Bundle::open(models_dir().join("tiny-1x8x8")).unwrap();
    let m = rust.manifest();
    let mut json = null_mut();
    assert_eq!(unsafe { ddl_bundle_describe(b, &mut json) }, DdlStatus::Ok);
    let j = take_json(json);
    assert_eq!(j["name"], "tiny-1x8x8");
    assert_eq!(j["num_parameters"], m.num_parameters());
    assert_eq!(j["params"].as_array().unwrap().len(), m.params.len());
    assert_eq!(j["params"][0]["name"], m.params[0].name.as_str());
    let (mut c, mut h, mut w, mut k, mut f) = (0, 0, 0, 0, 0);
    unsafe {
        assert_eq!(
            ddl_bundle_input_shape(b, &mut c, &mut h, &mut w),
            DdlStatus::Ok
        );
        assert_eq!(ddl_bundle_num_classes(b, &mut k), DdlStatus::Ok);
        assert_eq!(ddl_bundle_feature_dim(b, &mut f), DdlStatus::Ok);
    }
    assert_eq!([c, h, w], m.input_shape);
    assert_eq!((k, f), (m.num_classes, m.feature_dim));
    let (mut mean, mut std) = ([0.0f32; 1], [0.0f32; 1]);
    assert_eq!(
        unsafe { ddl_bundle_normalization(b, mean.as_mut_ptr(), std.as_mut_ptr(), 1) },
        DdlStatus::Ok
    );
    assert_eq!(
        (mean[0], std[0]),
        (m.normalization.mean[0], m.normalization.std[0])
    );
    expect(
        unsafe { ddl_bundle_normalization(b, mean.as_mut_ptr(), std.as_mut_ptr(), 3) },
        DdlStatus::InvalidArgument,
        &["`channels`"],
    );
    unsafe { ddl_bundle_free(b) };
}

#[test]
fn params_round_trip_and_match_rust() {
    let b = open_tiny();
    let rust = ddlens::Bundle::open(models_dir().join("tiny-1x8x8")).unwrap();
    let mut p = null_mut();
    assert_eq!(unsafe { ddl_params_init(b, 7, &mut p) }, DdlStatus::Ok);
    let mut n = 0;
    unsafe { ddl_params_numel(p, &mut n) };
    let mut flat = vec![0.0f32; n + 5];
    assert_eq!(
        unsafe { ddl_params_get_flat(p, flat.as_mut_ptr(), flat.len()) },
        DdlStatus::Ok,
        "a larger buffer is fine"
    );
    assert_eq!(
        &flat[..n],
        rust.init_params(7).to_flat().as_slice(),
        "same seed, same init as Rust"
    );
    // Per tensor: shape query, get, set.
    let first = &rust.manifest().params[0];
    let name = cstr(&first.name);
    let mut ndim = 0;
    expect(
        unsafe { ddl_params_tensor_shape(p, name.as_ptr(), null_mut(), 0, &mut ndim) },
        DdlStatus::BufferTooSmall,
        &["`shape`"],
    );
    assert_eq!(ndim, first.shape.len());
    let mut shape = vec![0usize; ndim];
    assert_eq!(
        unsafe { ddl_params_tensor_shape(p, name.as_ptr(), shape.as_mut_ptr(), ndim, &mut ndim) },
        DdlStatus::Ok
    );
    assert_eq!(shape, first.shape);
    let count: usize = shape.iter().product();
    let ones = vec![1.5f32; count];
    assert_eq!(
        unsafe { ddl_params_set_tensor(p, name.as_ptr(), ones.as_ptr(), count) },
        DdlStatus::Ok
    );
    let mut back = vec![0.0f32; count];
    assert_eq!(
        unsafe { ddl_params_get_tensor(p, name.as_ptr(), back.as_mut_ptr(), count) },
        DdlStatus::Ok
    );
    assert_eq!(back, ones);
    let nope = cstr("no.such.weight");
    expect(
        unsafe { ddl_params_get_tensor(p, nope.as_ptr(), back.as_mut_ptr(), count) },
        DdlStatus::InvalidArgument,
        &["no.such.weight", &first.name],
    );
    // Clone is deep; from_flat + set_flat round-trip; save + load round-trip.
    let mut q = null_mut();
    assert_eq!(unsafe { ddl_params_clone(p, &mut q) }, DdlStatus::Ok);
    let zeros = vec![0.0f32; n];
    assert_eq!(
        unsafe { ddl_params_set_flat(q, zeros.as_ptr(), n) },
        DdlStatus::Ok
    );
    unsafe { ddl_params_get_tensor(p, name.as_ptr(), back.as_mut_ptr(), count) };
    assert_eq!(back, ones, "setting the clone left the original alone");
    let dir = tempfile::tempdir().unwrap();
    let file = cstr(dir.path().join("p.safetensors").to_str().unwrap());
    assert_eq!(
        unsafe { ddl_params_save(b, p, file.as_ptr()) },
        DdlStatus::Ok
    );
    let mut r = null_mut();
    assert_eq!(
        unsafe { ddl_params_load(b, file.as_ptr(), &mut r) },
        DdlStatus::Ok
    );
    let (mut a1, mut a2) = (vec![0.0f32; n], vec![0.0f32; n]);
    unsafe {
        ddl_params_get_flat(p, a1.as_mut_ptr(), n);
        ddl_params_get_flat(r, a2.as_mut_ptr(), n);
    }
    assert_eq!(a1, a2);
    let mut s = null_mut();
    assert_eq!(
        unsafe { ddl_params_from_flat(b, a1.as_ptr(), n, &mut s) },
        DdlStatus::Ok
    );
    let mut short = null_mut();
    expect(
        unsafe { ddl_params_from_flat(b, a1.as_ptr(), n - 1, &mut short) },
        DdlStatus::InvalidArgument,
        &["`len`"],
    );
    let mut json = null_mut();
    assert_eq!(unsafe { ddl_params_describe(p, &mut json) }, DdlStatus::Ok);
    assert_eq!(take_json(json)["numel"], n);
    unsafe {
        for h in [p, q, r, s] {
            ddl_params_free(h);
        }
        ddl_bundle_free(b);
    }
}

#[test]
fn forward_and_grad_match_the_rust_api() {
    let b = open_tiny();
    let rust = ddlens::Bundle::open(models_dir().join("tiny-1x8x8")).unwrap();
    let params = rust.init_params(3);
    let mut p = null_mut();
    unsafe { ddl_params_init(b, 3, &mut p) };
    let (x, y) = synthetic(5, 2);
    let xv = ndarray::ArrayView4::from_shape((5, 1, 8, 8), &x).unwrap();
    let want = rust.forward(&params, xv).unwrap();
    let f = rust.manifest().feature_dim;
    let (mut logits, mut feats) = (vec![0.0f32; 15], vec![0.0f32; 5 * f]);
    let s = unsafe {
        ddl_bundle_forward(
            b,
            p,
            x.as_ptr(),
            5,
            logits.as_mut_ptr(),
            15,
            feats.as_mut_ptr(),
            feats.len(),
        )
    };
    assert_eq!(s, DdlStatus::Ok, "{}", last_error());
    assert_eq!(logits, want.logits.iter().copied().collect::<Vec<_>>());
    assert_eq!(feats, want.features.iter().copied().collect::<Vec<_>>());
    let w = [1.0f32, 0.0, 2.0, 1.0, 1.0];
    let g = rust
        .grad(
            &params,
            xv,
            ndarray::ArrayView1::from(&y),
            Some(ndarray::ArrayView1::from(&w)),
        )
        .unwrap();
    let n = rust.manifest().num_parameters();
    let (mut loss, mut grad) = (0.0f32, vec![0.0f32; n]);
    let s = unsafe {
        ddl_bundle_grad(
            b,
            p,
            x.as_ptr(),
            y.as_ptr(),
            w.as_ptr(),
            5,
            &mut loss,
            grad.as_mut_ptr(),
            n,
        )
    };
    assert_eq!(s, DdlStatus::Ok, "{}", last_error());
    assert_eq!(loss, g.loss);
    assert_eq!(grad, g.grad.to_flat());
    let bad_y = [0i64, 1, 2, 3, 0];
    expect(
        unsafe {
            ddl_bundle_grad(
                b,
                p,
                x.as_ptr(),
                bad_y.as_ptr(),
                null(),
                5,
                &mut loss,
                null_mut(),
                0,
            )
        },
        DdlStatus::InvalidArgument,
        &["`y`", "label 3"],
    );
    unsafe {
        ddl_params_free(p);
        ddl_bundle_free(b);
    }
}

#[test]
fn dataset_from_memory_copies_and_normalises() {
    runtime();
    // Bytes with a normaliser: (b/255 - 0.5) / 0.25.
    let pixels: Vec<u8> = (0..2 * 64).map(|i| (i % 256) as u8).collect();
    let labels = [2i64, 0];
    let (mean, std) = ([0.5f32], [0.25f32]);
    let mut d = null_mut();
    let name = cstr("bytes");
    let s = unsafe {
        ddl_dataset_from_memory(
            pixels.as_ptr().cast(),
            DDL_DTYPE_U8,
            [2usize, 1, 8, 8].as_ptr(),
            4,
            labels.as_ptr(),
            2,
            3,
            mean.as_ptr(),
            std.as_ptr(),
            name.as_ptr(),
            &mut d,
        )
    };
    assert_eq!(s, DdlStatus::Ok, "{}", last_error());
    drop(pixels); // borrowed only for the call
    let mut images = vec![0.0f32; 128];
    assert_eq!(
        unsafe { ddl_dataset_get_images(d, images.as_mut_ptr(), 128) },
        DdlStatus::Ok
    );
    for (i, v) in images.iter().enumerate() {
        let want = ((i % 256) as f32 / 255.0 - 0.5) / 0.25;
        assert!((v - want).abs() < 1e-5, "pixel {i}: {v} vs {want}");
    }
    let mut l = [0i64; 2];
    assert_eq!(
        unsafe { ddl_dataset_get_labels(d, l.as_mut_ptr(), 2) },
        DdlStatus::Ok
    );
    assert_eq!(l, labels);
    let mut json = null_mut();
    unsafe { ddl_dataset_describe(d, &mut json) };
    let j = take_json(json);
    assert_eq!(
        (
            j["name"].as_str(),
            j["len"].as_u64(),
            j["class_counts"].clone()
        ),
        (Some("bytes"), Some(2), serde_json::json!([1, 0, 1]))
    );
    // Only one of mean / std is an error.
    let mut e = null_mut();
    let s = unsafe {
        ddl_dataset_from_memory(
            images.as_ptr().cast(),
            DDL_DTYPE_F32,
            [2usize, 1, 8, 8].as_ptr(),
            4,
            labels.as_ptr(),
            2,
            3,
            mean.as_ptr(),
            null(),
            null(),
            &mut e,
        )
    };
    expect(s, DdlStatus::InvalidArgument, &["mean", "std"]);
    // Subsets: class-balanced and by index.
    let big = dataset(30, 4);
    let mut sub = null_mut();
    assert_eq!(
        unsafe { ddl_dataset_class_balanced(big, 4, 0, &mut sub) },
        DdlStatus::Ok
    );
    let mut n = 0;
    unsafe { ddl_dataset_len(sub, &mut n) };
    assert_eq!(n, 12);
    expect(
        unsafe { ddl_dataset_class_balanced(big, 11, 0, &mut sub) },
        DdlStatus::Data,
        &[],
    );
    let idx = [5usize, 0, 5];
    let mut sel = null_mut();
    assert_eq!(
        unsafe { ddl_dataset_select(big, idx.as_ptr(), 3, &mut sel) },
        DdlStatus::Ok
    );
    let mut sl = [0i64; 3];
    unsafe { ddl_dataset_get_labels(sel, sl.as_mut_ptr(), 3) };
    assert_eq!(sl, [2, 0, 2]);
    let oob = [30usize];
    let mut none = null_mut();
    expect(
        unsafe { ddl_dataset_select(big, oob.as_ptr(), 1, &mut none) },
        DdlStatus::InvalidArgument,
        &["index 30"],
    );
    unsafe {
        for h in [d, big, sel] {
            ddl_dataset_free(h);
        }
    }
}

#[test]
fn train_config_validates_every_field() {
    let mut c = null_mut();
    expect(
        unsafe { ddl_train_config_p_dist(0, 0, &mut c) },
        DdlStatus::InvalidArgument,
        &["`epochs`"],
    );
    assert_eq!(
        unsafe { ddl_train_config_p_real(2, 5, &mut c) },
        DdlStatus::Ok
    );
    unsafe {
        expect(
            ddl_train_config_set_lr(c, f32::NAN),
            DdlStatus::InvalidArgument,
            &["`lr`"],
        );
        expect(
            ddl_train_config_set_lr(c, -1.0),
            DdlStatus::InvalidArgument,
            &["`lr`"],
        );
        expect(
            ddl_train_config_set_momentum(c, 1.0),
            DdlStatus::InvalidArgument,
            &["`momentum`"],
        );
        expect(
            ddl_train_config_set_weight_decay(c, -0.1),
            DdlStatus::InvalidArgument,
            &["`weight_decay`"],
        );
        expect(
            ddl_train_config_set_epochs(c, 0),
            DdlStatus::InvalidArgument,
            &["`epochs`"],
        );
        expect(
            ddl_train_config_set_schedule_step(c, [1u64].as_ptr(), 1, 0.0),
            DdlStatus::InvalidArgument,
            &["`gamma`"],
        );
        expect(
            ddl_train_config_set_schedule_step(c, null(), 2, 0.1),
            DdlStatus::NullArgument,
            &["`milestones`"],
        );
        assert_eq!(ddl_train_config_set_lr(c, 0.05), DdlStatus::Ok);
        assert_eq!(ddl_train_config_set_batch_size(c, 0), DdlStatus::Ok);
        assert_eq!(ddl_train_config_set_max_steps(c, 3), DdlStatus::Ok);
        assert_eq!(
            ddl_train_config_set_schedule_step(c, [1u64, 2].as_ptr(), 2, 0.5),
            DdlStatus::Ok
        );
    }
    let mut json = null_mut();
    assert_eq!(
        unsafe { ddl_train_config_to_json(c, &mut json) },
        DdlStatus::Ok
    );
    let j = take_json(json);
    assert_eq!(
        j["lr"], 0.05,
        "a rejected setter leaves the value as it was"
    );
    assert_eq!(j["epochs"], 2);
    assert_eq!(j["batch_size"], serde_json::Value::Null);
    assert_eq!(j["seed"], 5);
    assert_eq!(j["schedule"]["milestones"], serde_json::json!([1, 2]));
    // JSON round trip, then unknown and bad fields.
    let text = cstr(&j.to_string());
    let mut c2 = null_mut();
    assert_eq!(
        unsafe { ddl_train_config_from_json(text.as_ptr(), &mut c2) },
        DdlStatus::Ok,
        "{}",
        last_error()
    );
    let mut total = 0u64;
    assert_eq!(
        unsafe { ddl_train_config_total_steps(c2, 100, &mut total) },
        DdlStatus::Ok
    );
    assert_eq!(total, 2, "full batch, 2 epochs, max 3 steps");
    let mut typo = j.clone();
    typo["sgd"]["momentun"] = 0.5.into();
    let typo = cstr(&typo.to_string());
    let mut c3 = null_mut();
    expect(
        unsafe { ddl_train_config_from_json(typo.as_ptr(), &mut c3) },
        DdlStatus::InvalidArgument,
        &["sgd.momentun"],
    );
    let mut bad = j.clone();
    bad["lr"] = (-2.0).into();
    let bad = cstr(&bad.to_string());
    expect(
        unsafe { ddl_train_config_from_json(bad.as_ptr(), &mut c3) },
        DdlStatus::InvalidArgument,
        &["`lr`"],
    );
    assert!(c3.is_null());
    let mut c4 = null_mut();
    assert_eq!(
        unsafe { ddl_train_config_standard_eval(300, 0.01, 100, 0, &mut c4) },
        DdlStatus::Ok
    );
    unsafe {
        ddl_train_config_free(c);
        ddl_train_config_free(c2);
        ddl_train_config_free(c4);
    }
}

struct Counter {
    calls: Vec<(u64, u64)>,
    stop_at: u64,
}

unsafe extern "C" fn count(user: *mut c_void, step: u64, total: u64) -> c_int {
    let c = unsafe { &mut *user.cast::<Counter>() };
    c.calls.push((step, total));
    c_int::from(step >= c.stop_at)
}

#[test]
fn train_learns_reports_progress_and_matches_rust() {
    let b = open_tiny();
    let d = dataset(60, 5);
    let test = dataset(30, 6);
    let mut init = null_mut();
    unsafe { ddl_params_init(b, 0, &mut init) };
    let mut c = null_mut();
    unsafe {
        ddl_train_config_p_real(20, 9, &mut c);
        ddl_train_config_set_batch_size(c, 16);
        ddl_train_config_set_lr(c, 0.05);
    }
    let mut counter = Counter {
        calls: Vec::new(),
        stop_at: u64::MAX,
    };
    let (mut out, mut json) = (null_mut(), null_mut());
    let s = unsafe {
        ddl_train(
            b,
            init,
            d,
            c,
            Some(count),
            (&raw mut counter).cast(),
            &mut out,
            &mut json,
        )
    };
    assert_eq!(s, DdlStatus::Ok, "{}", last_error());
    let report = take_json(json);
    assert_eq!(report["steps"], 80);
    assert_eq!(counter.calls.len(), 81, "step 0 and after each update");
    assert_eq!(counter.calls[0], (0, 80));
    assert_eq!(*counter.calls.last().unwrap(), (80, 80));
    let (mut acc, mut loss, mut before) = (0.0, 0.0, 0.0);
    let mut ej = null_mut();
    assert_eq!(
        unsafe { ddl_evaluate(b, out, test, &mut acc, &mut loss, &mut ej) },
        DdlStatus::Ok
    );
    let ej = take_json(ej);
    assert_eq!(ej["confusion"].as_array().unwrap().len(), 3);
    unsafe { ddl_evaluate(b, init, test, &mut before, null_mut(), null_mut()) };
    assert!(
        acc > 0.9 && acc > before,
        "trained accuracy {acc} (before {before})"
    );
    // The same run through the Rust API gives the same parameters.
    let rust = ddlens::Bundle::open(models_dir().join("tiny-1x8x8")).unwrap();
    let (x, y) = synthetic(60, 5);
    let data = ddlens::data::from_memory_f32(&x, [60, 1, 8, 8], &y, 3, None, "memory").unwrap();
    let mut cfg = ddlens::train::TrainConfig::p_real(20, 9);
    cfg.batch_size = Some(16);
    cfg.lr = 0.05;
    let want = ddlens::train::train(&rust, rust.init_params(0), &data, &cfg, &mut []).unwrap();
    let mut got = vec![0.0f32; want.params.numel()];
    unsafe { ddl_params_get_flat(out, got.as_mut_ptr(), got.len()) };
    assert_eq!(got, want.params.to_flat());
    unsafe {
        ddl_params_free(out);
        ddl_params_free(init);
        ddl_train_config_free(c);
        ddl_dataset_free(d);
        ddl_dataset_free(test);
        ddl_bundle_free(b);
    }
}

#[test]
fn progress_callback_cancels() {
    let b = open_tiny();
    let d = dataset(30, 7);
    let mut init = null_mut();
    unsafe { ddl_params_init(b, 0, &mut init) };
    let mut c = null_mut();
    unsafe { ddl_train_config_p_dist(50, 0, &mut c) };
    let mut counter = Counter {
        calls: Vec::new(),
        stop_at: 3,
    };
    let (mut out, mut json) = (null_mut(), null_mut());
    let s = unsafe {
        ddl_train(
            b,
            init,
            d,
            c,
            Some(count),
            (&raw mut counter).cast(),
            &mut out,
            &mut json,
        )
    };
    expect(s, DdlStatus::Cancelled, &["ddl_train", "step 3 of 50"]);
    assert!(out.is_null() && json.is_null());
    assert_eq!(
        counter.calls.len(),
        4,
        "no step after the callback said stop"
    );
    // The standard evaluation counts steps over all runs, and cancels too.
    let mut counter = Counter {
        calls: Vec::new(),
        stop_at: u64::MAX,
    };
    let mut json = null_mut();
    let s = unsafe {
        ddl_standard_evaluation(
            b,
            d,
            d,
            2,
            3,
            0.01,
            0,
            Some(count),
            (&raw mut counter).cast(),
            &mut json,
        )
    };
    assert_eq!(s, DdlStatus::Ok, "{}", last_error());
    let j = take_json(json);
    assert_eq!(j["accuracies"].as_array().unwrap().len(), 2);
    let steps: Vec<u64> = counter.calls.iter().map(|c| c.0).collect();
    assert_eq!(
        steps,
        (0..=6).collect::<Vec<_>>(),
        "one continuous count over 2 runs of 3 steps"
    );
    assert!(counter.calls.iter().all(|c| c.1 == 6));
    let mut counter = Counter {
        calls: Vec::new(),
        stop_at: 4,
    };
    let s = unsafe {
        ddl_standard_evaluation(
            b,
            d,
            d,
            2,
            3,
            0.01,
            0,
            Some(count),
            (&raw mut counter).cast(),
            &mut json,
        )
    };
    expect(s, DdlStatus::Cancelled, &["ddl_standard_evaluation"]);
    assert!(json.is_null());
    unsafe {
        ddl_params_free(init);
        ddl_train_config_free(c);
        ddl_dataset_free(d);
        ddl_bundle_free(b);
    }
}

#[test]
fn distilled_sets_round_trip() {
    runtime();
    let d = dataset(6, 8);
    let lr = 0.02f32;
    let meta =
        cstr(r#"{"method": "dm", "dataset": "synthetic", "seed": 4, "extra": {"note": "x"}}"#);
    let mut set = null_mut();
    assert_eq!(
        unsafe { ddl_distilled_create(d, &lr, meta.as_ptr(), &mut set) },
        DdlStatus::Ok,
        "{}",
        last_error()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = cstr(dir.path().join("set.safetensors").to_str().unwrap());
    assert_eq!(
        unsafe { ddl_distilled_write(set, file.as_ptr()) },
        DdlStatus::Ok,
        "{}",
        last_error()
    );
    let mut back = null_mut();
    assert_eq!(
        unsafe { ddl_distilled_read(file.as_ptr(), &mut back) },
        DdlStatus::Ok,
        "{}",
        last_error()
    );
    let (mut has, mut got) = (false, 0.0f32);
    assert_eq!(
        unsafe { ddl_distilled_lr(back, &mut has, &mut got) },
        DdlStatus::Ok
    );
    assert!(has);
    assert_eq!(got, lr);
    let mut json = null_mut();
    unsafe { ddl_distilled_describe(back, &mut json) };
    let j = take_json(json);
    assert_eq!(
        (
            j["method"].as_str(),
            j["ipc"].as_u64(),
            j["seed"].as_u64(),
            j["len"].as_u64()
        ),
        (Some("dm"), Some(2), Some(4), Some(6))
    );
    assert_eq!(j["extra"]["note"], "x");
    let mut data = null_mut();
    assert_eq!(
        unsafe { ddl_distilled_data(back, &mut data) },
        DdlStatus::Ok
    );
    let (mut a, mut b) = (vec![0.0f32; 6 * 64], vec![0.0f32; 6 * 64]);
    unsafe {
        ddl_dataset_get_images(d, a.as_mut_ptr(), a.len());
        ddl_dataset_get_images(data, b.as_mut_ptr(), b.len());
    }
    assert_eq!(a, b);
    // Bad metadata and a non-finite lr are rejected.
    let typo = cstr(r#"{"methd": "dm"}"#);
    let mut s2 = null_mut();
    expect(
        unsafe { ddl_distilled_create(d, null(), typo.as_ptr(), &mut s2) },
        DdlStatus::InvalidArgument,
        &["`meta_json`", "methd"],
    );
    let nan = f32::NAN;
    expect(
        unsafe { ddl_distilled_create(d, &nan, null(), &mut s2) },
        DdlStatus::InvalidArgument,
        &["`lr`"],
    );
    // A file that is not a distilled set.
    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"not safetensors").unwrap();
    let junk = cstr(junk.to_str().unwrap());
    expect(
        unsafe { ddl_distilled_read(junk.as_ptr(), &mut s2) },
        DdlStatus::Data,
        &["junk.safetensors"],
    );
    unsafe {
        ddl_distilled_free(set);
        ddl_distilled_free(back);
        ddl_dataset_free(data);
        ddl_dataset_free(d);
    }
}

#[test]
fn missing_roles_and_io_failures_have_their_status() {
    let b = open_tiny();
    // A copy of the tiny bundle without its `grad` graph opens (only `forward` is required) but
    // cannot train.
    let dir = tempfile::tempdir().unwrap();
    let src = models_dir().join("tiny-1x8x8");
    for entry in std::fs::read_dir(&src).unwrap().flatten() {
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    let manifest = dir.path().join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    m["graphs"].as_object_mut().unwrap().remove("grad");
    std::fs::write(&manifest, m.to_string()).unwrap();
    let path = cstr(dir.path().to_str().unwrap());
    let mut nograd = null_mut();
    assert_eq!(
        unsafe { ddl_bundle_open(path.as_ptr(), &mut nograd) },
        DdlStatus::Ok,
        "{}",
        last_error()
    );
    let d = dataset(9, 1);
    let (mut init, mut c, mut out) = (null_mut(), null_mut(), null_mut());
    unsafe {
        ddl_params_init(nograd, 0, &mut init);
        ddl_train_config_p_dist(2, 0, &mut c);
    }
    let s = unsafe { ddl_train(nograd, init, d, c, None, null_mut(), &mut out, null_mut()) };
    expect(s, DdlStatus::MissingRole, &["`grad`"]);
    // Writing under a regular file is an I/O error naming the path; a missing folder is NOT_FOUND.
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let under_file = cstr(file.join("params.safetensors").to_str().unwrap());
    expect(
        unsafe { ddl_params_save(b, init, under_file.as_ptr()) },
        DdlStatus::Io,
        &["a-file/params.safetensors"],
    );
    let no_dir = cstr(
        dir.path()
            .join("no/such/dir/p.safetensors")
            .to_str()
            .unwrap(),
    );
    expect(
        unsafe { ddl_params_save(b, init, no_dir.as_ptr()) },
        DdlStatus::NotFound,
        &["no/such/dir"],
    );
    unsafe {
        ddl_params_free(init);
        ddl_train_config_free(c);
        ddl_dataset_free(d);
        ddl_bundle_free(nograd);
        ddl_bundle_free(b);
    }
}

#[test]
fn zoo_names_read_the_shipped_sets() {
    // The project's zoo/ ships random-ipc1 (zoo/README.md); a name stands in for a path.
    let name = cstr("zoo:random-ipc1");
    let mut set = null_mut();
    assert_eq!(
        unsafe { ddl_distilled_read(name.as_ptr(), &mut set) },
        DdlStatus::Ok,
        "{}",
        last_error()
    );
    let mut json = null_mut();
    unsafe { ddl_distilled_describe(set, &mut json) };
    let j = take_json(json);
    assert_eq!(
        (j["method"].as_str(), j["ipc"].as_u64(), j["len"].as_u64()),
        (Some("random"), Some(1), Some(10))
    );
    unsafe { ddl_distilled_free(set) };
    let unknown = cstr("zoo:no-such-set");
    assert_eq!(
        unsafe { ddl_distilled_read(unknown.as_ptr(), &mut set) },
        DdlStatus::InvalidArgument
    );
    let e = last_error();
    assert!(
        e.contains("zoo:no-such-set") && e.contains("random-ipc1"),
        "{e}"
    );
}

#[test]
fn augmented_standard_evaluation_is_the_library_protocol_with_dsa() {
    let b = open_tiny();
    let d = dataset(30, 7);
    let run = |strategy: Option<&str>| {
        let s = strategy.map(cstr);
        let mut json = null_mut();
        let status = unsafe {
            ddl_standard_evaluation_augmented(
                b,
                d,
                d,
                2,
                4,
                0.01,
                3,
                s.as_ref().map_or(null(), |s| s.as_ptr()),
                None,
                null_mut(),
                &mut json,
            )
        };
        (status, json)
    };
    // The same accuracies as the library's protocol with the same augmentation.
    let (s, json) = run(Some("flip_rotate"));
    assert_eq!(s, DdlStatus::Ok, "{}", last_error());
    let got = take_json(json);
    let bundle = ddlens::Bundle::open(models_dir().join("tiny-1x8x8")).unwrap();
    let (x, y) = synthetic(30, 7);
    let data = ddlens::Dataset::new(
        ndarray::Array4::from_shape_vec((30, 1, 8, 8), x).unwrap(),
        ndarray::Array1::from(y),
        3,
        "memory",
    )
    .unwrap();
    let eval = ddlens::train::StandardEval {
        runs: 2,
        epochs: 4,
        lr: 0.01,
        seed: 3,
        augment: Some("flip_rotate".into()),
    };
    let want = ddlens::train::standard_evaluation(
        &bundle,
        &data,
        &data,
        "memory",
        &eval,
        &mut ddlens::progress::Silent,
    )
    .unwrap();
    let accs: Vec<f64> = got["accuracies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_f64().unwrap())
        .collect();
    assert_eq!(accs, want.accuracies);
    // NULL is the plain protocol, bit for bit.
    let (s, json) = run(None);
    assert_eq!(s, DdlStatus::Ok, "{}", last_error());
    let plain = take_json(json);
    let mut json = null_mut();
    let s = unsafe { ddl_standard_evaluation(b, d, d, 2, 4, 0.01, 3, None, null_mut(), &mut json) };
    assert_eq!(s, DdlStatus::Ok, "{}", last_error());
    assert_eq!(plain, take_json(json));
    // An unknown word is an invalid argument naming the field; nothing is written.
    let (s, json) = run(Some("flip_sparkle"));
    expect(s, DdlStatus::InvalidArgument, &["augment", "sparkle"]);
    assert!(json.is_null());
    unsafe {
        ddl_dataset_free(d);
        ddl_bundle_free(b);
    }
}

/// A model with BatchNorm running statistics (`tiny-bn-1x8x8`) through the C ABI: `ddl_train`
/// keeps the trained statistics in the handle, `ddl_evaluate` uses them (the Rust API's
/// accuracy), `ddl_params_save`/`_load` carry them through a file, and untrained parameters
/// (no statistics) are refused by name.
#[test]
fn running_statistics_travel_with_the_params_handle() {
    runtime();
    let path = cstr(models_dir().join("tiny-bn-1x8x8").to_str().unwrap());
    let mut b = null_mut();
    assert_eq!(
        unsafe { ddl_bundle_open(path.as_ptr(), &mut b) },
        DdlStatus::Ok
    );
    let (d, test) = (dataset(36, 5), dataset(30, 6));
    let (mut init, mut c, mut out) = (null_mut(), null_mut(), null_mut());
    unsafe {
        ddl_params_init(b, 0, &mut init);
        ddl_train_config_p_real(4, 9, &mut c);
        ddl_train_config_set_batch_size(c, 12);
        ddl_train_config_set_lr(c, 0.05);
    }
    let s = unsafe { ddl_train(b, init, d, c, None, null_mut(), &mut out, null_mut()) };
    assert_eq!(s, DdlStatus::Ok, "{}", last_error());
    let mut acc = 0.0;
    let s = unsafe { ddl_evaluate(b, out, test, &mut acc, null_mut(), null_mut()) };
    assert_eq!(s, DdlStatus::Ok, "{}", last_error());
    let rust = ddlens::Bundle::open(models_dir().join("tiny-bn-1x8x8")).unwrap();
    let (x, y) = synthetic(36, 5);
    let data = ddlens::data::from_memory_f32(&x, [36, 1, 8, 8], &y, 3, None, "memory").unwrap();
    let (tx, ty) = synthetic(30, 6);
    let tdata = ddlens::data::from_memory_f32(&tx, [30, 1, 8, 8], &ty, 3, None, "test").unwrap();
    let mut cfg = ddlens::train::TrainConfig::p_real(4, 9);
    cfg.batch_size = Some(12);
    cfg.lr = 0.05;
    let want = ddlens::train::train(&rust, rust.init_params(0), &data, &cfg, &mut []).unwrap();
    let e = ddlens::train::evaluate_with_state(&rust, &want.params, &want.state, &tdata).unwrap();
    assert_eq!(acc, e.accuracy);
    // Through a file and back.
    let dir = tempfile::tempdir().unwrap();
    let file = cstr(dir.path().join("bn.safetensors").to_str().unwrap());
    assert_eq!(
        unsafe { ddl_params_save(b, out, file.as_ptr()) },
        DdlStatus::Ok
    );
    let mut back = null_mut();
    assert_eq!(
        unsafe { ddl_params_load(b, file.as_ptr(), &mut back) },
        DdlStatus::Ok
    );
    let mut again = 0.0;
    let s = unsafe { ddl_evaluate(b, back, test, &mut again, null_mut(), null_mut()) };
    assert_eq!(s, DdlStatus::Ok, "{}", last_error());
    assert_eq!(again, acc);
    // Fresh parameters carry no statistics: refused, naming the model.
    let s = unsafe { ddl_evaluate(b, init, test, &mut again, null_mut(), null_mut()) };
    assert_ne!(s, DdlStatus::Ok);
    let msg = last_error();
    assert!(
        msg.contains("tiny-bn-1x8x8") && msg.contains("running statistics"),
        "{msg}"
    );
    unsafe {
        for p in [out, back, init] {
            ddl_params_free(p);
        }
        ddl_train_config_free(c);
        ddl_dataset_free(d);
        ddl_dataset_free(test);
        ddl_bundle_free(b);
    }
}
