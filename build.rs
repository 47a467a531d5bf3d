//! Generates the C header `include/ddlens.h` from `src/ffi` with cbindgen.
//!
//! The header is committed; CI regenerates it and fails when the committed copy differs.
//! Only `src/ffi` is parsed: the rest of the crate is Rust API, and its public constants must
//! not leak into the C header. The version macros come from Cargo.toml, so they cannot drift.

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=Cargo.toml");
    let crate_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let mut config = cbindgen::Config::from_file(format!("{crate_dir}/cbindgen.toml"))
        .expect("cbindgen.toml is valid");
    config.after_includes = Some(version_macros());
    match cbindgen::Builder::new()
        .with_src(format!("{crate_dir}/src/ffi/mod.rs"))
        .with_config(config)
        .generate()
    {
        Ok(bindings) => {
            bindings.write_to_file(format!("{crate_dir}/include/ddlens.h"));
        }
        // A parse error elsewhere in the crate is reported by rustc itself; do not mask it.
        Err(e) => println!("cargo:warning=cbindgen could not generate include/ddlens.h: {e}"),
    }
}

/// `DDL_VERSION_MAJOR/MINOR/PATCH/STRING` for the header, from the package version.
fn version_macros() -> String {
    let var = |k: &str| std::env::var(k).expect("cargo sets the package version variables");
    format!(
        "\n// Version of the header; ddl_version() gives the loaded library's.\n\
         #define DDL_VERSION_MAJOR {}\n#define DDL_VERSION_MINOR {}\n#define DDL_VERSION_PATCH {}\n\
         #define DDL_VERSION_STRING \"{}\"\n",
        var("CARGO_PKG_VERSION_MAJOR"),
        var("CARGO_PKG_VERSION_MINOR"),
        var("CARGO_PKG_VERSION_PATCH"),
        var("CARGO_PKG_VERSION"),
    )
}
