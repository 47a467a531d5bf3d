"""
    DDLens

Julia bindings of ddlens, over its C ABI (`include/ddlens.h`, documented in `docs/c-api.md`).

Set `ENV["DDLENS_LIB"]` to the path of `libddlens.so` before `using DDLens`, or build the
library in the repository (`cargo build --release`), where it is found automatically.

# Array convention (column-major)

ddlens stores tensors row-major (C order). A Julia array is column-major, so the same memory
read by Julia has its dimensions **reversed**: a batch of images that C sees as
`N x C x H x W` is a Julia `Array{Float32,4}` of size `(W, H, C, N)` -- the WHCN layout Flux
also uses -- and crosses the boundary without any copy or `permutedims`. Likewise logits
`N x K` come back as a `K x N` matrix, and a parameter tensor of manifest shape
`[out, in, kh, kw]` is a Julia array of size `(kw, kh, in, out)`. An `(N, C, H, W)` Julia array
must be `permutedims(x, (4, 3, 2, 1))` first.

Labels are class ids `0:K-1` (as in the library), while indices into a dataset
(`select`) are Julia's 1-based indices.

Every failing call throws a [`DDLensError`](@ref) carrying the status code and the library's
message. Handles are freed by finalizers, or at once with `close`.
"""
module DDLens

# The library path is read when the module loads (not frozen into a precompile cache), so that
# `DDLENS_LIB` can point at another build without recompiling anything.
__precompile__(false)

export DDLensError, version, init_runtime, runtime_initialized, runtime_info
export Bundle, Params, Dataset, DistilledSet, TrainConfig
export describe, input_shape, num_classes, feature_dim, num_parameters, normalization
export forward, grad, init_params, load_params, save_params, flat, set_flat!, tensor,
       tensor_shape, set_tensor!
export load_dataset, images, labels, class_balanced, select
export read_distilled, write_distilled, dataset, learned_lr
export standard_eval_config, p_dist_config, p_real_config, to_json, total_steps, configure!
export train, evaluate, standard_evaluation

"""Locates `libddlens.so`: `DDLENS_LIB`, else the repository's release or debug build."""
function find_library()
    haskey(ENV, "DDLENS_LIB") && return ENV["DDLENS_LIB"]
    root = normpath(joinpath(@__DIR__, "..", "..", ".."))
    for profile in ("release", "debug")
        path = joinpath(root, "target", profile, "libddlens.so")
        isfile(path) && return path
    end
    return "libddlens"  # the system's library search path
end

const libddlens = find_library()

# Status codes (DdlStatus in the header; append-only, checked against it by tests/ffi_julia.rs).
const DDL_STATUS_OK = UInt32(0)
const DDL_STATUS_NULL_ARGUMENT = UInt32(1)
const DDL_STATUS_INVALID_ARGUMENT = UInt32(2)
const DDL_STATUS_BUFFER_TOO_SMALL = UInt32(3)
const DDL_STATUS_NOT_FOUND = UInt32(4)
const DDL_STATUS_IO = UInt32(5)
const DDL_STATUS_RUNTIME_NOT_INITIALIZED = UInt32(6)
const DDL_STATUS_RUNTIME_NOT_FOUND = UInt32(7)
const DDL_STATUS_RUNTIME_CONFIG = UInt32(8)
const DDL_STATUS_PROVIDER = UInt32(9)
const DDL_STATUS_BUNDLE = UInt32(10)
const DDL_STATUS_MISSING_ROLE = UInt32(11)
const DDL_STATUS_DATA = UInt32(12)
const DDL_STATUS_ORT = UInt32(13)
const DDL_STATUS_CANCELLED = UInt32(14)
const DDL_STATUS_PANIC = UInt32(15)
const DDL_STATUS_INTERNAL = UInt32(16)

# Execution providers and element types.
const DDL_PROVIDER_AUTO = UInt32(0)
const DDL_PROVIDER_CPU = UInt32(1)
const DDL_PROVIDER_CUDA = UInt32(2)
const DDL_DTYPE_F32 = UInt32(0)
const DDL_DTYPE_U8 = UInt32(1)

"""
    DDLensError(status, name, message)

A failed ddlens call: the numeric status (`DDL_STATUS_*`), its name and the library's message.
"""
struct DDLensError <: Exception
    status::UInt32
    name::String
    message::String
end

Base.showerror(io::IO, e::DDLensError) = print(io, "DDLensError(", e.name, "): ", e.message)

"""The name of a status code, e.g. `"DDL_STATUS_NOT_FOUND"`."""
status_name(status::Integer) =
    unsafe_string(ccall((:ddl_status_name, libddlens), Cstring, (UInt32,), status))

"""The message of the last failing call on this thread."""
last_error() = unsafe_string(ccall((:ddl_last_error, libddlens), Cstring, ()))

