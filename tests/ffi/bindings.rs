//! The bindings cannot drift from the C header.
//!
//! Julia cannot be installed here, so the Julia package is parsed with the real Julia grammar
//! (tree-sitter-julia): it must be free of syntax errors, and every `ccall` must name a header
//! function with the same number of arguments, the same argument types and the same return
//! type; every header function must be wrapped, and the status/enum constants must carry the
//! header's values. The C++ wrapper is compiled against the header by tests/ffi_c.rs; here it
//! must only mention every header function. The Python package (bindings/python) declares a
//! ctypes prototype per header function in `_lib.py`, checked type by type against the header;
//! every function must be called by the package and its constants carry the header's values.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use tree_sitter::{Node, Parser};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One prototype of the header: return type and argument types, normalised
/// (`const struct DdlBundle *` -> `const DdlBundle*`).
#[derive(Debug)]
struct CFunction {
    ret: String,
    args: Vec<String>,
}

fn strip_comments(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        rest = rest[i..].find("*/").map_or("", |j| &rest[i + j + 2..]);
    }
    out.push_str(rest);
    out.lines()
        .map(|l| l.find("//").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Normalises a C type: no `struct`, single spaces, stars attached to the type.
fn c_type(t: &str) -> String {
    let t = t.replace("struct ", "").replace('*', " * ");
    let words: Vec<&str> = t.split_whitespace().collect();
    let mut out = String::new();
    for w in words {
        if w == "*" {
            out.push('*');
        } else {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(w);
        }
    }
    out
}

/// Drops the parameter name from `const float *values`.
fn arg_type(arg: &str) -> String {
    let arg = arg.trim();
    let cut = arg
        .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    c_type(&arg[..cut])
}

fn header_functions(header: &str) -> BTreeMap<String, CFunction> {
    let text = strip_comments(header);
    let start = text.find("extern \"C\" {").expect("extern C block") + "extern \"C\" {".len();
    // Declarations only: no preprocessor lines.
    let body: String = text[start..]
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = BTreeMap::new();
    for stmt in body.split(';') {
        let stmt = stmt.trim();
        let Some(open) = stmt
            .find("ddl_")
            .and_then(|i| stmt[i..].find('(').map(|j| i + j))
        else {
            continue;
        };
        let head = &stmt[..open];
        let name_at = head
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let name = head[name_at..].to_string();
        let ret = c_type(&head[..name_at]);
        let close = stmt.rfind(')').expect("closing parenthesis");
        let inner = stmt[open + 1..close].trim();
        let args = if inner == "void" {
            Vec::new()
        } else {
            inner.split(',').map(arg_type).collect()
        };
        out.insert(name, CFunction { ret, args });
    }
    out
}

/// `DDL_...` constants: enum entries `NAME = n,` and `#define NAME n`.
fn header_constants(header: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in strip_comments(header).lines() {
        let line = line.trim().trim_end_matches(',');
        let (name, value) = if let Some(rest) = line.strip_prefix("#define ") {
            match rest.split_once(' ') {
                Some(pair) => pair,
                None => continue,
            }
        } else if let Some(pair) = line.split_once(" = ") {
            pair
        } else {
            continue;
        };
        if let (true, Ok(v)) = (name.starts_with("DDL_"), value.trim().parse::<u64>()) {
            out.insert(name.trim().to_string(), v);
        }
    }
    out
}

/// The Julia types a C type may be written as, canonicalised (see `julia_canonical`).
fn julia_for(c: &str) -> Result<Vec<String>, String> {
    // `const T* const*` (an array of read-only pointers) passes like `const T**`.
    let c = &c.replace("* const*", "**");
    const OPAQUE: [&str; 6] = [
        "DdlBundle",
        "DdlParams",
        "DdlDataset",
        "DdlDistilledSet",
        "DdlTrainConfig",
        "DdlDistillConfig",
    ];
    let scalar = |t: &str| -> Option<&str> {
        Some(match t {
            "void" => "Cvoid",
            "DdlStatus" | "DdlProvider" | "DdlDtype" | "DdlBudget" | "uint32_t" => "UInt32",
            "uint64_t" => "UInt64",
            "int64_t" => "Int64",
            "size_t" => "Csize_t",
            "float" => "Float32",
            "double" => "Float64",
            "bool" => "Bool",
            "int" => "Int32",
            "DdlProgressFn" => "Ptr{Cvoid}",
            "char" => "UInt8",
            _ => return None,
        })
    };
    let is_const = c.starts_with("const ");
    let base = c.trim_start_matches("const ").trim_end_matches('*').trim();
    let stars = c.chars().filter(|&ch| ch == '*').count();
    let mut inner = if OPAQUE.contains(&base) {
        if stars == 0 {
            return Err(format!("opaque type `{c}` by value"));
        }
        "Cvoid".to_string()
    } else {
        scalar(base)
            .ok_or_else(|| format!("no Julia mapping for C type `{c}`; extend julia_for"))?
            .to_string()
    };
    for _ in 0..stars {
        inner = format!("Ptr{{{inner}}}");
    }
    let mut allowed = vec![inner];
    if is_const && base == "char" && stars == 1 {
        allowed.push("Cstring".to_string());
    }
    Ok(allowed)
}

/// Canonical spelling of a Julia type: no spaces, `Ref{T}` as `Ptr{T}` (ccall passes both as
/// pointers), C aliases resolved to the Julia types they name on every supported platform.
fn julia_canonical(t: &str) -> String {
    fn alias(word: &str) -> &str {
        match word {
            "Ref" => "Ptr",
            "Cfloat" => "Float32",
            "Cdouble" => "Float64",
            "Cint" => "Int32",
            "Cuint" => "UInt32",
            "Cchar" => "UInt8",
            "Nothing" => "Cvoid",
            other => other,
        }
    }
    let mut out = String::new();
    let mut word = String::new();
    for c in t.chars().filter(|c| !c.is_whitespace()) {
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            out.push_str(alias(&word));
            word.clear();
            out.push(c);
        }
    }
    out.push_str(alias(&word));
    out
}

