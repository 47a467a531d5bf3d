//! Finding ONNX Runtime: explicit paths that are wrong are errors naming the path and the fix.

use ddlens::runtime::{self, ProviderChoice, RuntimeConfig};

#[test]
fn explicit_missing_path_names_path_and_fix() {
    let cfg = RuntimeConfig {
        library: Some("/definitely/not/here/libonnxruntime.so".into()),
        ..Default::default()
    };
    let err = runtime::locate_library(&cfg).unwrap_err().to_string();
    assert!(
        err.contains("/definitely/not/here/libonnxruntime.so"),
        "{err}"
    );
    assert!(err.contains("not found"), "{err}");
    assert!(err.contains("scripts/setup"), "{err}");
}

#[test]
fn explicit_file_that_is_not_a_library() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = tmp.path().join("libonnxruntime.so");
    std::fs::write(&fake, b"not an ELF file").unwrap();
    let cfg = RuntimeConfig {
        library: Some(fake.clone()),
        ..Default::default()
    };
    let err = runtime::locate_library(&cfg).unwrap_err().to_string();
    assert!(err.contains(&fake.display().to_string()), "{err}");
    assert!(err.contains("not a loadable ONNX Runtime library"), "{err}");
}

#[test]
fn default_search_finds_the_project_copy_with_its_version() {
    let found = runtime::locate_library(&RuntimeConfig::default()).unwrap();
    let version = runtime::library_version(&found.path).unwrap();
    assert!(version.starts_with("1."), "{version}");
    assert!(found.minor >= runtime::ORT_MIN_MINOR);
}

#[test]
fn provider_names_parse_and_bad_ones_are_named() {
    assert_eq!(
        "CPU".parse::<ProviderChoice>().unwrap(),
        ProviderChoice::Cpu
    );
    assert_eq!(
        "cuda".parse::<ProviderChoice>().unwrap(),
        ProviderChoice::Cuda
    );
    let err = "tpu".parse::<ProviderChoice>().unwrap_err().to_string();
    assert!(
        err.contains("tpu") && err.contains("cpu, cuda or auto"),
        "{err}"
    );
}

#[test]
fn init_is_once_per_process() {
    let cpu = RuntimeConfig {
        provider: ProviderChoice::Cpu,
        threads: Some(1),
        ..Default::default()
    };
    let rt = runtime::init(cpu.clone()).unwrap();
    assert_eq!(rt.provider(), runtime::Provider::Cpu);
    assert!(runtime::init(cpu).is_ok(), "same config again is fine");
    let other = RuntimeConfig {
        provider: ProviderChoice::Cpu,
        threads: Some(2),
        ..Default::default()
    };
    let err = runtime::init(other).unwrap_err().to_string();
    assert!(err.contains("cannot be changed"), "{err}");
}