"""The last error copied into a buffer of `capacity` bytes (tests the copy entry point)."""
function last_error_copy(capacity::Integer = 4096)
    buf = zeros(UInt8, max(capacity, 1))
    n = ccall((:ddl_last_error_copy, libddlens), Csize_t, (Ptr{UInt8}, Csize_t), buf, capacity)
    return String(buf[1:min(n, capacity - 1)])
end

# Throws the thread's last error for a failing status. Called right after the ccall, with no
# yield in between, so the task is still on the thread whose message it reads.
function check(status::UInt32)
    status == DDL_STATUS_OK && return nothing
    throw(DDLensError(status, status_name(status), last_error()))
end

# An error raised on the Julia side for arguments the wrapper can check itself.
invalid(message::AbstractString) =
    DDLensError(DDL_STATUS_INVALID_ARGUMENT, "DDL_STATUS_INVALID_ARGUMENT", message)

# Takes ownership of a library string and frees it.
function take_string(p::Ptr{UInt8})
    p == C_NULL && return ""
    s = unsafe_string(p)
    ccall((:ddl_string_free, libddlens), Cvoid, (Ptr{UInt8},), p)
    return s
end

"""The loaded library's version, e.g. `"0.1.0"`."""
version() = unsafe_string(ccall((:ddl_version, libddlens), Cstring, ()))

const PROVIDERS = Dict(:auto => DDL_PROVIDER_AUTO, :cpu => DDL_PROVIDER_CPU, :cuda => DDL_PROVIDER_CUDA)

"""
    init_runtime(; library=nothing, provider=:auto, threads=0)

Sets ONNX Runtime up for the process (once; see `ddl_runtime_init`). `provider` is `:auto`,
`:cpu` or `:cuda`; `threads = 0` uses one worker thread per core.
"""
function init_runtime(; library::Union{Nothing,AbstractString} = nothing,
                      provider::Symbol = :auto, threads::Integer = 0)
    haskey(PROVIDERS, provider) || throw(invalid("provider must be :auto, :cpu or :cuda, got :$provider"))
    lib = library === nothing ? C_NULL : library
    check(ccall((:ddl_runtime_init, libddlens), UInt32, (Cstring, UInt32, UInt32),
                lib, PROVIDERS[provider], threads))
    return nothing
end

"""Whether the runtime is set up."""
runtime_initialized() = ccall((:ddl_runtime_is_initialized, libddlens), Bool, ())

"""The runtime description as a JSON string (library, version, provider in use...)."""
function runtime_info()
    out = Ref{Ptr{UInt8}}(C_NULL)
    check(ccall((:ddl_runtime_describe, libddlens), UInt32, (Ptr{Ptr{UInt8}},), out))
    return take_string(out[])
end

# --- handles ---------------------------------------------------------------------------------

# Each handle owns one C pointer, freed by its finalizer or at once by `close` (idempotent:
# `close` leaves C_NULL behind, and the C free functions accept NULL). Passing a handle to
# `ccall` as `Ptr{Cvoid}` keeps it alive for the duration of the call.
"""An opened, validated model bundle. Freed by its finalizer, or now with `close`."""
mutable struct Bundle
    ptr::Ptr{Cvoid}
    function Bundle(ptr::Ptr{Cvoid})
        ptr == C_NULL && throw(invalid("NULL Bundle handle"))
        return finalizer(Base.close, new(ptr))
    end
end

Base.unsafe_convert(::Type{Ptr{Cvoid}}, h::Bundle) = h.ptr

function Base.close(h::Bundle)
    p, h.ptr = h.ptr, C_NULL
    ccall((:ddl_bundle_free, libddlens), Cvoid, (Ptr{Cvoid},), p)
    return nothing
end

"""Model parameters (owned by Julia, independent of the bundle). Freed by its finalizer, or now with `close`."""
mutable struct Params
    ptr::Ptr{Cvoid}
    function Params(ptr::Ptr{Cvoid})
        ptr == C_NULL && throw(invalid("NULL Params handle"))
        return finalizer(Base.close, new(ptr))
    end
end

Base.unsafe_convert(::Type{Ptr{Cvoid}}, h::Params) = h.ptr

function Base.close(h::Params)
    p, h.ptr = h.ptr, C_NULL
    ccall((:ddl_params_free, libddlens), Cvoid, (Ptr{Cvoid},), p)
    return nothing
end

"""Labelled images in normalised space. Freed by its finalizer, or now with `close`."""
mutable struct Dataset
    ptr::Ptr{Cvoid}
    function Dataset(ptr::Ptr{Cvoid})
        ptr == C_NULL && throw(invalid("NULL Dataset handle"))
        return finalizer(Base.close, new(ptr))
    end
end

Base.unsafe_convert(::Type{Ptr{Cvoid}}, h::Dataset) = h.ptr