/// Whether `text` uses the identifier `ident` (not as part of a longer name).
fn mentions(text: &str, ident: &str) -> bool {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(ident).any(|(i, _)| {
        let before = text[..i].chars().next_back().is_none_or(|c| !is_ident(c));
        let after = text[i + ident.len()..]
            .chars()
            .next()
            .is_none_or(|c| !is_ident(c));
        before && after
    })
}

/// A `ccall` found in Julia source.
struct CCall {
    line: usize,
    name: String,
    library: String,
    ret: String,
    types: Vec<String>,
    values: usize,
    problems: Vec<String>,
}

fn named_children<'t>(node: Node<'t>) -> Vec<Node<'t>> {
    let mut cursor = node.walk();
    node.named_children(&mut cursor)
        .filter(|n| !n.kind().contains("comment"))
        .collect()
}

fn collect_ccalls(node: Node, src: &str, out: &mut Vec<CCall>) {
    let text = |n: Node| src[n.byte_range()].to_string();
    if node.kind() == "call_expression" {
        let kids = named_children(node);
        if kids.len() == 2 && kids[0].kind() == "identifier" && text(kids[0]) == "ccall" {
            let args = named_children(kids[1]);
            let mut call = CCall {
                line: node.start_position().row + 1,
                name: String::new(),
                library: String::new(),
                ret: String::new(),
                types: Vec::new(),
                values: args.len().saturating_sub(3),
                problems: Vec::new(),
            };
            if args.len() < 3 {
                call.problems.push("fewer than 3 arguments".into());
            } else {
                let target = named_children(args[0]);
                if args[0].kind() != "tuple_expression"
                    || target.len() != 2
                    || target[0].kind() != "quote_expression"
                {
                    call.problems.push(format!(
                        "first argument `{}` is not `(:name, library)`",
                        text(args[0])
                    ));
                } else {
                    call.name = text(target[0]).trim_start_matches(':').to_string();
                    call.library = text(target[1]);
                }
                call.ret = text(args[1]);
                if args[2].kind() == "tuple_expression" {
                    call.types = named_children(args[2]).into_iter().map(text).collect();
                } else {
                    call.problems.push(format!(
                        "argument types `{}` are not a tuple (a single type needs a trailing comma)",
                        text(args[2])
                    ));
                }
            }
            out.push(call);
        }
    }
    for child in named_children(node) {
        collect_ccalls(child, src, out);
    }
}

