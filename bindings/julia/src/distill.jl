# --- distillation ------------------------------------------------------------------------------
#
# Included by DDLens.jl after the handles, the progress machinery and `configure!` for training.

export DistillConfig, distill, generate_experts

"""A distillation configuration (a method, images per class, hyperparameters). Freed by its finalizer, or now with `close`."""
mutable struct DistillConfig
    ptr::Ptr{Cvoid}
    function DistillConfig(ptr::Ptr{Cvoid})
        ptr == C_NULL && throw(invalid("NULL DistillConfig handle"))
        return finalizer(Base.close, new(ptr))
    end
end

Base.unsafe_convert(::Type{Ptr{Cvoid}}, h::DistillConfig) = h.ptr

function Base.close(h::DistillConfig)
    p, h.ptr = h.ptr, C_NULL
    ccall((:ddl_distill_config_free, libddlens), Cvoid, (Ptr{Cvoid},), p)
    return nothing
end

"""
    DistillConfig(method, ipc; settings...)

A configuration for `method` (`"random"`, `"herding"`, `"dm"`, `"dc"`, `"dsa"`, `"mtt"` or
`"bptt"`, a string or a symbol) distilling `ipc` images per class, with the defaults of
`ddlens distill`; `settings` are passed to [`configure!`](@ref).
"""
function DistillConfig(method::Union{AbstractString,Symbol}, ipc::Integer; settings...)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    check(ccall((:ddl_distill_config_new, libddlens), UInt32, (Cstring, Csize_t, Ptr{Ptr{Cvoid}}),
                String(method), ipc, out))
    c = DistillConfig(out[])
    isempty(settings) || configure!(c; settings...)
    return c
end

"""The effective settings of a distillation configuration (defaults resolved) as JSON."""
function describe(c::DistillConfig)
    out = Ref{Ptr{UInt8}}(C_NULL)
    check(ccall((:ddl_distill_config_describe, libddlens), UInt32, (Ptr{Cvoid}, Ptr{Ptr{UInt8}}), c, out))
    return take_string(out[])
end

# A path argument that may be absent: `nothing` or `""` pass NULL.
path_or_null(p) = (p === nothing || isempty(p)) ? C_NULL : p

"""
    configure!(config::DistillConfig; iterations, seed, lr_img, momentum, batch_real, syn_steps,
               batch_syn, lr_lr, dsa, experts, expert_epochs_ahead, max_start_epoch, window,
               learn_lr, herding_params, checkpoint, checkpoint_every, resume)

Changes the given settings (each validated by the library, and refused for a method it does not
apply to). `batch_syn = 0` uses the whole synthetic set, `window = 0` full BPTT; `experts` is a
folder from [`generate_experts`](@ref); `checkpoint` a file written every `checkpoint_every`
iterations and after the last one (`""` for none), which `resume = true` continues from.
"""
function configure!(c::DistillConfig; iterations = nothing, seed = nothing, lr_img = nothing,
                    momentum = nothing, batch_real = nothing, syn_steps = nothing,
                    batch_syn = nothing, lr_lr = nothing, dsa = nothing, experts = nothing,
                    expert_epochs_ahead = nothing, max_start_epoch = nothing, window = nothing,
                    learn_lr = nothing, herding_params = nothing, checkpoint = nothing,
                    checkpoint_every::Integer = 0, resume = nothing)
    iterations === nothing ||
        check(ccall((:ddl_distill_config_set_iterations, libddlens), UInt32, (Ptr{Cvoid}, UInt64), c, iterations))
    seed === nothing ||
        check(ccall((:ddl_distill_config_set_seed, libddlens), UInt32, (Ptr{Cvoid}, UInt64), c, seed))
    lr_img === nothing ||
        check(ccall((:ddl_distill_config_set_lr_img, libddlens), UInt32, (Ptr{Cvoid}, Float32), c, lr_img))
    momentum === nothing ||
        check(ccall((:ddl_distill_config_set_momentum, libddlens), UInt32, (Ptr{Cvoid}, Float32), c, momentum))
    batch_real === nothing ||
        check(ccall((:ddl_distill_config_set_batch_real, libddlens), UInt32, (Ptr{Cvoid}, UInt64), c, batch_real))
    syn_steps === nothing ||
        check(ccall((:ddl_distill_config_set_syn_steps, libddlens), UInt32, (Ptr{Cvoid}, UInt64), c, syn_steps))
    batch_syn === nothing ||
        check(ccall((:ddl_distill_config_set_batch_syn, libddlens), UInt32, (Ptr{Cvoid}, UInt64), c, batch_syn))
    lr_lr === nothing ||
        check(ccall((:ddl_distill_config_set_lr_lr, libddlens), UInt32, (Ptr{Cvoid}, Float32), c, lr_lr))
    dsa === nothing ||
        check(ccall((:ddl_distill_config_set_dsa, libddlens), UInt32, (Ptr{Cvoid}, Bool), c, dsa))
    experts === nothing ||
        check(ccall((:ddl_distill_config_set_experts, libddlens), UInt32, (Ptr{Cvoid}, Cstring), c, experts))
    expert_epochs_ahead === nothing ||
        check(ccall((:ddl_distill_config_set_expert_epochs_ahead, libddlens), UInt32, (Ptr{Cvoid}, UInt64),
                    c, expert_epochs_ahead))
    max_start_epoch === nothing ||
        check(ccall((:ddl_distill_config_set_max_start_epoch, libddlens), UInt32, (Ptr{Cvoid}, UInt64),
                    c, max_start_epoch))
    window === nothing ||
        check(ccall((:ddl_distill_config_set_window, libddlens), UInt32, (Ptr{Cvoid}, UInt64), c, window))
    learn_lr === nothing ||
        check(ccall((:ddl_distill_config_set_learn_lr, libddlens), UInt32, (Ptr{Cvoid}, Bool), c, learn_lr))
    herding_params === nothing ||
        check(ccall((:ddl_distill_config_set_herding_params, libddlens), UInt32, (Ptr{Cvoid}, Cstring),
                    c, path_or_null(herding_params)))
    checkpoint === nothing ||
        check(ccall((:ddl_distill_config_set_checkpoint, libddlens), UInt32, (Ptr{Cvoid}, Cstring, UInt64),
                    c, path_or_null(checkpoint), checkpoint_every))
    resume === nothing ||
        check(ccall((:ddl_distill_config_set_resume, libddlens), UInt32, (Ptr{Cvoid}, Bool), c, resume))
    return c