function Base.close(h::Dataset)
    p, h.ptr = h.ptr, C_NULL
    ccall((:ddl_dataset_free, libddlens), Cvoid, (Ptr{Cvoid},), p)
    return nothing
end

"""A distilled set: images, labels, optional learned learning rate, metadata. Freed by its finalizer, or now with `close`."""
mutable struct DistilledSet
    ptr::Ptr{Cvoid}
    function DistilledSet(ptr::Ptr{Cvoid})
        ptr == C_NULL && throw(invalid("NULL DistilledSet handle"))
        return finalizer(Base.close, new(ptr))
    end
end

Base.unsafe_convert(::Type{Ptr{Cvoid}}, h::DistilledSet) = h.ptr

function Base.close(h::DistilledSet)
    p, h.ptr = h.ptr, C_NULL
    ccall((:ddl_distilled_free, libddlens), Cvoid, (Ptr{Cvoid},), p)
    return nothing
end

"""A training configuration. Freed by its finalizer, or now with `close`."""
mutable struct TrainConfig
    ptr::Ptr{Cvoid}
    function TrainConfig(ptr::Ptr{Cvoid})
        ptr == C_NULL && throw(invalid("NULL TrainConfig handle"))
        return finalizer(Base.close, new(ptr))
    end
end

Base.unsafe_convert(::Type{Ptr{Cvoid}}, h::TrainConfig) = h.ptr

function Base.close(h::TrainConfig)
    p, h.ptr = h.ptr, C_NULL
    ccall((:ddl_train_config_free, libddlens), Cvoid, (Ptr{Cvoid},), p)
    return nothing
end

"""
    Bundle(path_or_name)

Opens a model bundle folder, or a bundle name from `models/` / `DDLENS_MODELS`.
"""
function Bundle(path::AbstractString)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    check(ccall((:ddl_bundle_open, libddlens), UInt32, (Cstring, Ptr{Ptr{Cvoid}}), path, out))
    return Bundle(out[])
end

"""Describes a bundle, parameters, dataset or distilled set as a JSON string."""
function describe(b::Bundle)
    out = Ref{Ptr{UInt8}}(C_NULL)
    check(ccall((:ddl_bundle_describe, libddlens), UInt32, (Ptr{Cvoid}, Ptr{Ptr{UInt8}}), b, out))
    return take_string(out[])
end

"""`(C, H, W)` of one example, in C order."""
function input_shape(b::Bundle)
    c, h, w = Ref{Csize_t}(0), Ref{Csize_t}(0), Ref{Csize_t}(0)
    check(ccall((:ddl_bundle_input_shape, libddlens), UInt32,
                (Ptr{Cvoid}, Ptr{Csize_t}, Ptr{Csize_t}, Ptr{Csize_t}), b, c, h, w))
    return (Int(c[]), Int(h[]), Int(w[]))
end

function num_classes(b::Bundle)
    n = Ref{Csize_t}(0)
    check(ccall((:ddl_bundle_num_classes, libddlens), UInt32, (Ptr{Cvoid}, Ptr{Csize_t}), b, n))
    return Int(n[])
end

function feature_dim(b::Bundle)
    n = Ref{Csize_t}(0)
    check(ccall((:ddl_bundle_feature_dim, libddlens), UInt32, (Ptr{Cvoid}, Ptr{Csize_t}), b, n))
    return Int(n[])
end

function num_parameters(b::Bundle)
    n = Ref{Csize_t}(0)
    check(ccall((:ddl_bundle_num_parameters, libddlens), UInt32, (Ptr{Cvoid}, Ptr{Csize_t}), b, n))
    return Int(n[])
end

"""Per-channel `(mean, std)` that the model expects pixels in [0, 1] to be normalised with."""
function normalization(b::Bundle)
    c = input_shape(b)[1]
    mean, std = zeros(Float32, c), zeros(Float32, c)
    check(ccall((:ddl_bundle_normalization, libddlens), UInt32,
                (Ptr{Cvoid}, Ptr{Float32}, Ptr{Float32}, Csize_t), b, mean, std, c))
    return (mean, std)
end

# A batch of images as a dense Float32 array of size (W, H, C, N) matching the bundle.
function image_batch(b::Bundle, x::AbstractArray{<:Real,4})
    c, h, w = input_shape(b)
    size(x)[1:3] == (w, h, c) ||
        throw(invalid("x has size $(size(x)); the model takes (W, H, C, N) = ($w, $h, $c, N)"))
    size(x, 4) > 0 || throw(invalid("x is an empty batch"))
    return x isa Array{Float32,4} ? x : Array{Float32,4}(x)
end