/// Parses Julia source with the Julia grammar, failing on any syntax error.
fn parse_julia(path: &Path) -> (tree_sitter::Tree, String) {
    let src = read(path);
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_julia::LANGUAGE.into())
        .expect("grammar loads");
    let tree = parser.parse(&src, None).expect("parser returns a tree");
    if tree.root_node().has_error() {
        let mut first = None;
        find_error(tree.root_node(), &mut first);
        let (row, col) = first.unwrap_or((0, 0));
        let line = src.lines().nth(row).unwrap_or("");
        panic!(
            "{}:{}:{}: Julia syntax error near `{}`",
            path.display(),
            row + 1,
            col + 1,
            line.trim()
        );
    }
    (tree, src)
}

fn find_error(node: Node, first: &mut Option<(usize, usize)>) {
    if first.is_some() {
        return;
    }
    if node.is_error() || node.is_missing() {
        let p = node.start_position();
        *first = Some((p.row, p.column));
        return;
    }
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        find_error(child, first);
    }
}

/// The `.jl` files of a folder, sorted.
fn jl_files(dir: &str) -> Vec<PathBuf> {
    let dir = root().join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jl"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} has no .jl file", dir.display());
    files
}

/// The package, its tests and the Julia examples.
fn julia_files() -> Vec<PathBuf> {
    [
        "bindings/julia/src",
        "bindings/julia/test",
        "examples/julia",
    ]
    .iter()
    .flat_map(|d| jl_files(d))
    .collect()
}

#[test]
fn header_parser_reads_every_prototype() {
    // Guards the checks below against a parser that silently finds nothing.
    let header = read(&root().join("include/ddlens.h"));
    let fns = header_functions(&header);
    let open = &fns["ddl_bundle_open"];
    assert_eq!(open.ret, "DdlStatus");
    assert_eq!(open.args, ["const char*", "DdlBundle**"]);
    assert_eq!(fns["ddl_version"].args.len(), 0);
    assert_eq!(fns["ddl_bundle_free"].ret, "void");
    // Every `ddl_xxx(` in the declarations is a parsed prototype.
    let code = strip_comments(&header);
    let declared: BTreeSet<&str> = code
        .match_indices("ddl_")
        .filter_map(|(i, _)| {
            let name_len = code[i..].find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
            code[i + name_len..]
                .starts_with('(')
                .then(|| &code[i..i + name_len])
        })
        .collect();
    assert_eq!(
        declared,
        fns.keys().map(String::as_str).collect::<BTreeSet<_>>()
    );
    assert!(fns.len() >= 60, "{} functions parsed", fns.len());
    assert_eq!(julia_for("const DdlBundle*").unwrap(), ["Ptr{Cvoid}"]);
    assert_eq!(julia_for("DdlParams**").unwrap(), ["Ptr{Ptr{Cvoid}}"]);
    assert_eq!(julia_for("char**").unwrap(), ["Ptr{Ptr{UInt8}}"]);
    assert_eq!(julia_for("const char*").unwrap(), ["Ptr{UInt8}", "Cstring"]);
    assert_eq!(julia_canonical("Ref{ Cfloat }"), "Ptr{Float32}");
    assert_eq!(julia_canonical("Ptr{Nothing}"), "Ptr{Cvoid}");
    assert_eq!(julia_canonical("Ptr{CfloatX}"), "Ptr{CfloatX}");
    assert!(mentions("f(ddl_x);", "ddl_x") && !mentions("ddl_xy(", "ddl_x"));
    assert_eq!(header_constants(&header)["DDL_STATUS_CANCELLED"], 14);
}