end

"""
    distill(bundle, real, config; progress=nothing) -> (set, report_json)

Distils `real` for the model of `bundle` with `config`: a [`DistilledSet`](@ref) and a JSON
report (settings, loss per iteration...). `progress(step, total)` is called before the first
iteration and after each; returning `false` cancels (a `DDLensError` with
`DDL_STATUS_CANCELLED`; a checkpoint due by then is on disk), an exception it throws is rethrown.
"""
function distill(b::Bundle, real::Dataset, c::DistillConfig; progress = nothing)
    state = ProgressState(progress, nothing)
    out, json = Ref{Ptr{Cvoid}}(C_NULL), Ref{Ptr{UInt8}}(C_NULL)
    status = GC.@preserve state ccall((:ddl_distill, libddlens), UInt32,
        (Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Ptr{Cvoid}}, Ptr{Ptr{UInt8}}),
        b, real, c, progress_pointer(state), pointer_from_objref(state), out, json)
    finish(state, status)
    return (DistilledSet(out[]), take_string(json[]))
end

"""
    generate_experts(bundle, data, out_dir; num_experts=10, epochs=50, lr=0.01, batch=256,
                     dsa=true, seed=0, progress=nothing) -> index_json

Trains MTT's expert trajectories on `data` and writes them to `out_dir` (for
`configure!(config; experts = out_dir)`). `progress(step, total)` counts epochs over all experts
and may cancel.
"""
function generate_experts(b::Bundle, d::Dataset, out_dir::AbstractString; num_experts::Integer = 10,
                          epochs::Integer = 50, lr::Real = 0.01, batch::Integer = 256, dsa::Bool = true,
                          seed::Integer = 0, progress = nothing)
    state = ProgressState(progress, nothing)
    json = Ref{Ptr{UInt8}}(C_NULL)
    status = GC.@preserve state ccall((:ddl_generate_experts, libddlens), UInt32,
        (Ptr{Cvoid}, Ptr{Cvoid}, Csize_t, UInt64, Float32, Csize_t, Bool, UInt64, Cstring, Ptr{Cvoid},
         Ptr{Cvoid}, Ptr{Ptr{UInt8}}),
        b, d, num_experts, epochs, lr, batch, dsa, seed, out_dir, progress_pointer(state),
        pointer_from_objref(state), json)
    finish(state, status)
    return take_string(json[])
end