"""
    forward(bundle, params, x) -> (logits, features)

`x` is `(W, H, C, N)` (normalised); returns `logits` of size `(K, N)` and `features` `(F, N)`.
"""
function forward(b::Bundle, p::Params, x::AbstractArray{<:Real,4})
    xs = image_batch(b, x)
    n = size(xs, 4)
    logits = zeros(Float32, num_classes(b), n)
    features = zeros(Float32, feature_dim(b), n)
    check(ccall((:ddl_bundle_forward, libddlens), UInt32,
                (Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Float32}, Csize_t, Ptr{Float32}, Csize_t, Ptr{Float32}, Csize_t),
                b, p, xs, n, logits, length(logits), features, length(features)))
    return (logits, features)
end

"""
    grad(bundle, params, x, y; w=nothing) -> (loss, gradient)

Weighted mean cross-entropy of a batch (`x` `(W, H, C, N)`, `y` class ids `0:K-1`, optional
weights `w`) and its flat gradient in parameter order.
"""
function grad(b::Bundle, p::Params, x::AbstractArray{<:Real,4}, y::AbstractVector{<:Integer};
              w::Union{Nothing,AbstractVector{<:Real}} = nothing)
    xs = image_batch(b, x)
    n = size(xs, 4)
    length(y) == n || throw(invalid("y has $(length(y)) labels for a batch of $n"))
    w === nothing || length(w) == n || throw(invalid("w has $(length(w)) weights for a batch of $n"))
    ys = Vector{Int64}(y)
    ws = w === nothing ? Ptr{Float32}(C_NULL) : Vector{Float32}(w)
    loss = Ref{Float32}(0)
    g = zeros(Float32, num_parameters(b))
    check(ccall((:ddl_bundle_grad, libddlens), UInt32,
                (Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Float32}, Ptr{Int64}, Ptr{Float32}, Csize_t, Ptr{Float32}, Ptr{Float32}, Csize_t),
                b, p, xs, ys, ws, n, loss, g, length(g)))
    return (loss[], g)
end

# --- parameters ------------------------------------------------------------------------------

"""A fresh initialisation of the bundle's parameters drawn from `seed`."""
function init_params(b::Bundle, seed::Integer = 0)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    check(ccall((:ddl_params_init, libddlens), UInt32, (Ptr{Cvoid}, UInt64, Ptr{Ptr{Cvoid}}), b, seed, out))
    return Params(out[])
end

"""Parameters copied from a flat vector of `num_parameters(bundle)` values."""
function Params(b::Bundle, values::AbstractVector{<:Real})
    v = Vector{Float32}(values)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    check(ccall((:ddl_params_from_flat, libddlens), UInt32,
                (Ptr{Cvoid}, Ptr{Float32}, Csize_t, Ptr{Ptr{Cvoid}}), b, v, length(v), out))
    return Params(out[])
end

"""Reads a safetensors parameter file."""
function load_params(b::Bundle, path::AbstractString)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    check(ccall((:ddl_params_load, libddlens), UInt32, (Ptr{Cvoid}, Cstring, Ptr{Ptr{Cvoid}}), b, path, out))
    return Params(out[])
end

"""Writes parameters to a safetensors file (atomically)."""
function save_params(b::Bundle, p::Params, path::AbstractString)
    check(ccall((:ddl_params_save, libddlens), UInt32, (Ptr{Cvoid}, Ptr{Cvoid}, Cstring), b, p, path))
    return nothing
end

function Base.copy(p::Params)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    check(ccall((:ddl_params_clone, libddlens), UInt32, (Ptr{Cvoid}, Ptr{Ptr{Cvoid}}), p, out))
    return Params(out[])
end

function Base.length(p::Params)
    n = Ref{Csize_t}(0)
    check(ccall((:ddl_params_numel, libddlens), UInt32, (Ptr{Cvoid}, Ptr{Csize_t}), p, n))
    return Int(n[])
end

"""All values as a flat `Vector{Float32}` in parameter order."""
function flat(p::Params)
    v = zeros(Float32, length(p))
    check(ccall((:ddl_params_get_flat, libddlens), UInt32, (Ptr{Cvoid}, Ptr{Float32}, Csize_t), p, v, length(v)))
    return v
end

"""Overwrites all values from a flat vector of `length(p)` values."""
function set_flat!(p::Params, values::AbstractVector{<:Real})
    v = Vector{Float32}(values)
    check(ccall((:ddl_params_set_flat, libddlens), UInt32, (Ptr{Cvoid}, Ptr{Float32}, Csize_t), p, v, length(v)))
    return p
end

"""The shape of a named tensor in C order (the manifest's)."""
function tensor_shape(p::Params, name::AbstractString)
    ndim = Ref{Csize_t}(0)
    status = ccall((:ddl_params_tensor_shape, libddlens), UInt32,
                   (Ptr{Cvoid}, Cstring, Ptr{Csize_t}, Csize_t, Ptr{Csize_t}), p, name, Ptr{Csize_t}(C_NULL), 0, ndim)
    status == DDL_STATUS_BUFFER_TOO_SMALL || check(status)
    shape = zeros(Csize_t, ndim[])
    check(ccall((:ddl_params_tensor_shape, libddlens), UInt32,
                (Ptr{Cvoid}, Cstring, Ptr{Csize_t}, Csize_t, Ptr{Csize_t}), p, name, shape, length(shape), ndim))
    return Tuple(Int.(shape))
