//! Calls that need ONNX Runtime before `ddl_runtime_init` fail with
//! `DDL_STATUS_RUNTIME_NOT_INITIALIZED` and name the fix, while calls that do not need it work.
//! (Its own test binary: the runtime is process-wide, and no other test may set it up first.)

use std::ffi::{CStr, CString};
use std::ptr::{null, null_mut};

use ddlens::ffi::*;

#[test]
fn runtime_calls_before_init_say_so() {
    let last = || {
        unsafe { CStr::from_ptr(ddl_last_error()) }
            .to_string_lossy()
            .into_owned()
    };
    assert!(!ddl_runtime_is_initialized());
    let path = CString::new(concat!(env!("CARGO_MANIFEST_DIR"), "/models/tiny-1x8x8")).unwrap();
    let mut b = null_mut();
    let s = unsafe { ddl_bundle_open(path.as_ptr(), &mut b) };
    assert_eq!(s, DdlStatus::RuntimeNotInitialized, "{}", last());
    assert!(b.is_null());
    assert!(last().contains("ddl_runtime_init"), "{}", last());
    let mut json = null_mut();
    assert_eq!(
        unsafe { ddl_runtime_describe(&mut json) },
        DdlStatus::RuntimeNotInitialized
    );
    assert!(
        !ddl_runtime_is_initialized(),
        "no call initialises implicitly"
    );
    // Data and configuration need no runtime.
    let x = [0.0f32; 4];
    let y = [0i64];
    let mut d = null_mut();
    let s = unsafe {
        ddl_dataset_from_memory(
            x.as_ptr().cast(),
            DDL_DTYPE_F32,
            [1usize, 1, 2, 2].as_ptr(),
            4,
            y.as_ptr(),
            1,
            2,
            null(),
            null(),
            null(),
            &mut d,
        )
    };
    assert_eq!(s, DdlStatus::Ok, "{}", last());
    let mut c = null_mut();
    assert_eq!(
        unsafe { ddl_train_config_p_dist(10, 0, &mut c) },
        DdlStatus::Ok
    );
    unsafe {
        ddl_dataset_free(d);
        ddl_train_config_free(c);
    }
    assert!(!ddl_runtime_is_initialized());
}