#[test]
fn julia_package_parses_and_every_ccall_matches_the_header() {
    let header = read(&root().join("include/ddlens.h"));
    let functions = header_functions(&header);
    let mut problems = Vec::new();
    let mut wrapped = BTreeSet::new();
    for file in julia_files() {
        let (tree, src) = parse_julia(&file);
        let mut calls = Vec::new();
        collect_ccalls(tree.root_node(), &src, &mut calls);
        for call in calls {
            let at = format!(
                "{}:{}",
                file.strip_prefix(root()).unwrap_or(&file).display(),
                call.line
            );
            let mut bad = |m: String| problems.push(format!("{at}: ccall `{}`: {m}", call.name));
            for p in &call.problems {
                bad(p.clone());
            }
            if !call.problems.is_empty() {
                continue;
            }
            if call.library != "libddlens" {
                bad(format!(
                    "library is `{}`, expected `libddlens`",
                    call.library
                ));
            }
            let Some(f) = functions.get(&call.name) else {
                bad("not a function of include/ddlens.h".into());
                continue;
            };
            wrapped.insert(call.name.clone());
            let check = |c: &str, julia: &str| -> Result<(), String> {
                let allowed = julia_for(c)?;
                let got = julia_canonical(julia);
                if allowed.contains(&got) {
                    Ok(())
                } else {
                    Err(format!(
                        "`{julia}` does not match C `{c}` (expected {})",
                        allowed.join(" or ")
                    ))
                }
            };
            if let Err(e) = check(&f.ret, &call.ret) {
                bad(format!("return type: {e}"));
            }
            if call.types.len() != f.args.len() {
                bad(format!(
                    "{} argument types, the header has {}",
                    call.types.len(),
                    f.args.len()
                ));
            } else {
                for (i, (c, j)) in f.args.iter().zip(&call.types).enumerate() {
                    if let Err(e) = check(c, j) {
                        bad(format!("argument {}: {e}", i + 1));
                    }
                }
            }
            if call.values != call.types.len() {
                bad(format!(
                    "{} argument types but {} values",
                    call.types.len(),
                    call.values
                ));
            }
        }
    }
    let missing: Vec<&String> = functions
        .keys()
        .filter(|f| !wrapped.contains(*f) && !is_named_analysis_shim(f))
        .collect();
    if !missing.is_empty() {
        problems.push(format!("the Julia package wraps no ccall for: {missing:?}"));
    }
    assert!(
        problems.is_empty(),
        "Julia bindings drifted from include/ddlens.h:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn julia_constants_match_the_header() {
    let header = header_constants(&read(&root().join("include/ddlens.h")));
    let src = read(&root().join("bindings/julia/src/DDLens.jl"));
    let mut julia = BTreeMap::new();
    for line in src.lines() {
        let Some(rest) = line.trim().strip_prefix("const DDL_") else {
            continue;
        };
        let (name, value) = rest.split_once(" = ").expect("`const DDL_X = UInt32(n)`");
        let n = value
            .trim()
            .strip_prefix("UInt32(")
            .and_then(|v| v.strip_suffix(')'))
            .expect("UInt32(n)");
        julia.insert(format!("DDL_{name}"), n.parse::<u64>().expect("integer"));
    }
    let wanted: BTreeMap<_, _> = header
        .iter()
        .filter(|(k, _)| {
            ["DDL_STATUS_", "DDL_PROVIDER_", "DDL_DTYPE_"]
                .iter()
                .any(|p| k.starts_with(p))
        })
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert!(wanted.len() >= 20, "{wanted:?}");
    assert_eq!(julia, wanted, "Julia constants differ from the header");
}

/// `ddl_analyze_<name>`: the C ABI keeps them (it only grows), but they are shorthands for
/// `ddl_analyze(name, ...)`, which the bindings wrap once for every analysis. Each named shim
/// must still name an analysis of the registry.
fn is_named_analysis_shim(f: &str) -> bool {
    f.strip_prefix("ddl_analyze_")
        .is_some_and(|n| ddlens::analysis::find(&n.replace('_', "-")).is_ok())
}

#[test]
fn cpp_wrapper_mentions_every_header_function() {
    let functions = header_functions(&read(&root().join("include/ddlens.h")));
    let cpp = strip_comments(&read(&root().join("bindings/cpp/ddlens.hpp")));
    // The wrapper copies ddl_last_error() into each exception, so the copy variant has no use.
    let exempt = ["ddl_last_error_copy"];
    let missing: Vec<&String> = functions
        .keys()
        .filter(|f| {
            !exempt.contains(&f.as_str()) && !is_named_analysis_shim(f) && !mentions(&cpp, f)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "bindings/cpp/ddlens.hpp does not use: {missing:?}"
    );
}

#[test]
fn every_header_function_is_documented_with_its_thread_safety() {
    let header = read(&root().join("include/ddlens.h"));
    let functions = header_functions(&header);
    let mut doc = Vec::new();
    let mut undocumented = Vec::new();
    let mut seen = BTreeSet::new();
    for line in header.lines() {
        if let Some(text) = line.strip_prefix("//") {
            doc.push(text.trim());
            continue;
        }
        if let Some(name) = functions
            .keys()
            .find(|f| mentions(line, f) && line.contains(&format!("{f}(")))
        {
            let text = doc.join(" ");
            let states = [
                "Thread-safe",
                "thread-safe",
                "exclusive use",
                "another thread",
            ]
            .iter()
            .any(|s| text.contains(s));
            if !states {
                undocumented.push(name.clone());
            }
            seen.insert(name.clone());
        }
        if !line.starts_with(' ') {
            doc.clear();
        }
    }
    assert_eq!(seen.len(), functions.len(), "every prototype was found");
    assert!(
        undocumented.is_empty(),
        "header functions whose doc comment does not state their thread-safety: {undocumented:?}"
    );
}

/// The Python package (`bindings/python/src/ddlens`): its modules, `_lib.py` first.
fn python_files() -> Vec<(PathBuf, String)> {
    let dir = root().join("bindings/python/src/ddlens");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "py"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{} has too few modules", dir.display());
    files
        .into_iter()
        .map(|p| {
            let text = read(&p);
            (p, text)
        })
        .collect()
}

/// The ctypes spellings a C type may take in `PROTOTYPES` (bindings/python/src/ddlens/_lib.py):
/// handles are `c_void_p`, handle and string outputs `P(c_void_p)` (strings are freed by
/// address), `const char*` is `c_char_p`, pointers to scalars `P(c_<scalar>)`.
fn python_for(c: &str, is_return: bool) -> Result<Vec<String>, String> {
    let c = &c.replace("* const*", "**");
    const OPAQUE: [&str; 6] = [
        "DdlBundle",
        "DdlParams",
        "DdlDataset",
        "DdlDistilledSet",
        "DdlTrainConfig",
        "DdlDistillConfig",
    ];
    let scalar = |t: &str| -> Option<&str> {
        Some(match t {
            "DdlStatus" | "DdlProvider" | "DdlDtype" | "DdlBudget" | "uint32_t" => "c_uint32",
            "uint64_t" => "c_uint64",
            "int64_t" => "c_int64",
            "size_t" => "c_size_t",
            "float" => "c_float",
            "double" => "c_double",
            "bool" => "c_bool",
            "int" => "c_int",
            _ => return None,
        })
    };
    let is_const = c.starts_with("const ");
    let base = c.trim_start_matches("const ").trim_end_matches('*').trim();
    let stars = c.chars().filter(|&ch| ch == '*').count();
    let one = |s: &str| Ok(vec![s.to_string()]);
    match (base, stars) {
        ("void", 0) => one("None"),
        ("DdlStatus", 0) if is_return => Ok(vec!["STATUS".into(), "c_uint32".into()]),
        ("DdlStatus", 0) => one("c_uint32"),
        ("DdlProgressFn", 0) => one("PROGRESS_FN"),
        (b, 1) if OPAQUE.contains(&b) => one("c_void_p"),
        (b, 2) if OPAQUE.contains(&b) => one("P(c_void_p)"),
        ("void", 1) => one("c_void_p"),
        ("char", 1) if is_const => one("c_char_p"),
        // A writable buffer, or a library string passed back by address (`ddl_string_free`).
        ("char", 1) => Ok(vec!["c_char_p".into(), "c_void_p".into()]),
        ("char", 2) if is_const => one("P(c_char_p)"),
        ("char", 2) => one("P(c_void_p)"),
        (b, 0) => scalar(b)
            .map(|s| vec![s.to_string()])
            .ok_or_else(|| format!("no ctypes mapping for C type `{c}`; extend python_for")),
        (b, 1) => scalar(b)
            .map(|s| vec![format!("P({s})")])
            .ok_or_else(|| format!("no ctypes mapping for C type `{c}`; extend python_for")),
        _ => Err(format!(
            "no ctypes mapping for C type `{c}`; extend python_for"
        )),
    }
}

/// `"ddl_name": (RET, [ARG, ...]),` lines of `PROTOTYPES`: name -> (line, return, arguments).
fn python_prototypes(src: &str) -> BTreeMap<String, (usize, String, Vec<String>)> {
    let mut out = BTreeMap::new();
    for (i, line) in src.lines().enumerate() {
        let Some(rest) = line.trim().strip_prefix("\"ddl_") else {
            continue;
        };
        let (name, rest) = rest
            .split_once("\": (")
            .expect("`\"ddl_x\": (RET, [ARGS]),`");
        let (ret, args) = rest.split_once(", [").expect("`(RET, [ARGS])`");
        let args = args.strip_suffix("]),").expect("line ends with `]),`");
        let args = if args.trim().is_empty() {
            Vec::new()
        } else {
            args.split(',').map(|a| a.trim().to_string()).collect()
        };
        let prev = out.insert(format!("ddl_{name}"), (i + 1, ret.trim().to_string(), args));
        assert!(prev.is_none(), "_lib.py:{}: ddl_{name} listed twice", i + 1);
    }
    out
}

#[test]
fn python_prototypes_match_the_header_and_every_function_is_used() {
    let functions = header_functions(&read(&root().join("include/ddlens.h")));
    let files = python_files();
    let lib_src = &files
        .iter()
        .find(|(p, _)| p.ends_with("_lib.py"))
        .expect("_lib.py")
        .1;
    let prototypes = python_prototypes(lib_src);
    let mut problems = Vec::new();
    for (name, (line, ret, args)) in &prototypes {
        let at = format!("bindings/python/src/ddlens/_lib.py:{line}: `{name}`");
        let Some(f) = functions.get(name) else {
            problems.push(format!("{at}: not a function of include/ddlens.h"));
            continue;
        };
        let mismatch = |what: &str, c: &str, py: &str, is_return: bool| -> Option<String> {
            match python_for(c, is_return) {
                Ok(allowed) if allowed.iter().any(|a| a == py) => None,
                Ok(allowed) => Some(format!(
                    "{at}: {what} is `{py}`, C `{c}` needs {}",
                    allowed.join(" or ")
                )),
                Err(e) => Some(format!("{at}: {e}")),
            }
        };
        problems.extend(mismatch("return type", &f.ret, ret, true));
        if args.len() != f.args.len() {
            problems.push(format!(
                "{at}: {} argument types, the header has {}",
                args.len(),
                f.args.len()
            ));
            continue;
        }
        for (i, (c, py)) in f.args.iter().zip(args).enumerate() {
            problems.extend(mismatch(&format!("argument {}", i + 1), c, py, false));
        }
    }
    let missing: Vec<&String> = functions
        .keys()
        .filter(|f| !prototypes.contains_key(*f))
        .collect();
    if !missing.is_empty() {
        problems.push(format!("_lib.py PROTOTYPES lacks: {missing:?}"));
    }
    // Every function is called by the package (`lib.ddl_x` outside _lib.py), except these.
    let exempt = [
        // The package reads ddl_last_error() into each exception; the copy variant has no use.
        "ddl_last_error_copy",
    ];
    let code: String = files
        .iter()
        .filter(|(p, _)| !p.ends_with("_lib.py"))
        .map(|(_, s)| s.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let unused: Vec<&String> = functions
        .keys()
        .filter(|f| {
            !exempt.contains(&f.as_str())
                && !is_named_analysis_shim(f)
                && !mentions(&code, &format!("lib.{f}"))
        })
        .collect();
    if !unused.is_empty() {
        problems.push(format!("the Python package never calls: {unused:?}"));
    }
    assert!(
        problems.is_empty(),
        "Python bindings drifted from include/ddlens.h:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn python_constants_match_the_header() {
    let header = header_constants(&read(&root().join("include/ddlens.h")));
    let mut python = BTreeMap::new();
    for (path, src) in python_files() {
        for line in src.lines() {
            let Some((name, value)) = line.split_once(" = ") else {
                continue;
            };
            if !name.starts_with("DDL_") {
                continue;
            }
            let v = value
                .trim()
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("{}: `{line}` is not `DDL_X = n`", path.display()));
            assert!(
                python.insert(name.to_string(), v).is_none(),
                "{name} defined twice"
            );
        }
    }
    let wanted: BTreeMap<_, _> = header
        .iter()
        .filter(|(k, _)| {
            ["DDL_STATUS_", "DDL_PROVIDER_", "DDL_DTYPE_", "DDL_BUDGET_"]
                .iter()
                .any(|p| k.starts_with(p))
        })
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert!(wanted.len() >= 23, "{wanted:?}");
    assert_eq!(python, wanted, "Python constants differ from the header");
}