end

"""A named tensor as a Julia array with the manifest shape reversed (column-major)."""
function tensor(p::Params, name::AbstractString)
    dims = reverse(tensor_shape(p, name))
    a = zeros(Float32, dims...)
    check(ccall((:ddl_params_get_tensor, libddlens), UInt32,
                (Ptr{Cvoid}, Cstring, Ptr{Float32}, Csize_t), p, name, a, length(a)))
    return a
end

"""Overwrites a named tensor from an array whose size is the manifest shape reversed."""
function set_tensor!(p::Params, name::AbstractString, a::AbstractArray{<:Real})
    dims = reverse(tensor_shape(p, name))
    size(a) == dims || throw(invalid("tensor `$name` takes a Julia array of size $dims, got $(size(a))"))
    v = Array{Float32}(a)
    check(ccall((:ddl_params_set_tensor, libddlens), UInt32,
                (Ptr{Cvoid}, Cstring, Ptr{Float32}, Csize_t), p, name, v, length(v)))
    return p
end

function describe(p::Params)
    out = Ref{Ptr{UInt8}}(C_NULL)
    check(ccall((:ddl_params_describe, libddlens), UInt32, (Ptr{Cvoid}, Ptr{Ptr{UInt8}}), p, out))
    return take_string(out[])
end

# --- datasets --------------------------------------------------------------------------------

"""
    load_dataset(name; dir=nothing) -> (train, test)

Both splits of `"fashion-mnist"`, `"mnist"` or `"cifar10"`, normalised with their standard
constants; `dir` is the folder of the standard files (default: `DDLENS_DATA`, or the Debian
package's folder for Fashion-MNIST).
"""
function load_dataset(name::AbstractString; dir::Union{Nothing,AbstractString} = nothing)
    train, test = Ref{Ptr{Cvoid}}(C_NULL), Ref{Ptr{Cvoid}}(C_NULL)
    d = dir === nothing ? C_NULL : dir
    check(ccall((:ddl_dataset_load, libddlens), UInt32,
                (Cstring, Cstring, Ptr{Ptr{Cvoid}}, Ptr{Ptr{Cvoid}}), name, d, train, test))
    return (Dataset(train[]), Dataset(test[]))
end

"""
    Dataset(images, labels, num_classes; mean=nothing, std=nothing, name="memory")

Copies images of size `(W, H, C, N)` (`Float32`, or `UInt8` pixels) and `N` labels (class ids
`0:num_classes-1`). With `mean`/`std` (one per channel) pixels in [0, 1] (or bytes / 255) are
normalised; without them `Float32` images are taken as normalised and bytes are scaled to
[0, 1]. The arrays are only read during the call.
"""
function Dataset(x::AbstractArray{T,4}, y::AbstractVector{<:Integer}, num_classes::Integer;
                 mean = nothing, std = nothing, name::AbstractString = "memory") where {T<:Real}
    (mean === nothing) == (std === nothing) || throw(invalid("give both mean and std, or neither"))
    xs, dtype = T === UInt8 ? (Array{UInt8,4}(x), DDL_DTYPE_U8) : (Array{Float32,4}(x), DDL_DTYPE_F32)
    shape = Csize_t[reverse(size(xs))...]  # (W, H, C, N) in Julia is N x C x H x W in C
    ys = Vector{Int64}(y)
    m = mean === nothing ? Ptr{Float32}(C_NULL) : Vector{Float32}(mean)
    s = std === nothing ? Ptr{Float32}(C_NULL) : Vector{Float32}(std)
    if mean !== nothing && (length(mean) != shape[2] || length(std) != shape[2])
        throw(invalid("mean and std need one value per channel ($(shape[2]))"))
    end
    out = Ref{Ptr{Cvoid}}(C_NULL)
    check(ccall((:ddl_dataset_from_memory, libddlens), UInt32,
                (Ptr{Cvoid}, UInt32, Ptr{Csize_t}, Csize_t, Ptr{Int64}, Csize_t, Csize_t, Ptr{Float32}, Ptr{Float32}, Cstring, Ptr{Ptr{Cvoid}}),
                xs, dtype, shape, length(shape), ys, length(ys), num_classes, m, s, name, out))
    return Dataset(out[])
end

function Base.length(d::Dataset)
    n = Ref{Csize_t}(0)
    check(ccall((:ddl_dataset_len, libddlens), UInt32, (Ptr{Cvoid}, Ptr{Csize_t}), d, n))
    return Int(n[])
end

function num_classes(d::Dataset)
    n = Ref{Csize_t}(0)
    check(ccall((:ddl_dataset_num_classes, libddlens), UInt32, (Ptr{Cvoid}, Ptr{Csize_t}), d, n))
    return Int(n[])
end

"""`(C, H, W)` of one example, in C order."""
function input_shape(d::Dataset)
    c, h, w = Ref{Csize_t}(0), Ref{Csize_t}(0), Ref{Csize_t}(0)
    check(ccall((:ddl_dataset_input_shape, libddlens), UInt32,
                (Ptr{Cvoid}, Ptr{Csize_t}, Ptr{Csize_t}, Ptr{Csize_t}), d, c, h, w))
    return (Int(c[]), Int(h[]), Int(w[]))
end

"""The images as a `(W, H, C, N)` `Array{Float32,4}` (normalised)."""
function images(d::Dataset)
    c, h, w = input_shape(d)
    a = zeros(Float32, w, h, c, length(d))
    check(ccall((:ddl_dataset_get_images, libddlens), UInt32, (Ptr{Cvoid}, Ptr{Float32}, Csize_t), d, a, length(a)))
    return a
end

"""The labels (class ids `0:K-1`)."""
function labels(d::Dataset)
    v = zeros(Int64, length(d))
    check(ccall((:ddl_dataset_get_labels, libddlens), UInt32, (Ptr{Cvoid}, Ptr{Int64}, Csize_t), d, v, length(v)))
    return v
end

"""A seeded class-balanced subset with `per_class` examples of every class."""
function class_balanced(d::Dataset, per_class::Integer; seed::Integer = 0)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    check(ccall((:ddl_dataset_class_balanced, libddlens), UInt32,
                (Ptr{Cvoid}, Csize_t, UInt64, Ptr{Ptr{Cvoid}}), d, per_class, seed, out))
    return Dataset(out[])
end

"""The examples at Julia (1-based) `indices`, in that order."""
function select(d::Dataset, indices::AbstractVector{<:Integer})
    all(i -> i >= 1, indices) || throw(invalid("indices are 1-based"))
    idx = Csize_t[i - 1 for i in indices]
    out = Ref{Ptr{Cvoid}}(C_NULL)
    check(ccall((:ddl_dataset_select, libddlens), UInt32,
                (Ptr{Cvoid}, Ptr{Csize_t}, Csize_t, Ptr{Ptr{Cvoid}}), d, idx, length(idx), out))
    return Dataset(out[])
end

function describe(d::Dataset)
    out = Ref{Ptr{UInt8}}(C_NULL)
    check(ccall((:ddl_dataset_describe, libddlens), UInt32, (Ptr{Cvoid}, Ptr{Ptr{UInt8}}), d, out))
    return take_string(out[])
end

# --- distilled sets --------------------------------------------------------------------------

"""Reads a distilled-set file (safetensors)."""
function read_distilled(path::AbstractString)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    check(ccall((:ddl_distilled_read, libddlens), UInt32, (Cstring, Ptr{Ptr{Cvoid}}), path, out))
    return DistilledSet(out[])
end

"""
    DistilledSet(data; lr=nothing, meta=nothing)

A distilled set from a dataset, an optional learned learning rate and optional metadata JSON
(`{"method", "ipc", "dataset", "model", "seed", "extra"}`).
"""
function DistilledSet(d::Dataset; lr::Union{Nothing,Real} = nothing,
                      meta::Union{Nothing,AbstractString} = nothing)
    lr_arg = lr === nothing ? Ptr{Float32}(C_NULL) : Ref{Float32}(lr)
    meta_arg = meta === nothing ? C_NULL : meta
    out = Ref{Ptr{Cvoid}}(C_NULL)
    check(ccall((:ddl_distilled_create, libddlens), UInt32,
                (Ptr{Cvoid}, Ptr{Float32}, Cstring, Ptr{Ptr{Cvoid}}), d, lr_arg, meta_arg, out))
    return DistilledSet(out[])
end

"""Writes a distilled set (atomically)."""
function write_distilled(s::DistilledSet, path::AbstractString)
    check(ccall((:ddl_distilled_write, libddlens), UInt32, (Ptr{Cvoid}, Cstring), s, path))
    return nothing
end

"""The images and labels of a distilled set as a [`Dataset`](@ref)."""
function dataset(s::DistilledSet)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    check(ccall((:ddl_distilled_data, libddlens), UInt32, (Ptr{Cvoid}, Ptr{Ptr{Cvoid}}), s, out))
    return Dataset(out[])
end

"""The learned learning rate, or `nothing`."""
function learned_lr(s::DistilledSet)
    has, lr = Ref{Bool}(false), Ref{Float32}(0)
    check(ccall((:ddl_distilled_lr, libddlens), UInt32, (Ptr{Cvoid}, Ptr{Bool}, Ptr{Float32}), s, has, lr))
    return has[] ? lr[] : nothing
end

function describe(s::DistilledSet)
    out = Ref{Ptr{UInt8}}(C_NULL)
    check(ccall((:ddl_distilled_describe, libddlens), UInt32, (Ptr{Cvoid}, Ptr{Ptr{UInt8}}), s, out))
    return take_string(out[])
end

# --- training configuration ------------------------------------------------------------------

"""The standard evaluation recipe for a training set of `train_size` examples."""
function standard_eval_config(epochs::Integer, lr::Real, train_size::Integer; seed::Integer = 0)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    check(ccall((:ddl_train_config_standard_eval, libddlens), UInt32,
                (UInt64, Float32, Csize_t, UInt64, Ptr{Ptr{Cvoid}}), epochs, lr, train_size, seed, out))
    return TrainConfig(out[])
end

"""P_dist: full-batch SGD for `steps` steps, lr 0.01, momentum 0.9."""
function p_dist_config(steps::Integer; seed::Integer = 0)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    check(ccall((:ddl_train_config_p_dist, libddlens), UInt32, (UInt64, UInt64, Ptr{Ptr{Cvoid}}), steps, seed, out))
    return TrainConfig(out[])
end

"""P_real: minibatch 256, lr 0.01, momentum 0.9, `epochs` epochs."""
function p_real_config(epochs::Integer; seed::Integer = 0)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    check(ccall((:ddl_train_config_p_real, libddlens), UInt32, (UInt64, UInt64, Ptr{Ptr{Cvoid}}), epochs, seed, out))
    return TrainConfig(out[])
end

"""A configuration from the JSON that [`to_json`](@ref) writes."""
function TrainConfig(json::AbstractString)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    check(ccall((:ddl_train_config_from_json, libddlens), UInt32, (Cstring, Ptr{Ptr{Cvoid}}), json, out))
    return TrainConfig(out[])
end

"""The configuration as JSON."""
function to_json(c::TrainConfig)
    out = Ref{Ptr{UInt8}}(C_NULL)
    check(ccall((:ddl_train_config_to_json, libddlens), UInt32, (Ptr{Cvoid}, Ptr{Ptr{UInt8}}), c, out))
    return take_string(out[])
end

"""Number of updates a run on `train_size` examples makes."""
function total_steps(c::TrainConfig, train_size::Integer)
    n = Ref{UInt64}(0)
    check(ccall((:ddl_train_config_total_steps, libddlens), UInt32, (Ptr{Cvoid}, Csize_t, Ptr{UInt64}), c, train_size, n))
    return Int(n[])
end

"""
    configure!(config; epochs, max_steps, batch_size, lr, momentum, weight_decay, seed,
               milestones, gamma, constant_lr, dsa)

Changes the given fields (each validated by the library). `batch_size = 0` trains full-batch,
`max_steps = 0` removes the limit; `milestones` (0-based steps) with `gamma` sets a step
schedule, `constant_lr = true` a constant one. `dsa` augments every minibatch with a DSA
strategy such as `"color_crop_cutout_flip_scale_rotate"`; `""` or `"none"` turns it off.
"""
function configure!(c::TrainConfig; epochs = nothing, max_steps = nothing, batch_size = nothing,
                    lr = nothing, momentum = nothing, weight_decay = nothing, seed = nothing,
                    milestones = nothing, gamma = 0.1, constant_lr::Bool = false, dsa = nothing)
    epochs === nothing ||
        check(ccall((:ddl_train_config_set_epochs, libddlens), UInt32, (Ptr{Cvoid}, UInt64), c, epochs))
    max_steps === nothing ||
        check(ccall((:ddl_train_config_set_max_steps, libddlens), UInt32, (Ptr{Cvoid}, UInt64), c, max_steps))
    batch_size === nothing ||
        check(ccall((:ddl_train_config_set_batch_size, libddlens), UInt32, (Ptr{Cvoid}, UInt64), c, batch_size))
    lr === nothing ||
        check(ccall((:ddl_train_config_set_lr, libddlens), UInt32, (Ptr{Cvoid}, Float32), c, lr))
    momentum === nothing ||
        check(ccall((:ddl_train_config_set_momentum, libddlens), UInt32, (Ptr{Cvoid}, Float32), c, momentum))
    weight_decay === nothing ||
        check(ccall((:ddl_train_config_set_weight_decay, libddlens), UInt32, (Ptr{Cvoid}, Float32), c, weight_decay))
    seed === nothing ||
        check(ccall((:ddl_train_config_set_seed, libddlens), UInt32, (Ptr{Cvoid}, UInt64), c, seed))
    constant_lr && check(ccall((:ddl_train_config_set_schedule_constant, libddlens), UInt32, (Ptr{Cvoid},), c))
    dsa === nothing ||
        check(ccall((:ddl_train_config_set_dsa, libddlens), UInt32, (Ptr{Cvoid}, Cstring), c, dsa))
    if milestones !== nothing
        m = UInt64[milestones...]
        check(ccall((:ddl_train_config_set_schedule_step, libddlens), UInt32,
                    (Ptr{Cvoid}, Ptr{UInt64}, Csize_t, Float32), c, m, length(m), gamma))
    end
    return c
end

# --- training and evaluation -----------------------------------------------------------------

# The Julia progress callback and the first exception it threw, reached from C through
# `user_data` (the object is rooted by GC.@preserve for the duration of the call).
mutable struct ProgressState
    callback::Any
    error::Any
end

function progress_trampoline(user::Ptr{Cvoid}, step::UInt64, total::UInt64)::Cint
    state = unsafe_pointer_to_objref(user)::ProgressState
    try
        return state.callback(Int(step), Int(total)) === false ? Cint(1) : Cint(0)
    catch err
        # An exception must not unwind through the C library: stop, and rethrow it afterwards.
        state.error = err
        return Cint(1)
    end
end

progress_pointer(state::ProgressState) = state.callback === nothing ? C_NULL :
    @cfunction(progress_trampoline, Cint, (Ptr{Cvoid}, UInt64, UInt64))

function finish(state::ProgressState, status::UInt32)
    state.error === nothing || throw(state.error)
    check(status)
end

"""
    train(bundle, init, data, config; progress=nothing) -> (params, report_json)

Trains a copy of `init` on `data`. `progress(step, total)` is called before the first update
and after each; returning `false` cancels (a `DDLensError` with `DDL_STATUS_CANCELLED`), an
exception it throws is rethrown.
"""
function train(b::Bundle, init::Params, d::Dataset, c::TrainConfig; progress = nothing)
    state = ProgressState(progress, nothing)
    out, json = Ref{Ptr{Cvoid}}(C_NULL), Ref{Ptr{UInt8}}(C_NULL)
    status = GC.@preserve state ccall((:ddl_train, libddlens), UInt32,
        (Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Ptr{Cvoid}}, Ptr{Ptr{UInt8}}),
        b, init, d, c, progress_pointer(state), pointer_from_objref(state), out, json)
    finish(state, status)
    return (Params(out[]), take_string(json[]))
end

"""
    evaluate(bundle, params, data) -> (accuracy, loss, json)

Accuracy and mean cross-entropy on every example; `json` adds the confusion matrix.
"""
function evaluate(b::Bundle, p::Params, d::Dataset)
    acc, loss, json = Ref{Float64}(0), Ref{Float64}(0), Ref{Ptr{UInt8}}(C_NULL)
    check(ccall((:ddl_evaluate, libddlens), UInt32,
                (Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Float64}, Ptr{Float64}, Ptr{Ptr{UInt8}}),
                b, p, d, acc, loss, json))
    return (accuracy = acc[], loss = loss[], json = take_string(json[]))
end

"""
    standard_evaluation(bundle, train_set, test_set; runs=5, epochs=nothing, lr=0.01, seed=0,
                        augment=nothing, progress=nothing) -> json

The standard evaluation protocol: `runs` fresh models trained on `train_set`, test accuracy
as mean and std (JSON). `augment` is a DSA strategy applied to every minibatch (e.g.
`"color_crop_cutout_flip_scale_rotate"`, as `ddlens eval --dsa`); `epochs` defaults to the
protocol's 300, or 1000 with `augment`.
"""
function standard_evaluation(b::Bundle, train_set::Dataset, test_set::Dataset; runs::Integer = 5,
                             epochs::Union{Integer,Nothing} = nothing, lr::Real = 0.01, seed::Integer = 0,
                             augment::Union{AbstractString,Nothing} = nothing, progress = nothing)
    epochs = something(epochs, augment === nothing ? 300 : 1000)
    state = ProgressState(progress, nothing)
    json = Ref{Ptr{UInt8}}(C_NULL)
    status = if augment === nothing
        GC.@preserve state ccall((:ddl_standard_evaluation, libddlens), UInt32,
            (Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Cvoid}, Csize_t, UInt64, Float32, UInt64, Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Ptr{UInt8}}),
            b, train_set, test_set, runs, epochs, lr, seed, progress_pointer(state), pointer_from_objref(state), json)
    else
        GC.@preserve state ccall((:ddl_standard_evaluation_augmented, libddlens), UInt32,
            (Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Cvoid}, Csize_t, UInt64, Float32, UInt64, Cstring, Ptr{Cvoid}, Ptr{Cvoid},
             Ptr{Ptr{UInt8}}),
            b, train_set, test_set, runs, epochs, lr, seed, augment, progress_pointer(state), pointer_from_objref(state),
            json)
    end
    finish(state, status)
    return take_string(json[])
end

include("distill.jl")
include("analysis.jl")

end # module
