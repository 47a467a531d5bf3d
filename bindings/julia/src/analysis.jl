# --- analyses ----------------------------------------------------------------------------------
#
# Included by DDLens.jl after the handles and the progress machinery. One generic function,
# `analyze(name, ...)` over `ddl_analyze`, and a one-line shorthand per analysis; the settings
# and the result of each are documented in include/ddlens.h and docs/analyses.md.

export analysis_names, analyze, analyze_pixels, analyze_mixing, analyze_sensitivity, analyze_recognition,
       analyze_agreement, analyze_recognition_over_training, analyze_curvature,
       analyze_influence

# Budgets (DdlBudget in the header).
const DDL_BUDGET_PAPER = UInt32(0)
const DDL_BUDGET_CPU = UInt32(1)
const DDL_BUDGET_SMOKE = UInt32(2)

const BUDGETS = Dict(:paper => DDL_BUDGET_PAPER, :cpu => DDL_BUDGET_CPU, :smoke => DDL_BUDGET_SMOKE)

# The arguments every `ddl_analyze_*` call shares, converted for `ccall`. The object references
# the sets, the name strings and the progress state, so `GC.@preserve`-ing it keeps every
# pointer it hands out valid for the duration of the call.
mutable struct AnalysisArgs
    sets::Vector{DistilledSet}
    handles::Vector{Ptr{Cvoid}}
    names::Vector{String}
    name_ptrs::Vector{Ptr{UInt8}}   # empty: NULL (every set is named `set<i>`)
    budget::UInt32
    options::Union{Nothing,String}
    seed::UInt64
    out_dir::Union{Nothing,String}
    state::ProgressState
end

function AnalysisArgs(sets::AbstractVector; names = nothing, budget = :cpu, options = nothing,
                      seed::Integer = 0, out_dir = nothing, progress = nothing)
    all(s -> s isa DistilledSet, sets) || throw(invalid("sets must be DistilledSet handles"))
    sets = Vector{DistilledSet}(sets)
    any(s -> s.ptr == C_NULL, sets) && throw(invalid("a set has been closed"))
    # A symbol, or a DDL_BUDGET_* value (an unknown value is reported by the library).
    b = budget isa Symbol ? get(BUDGETS, budget, nothing) :
        budget isa Integer ? UInt32(budget) : nothing
    b === nothing && throw(invalid("budget must be :paper, :cpu or :smoke, got $(repr(budget))"))
    name_strings = String[]
    name_ptrs = Ptr{UInt8}[]
    if names !== nothing
        length(names) == length(sets) ||
            throw(invalid("names has $(length(names)) entries for $(length(sets)) sets"))
        for n in names
            # `nothing` or "" keeps the default name `set<i>`.
            s = n === nothing ? "" : String(n)
            Base.containsnul(s) && throw(invalid("set name $(repr(s)) contains a NUL byte"))
            push!(name_strings, s)
        end
        # Pointers into the strings kept in `names`, valid while the object is alive.
        name_ptrs = Ptr{UInt8}[isempty(s) ? Ptr{UInt8}(C_NULL) : pointer(s) for s in name_strings]
    end
    opts = (options === nothing || isempty(options)) ? nothing : String(options)
    dir = (out_dir === nothing || isempty(out_dir)) ? nothing : String(out_dir)
    return AnalysisArgs(sets, Ptr{Cvoid}[s.ptr for s in sets], name_strings, name_ptrs, b, opts,
                        UInt64(seed), dir, ProgressState(progress, nothing))
end

# `ccall` arguments that may be NULL.
handles_arg(a::AnalysisArgs) = isempty(a.handles) ? Ptr{Ptr{Cvoid}}(C_NULL) : pointer(a.handles)
names_arg(a::AnalysisArgs) = isempty(a.name_ptrs) ? Ptr{Ptr{UInt8}}(C_NULL) : pointer(a.name_ptrs)
string_arg(s) = s === nothing ? C_NULL : s

# Checks the status (rethrowing an exception of the progress callback) and takes the result.
function analysis_result(a::AnalysisArgs, status::UInt32, json::Ref{Ptr{UInt8}})
    out = take_string(json[])
    finish(a.state, status)
    return out
end

"""
    analysis_names() -> Vector{String}

The analyses [`analyze`](@ref) knows, in the paper's order (`ddl_analysis_names`).
"""
function analysis_names()
    json = Ref{Ptr{UInt8}}(C_NULL)
    check(ccall((:ddl_analysis_names, libddlens), UInt32, (Ptr{Ptr{UInt8}},), json))
    text = take_string(json[])
    return [m.captures[1] for m in eachmatch(r"\"name\":\"([^\"]+)\"", text)]
end

"""
    analyze(name, bundle, train_set, test_set, sets; names=nothing, budget=:cpu,
            options=nothing, seed=0, out_dir=nothing, progress=nothing) -> json

Runs the analysis `name` (one of [`analysis_names`](@ref), e.g. `"mixing"`) through
`ddl_analyze`. The `analyze_<name>` functions are shorthands for it. The arguments:

* `train_set`, `test_set`: the real data ([`Dataset`](@ref)s, normalised); `sets`: a vector
  of [`DistilledSet`](@ref)s, studied in that order;
* `names`: `nothing` or one name per set (`nothing` or `""` for the default `set<i>`);
* `budget`: `:paper` (the paper's protocol), `:cpu` (minutes on 2 cores) or `:smoke`
  (seconds), or a `DDL_BUDGET_*` value;
* `options`: `nothing` or a JSON object string overriding settings (docs/analyses.md lists
  them; an unknown field is a `DDLensError` naming it);
* `seed` seeds every random draw; `out_dir` (`nothing` for none) receives `<name>.json` and
  the PNG figures as `ddlens analyze <name>` writes them;
* `progress(step, total)`: returning `false` cancels (`DDL_STATUS_CANCELLED`).

Returns the result as a JSON string. Its `"verdict"` says what it means for the paper's
claim: `"state"` (`"supports"`, `"contradicts"` or `"inconclusive"`), `"claim"`, `"effect"`,
`"reason"`, and per set its effect with a 95% interval (`{"estimate", "lo", "hi", "n"}`);
with a set named `random…` (a random real reference), `"against_reference"` says whether the
effect goes beyond it (docs/analyses.md, "Verdicts").
"""
function analyze(name::AbstractString, b::Bundle, train_set::Dataset, test_set::Dataset,
                 sets::AbstractVector = DistilledSet[]; kwargs...)
    a = AnalysisArgs(sets; kwargs...)
    json = Ref{Ptr{UInt8}}(C_NULL)
    status = GC.@preserve a ccall((:ddl_analyze, libddlens), UInt32,
        (Cstring, Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Ptr{Cvoid}}, Ptr{Ptr{UInt8}}, Csize_t,
         UInt32, Cstring, UInt64, Cstring, Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Ptr{UInt8}}),
        name, b, train_set, test_set, handles_arg(a), names_arg(a), length(a.handles), a.budget,
        string_arg(a.options), a.seed, string_arg(a.out_dir), progress_pointer(a.state),
        pointer_from_objref(a.state), json)
    return analysis_result(a, status, json)
end

"""
    analyze_pixels(bundle, train_set, test_set, sets; names=nothing, budget=:cpu, options=nothing,
                   seed=0, out_dir=nothing, progress=nothing) -> json

Pixel-value distributions of the real training images and of each distilled set (paper §3). Arguments as [`analyze`](@ref).
"""
analyze_pixels(b::Bundle, train_set::Dataset, test_set::Dataset, sets::AbstractVector = DistilledSet[];
    kwargs...) = analyze("pixels", b, train_set, test_set, sets; kwargs...)

"""
    analyze_mixing(bundle, train_set, test_set, sets; kwargs...) -> json

Each set plus `k` real images per class, trained with P_dist, beside a random real set of the
same per-class size plus the same extras (paper §3). Arguments as [`analyze`](@ref).
"""
analyze_mixing(b::Bundle, train_set::Dataset, test_set::Dataset, sets::AbstractVector = DistilledSet[];
    kwargs...) = analyze("mixing", b, train_set, test_set, sets; kwargs...)

"""
    analyze_sensitivity(bundle, train_set, test_set, sets; kwargs...) -> json

Each set and a random real baseline under the standard evaluation and variations of it
(epochs, lr, batch size, optimiser, architecture) (paper §3). Arguments as
[`analyze`](@ref).
"""
analyze_sensitivity(b::Bundle, train_set::Dataset, test_set::Dataset, sets::AbstractVector = DistilledSet[];
    kwargs...) = analyze("sensitivity", b, train_set, test_set, sets; kwargs...)

"""
    analyze_recognition(bundle, train_set, test_set, sets; kwargs...) -> json

The fraction of each set's images that models trained on real data classify as their label,
per model and class (paper §3). Arguments as [`analyze`](@ref).
"""
analyze_recognition(b::Bundle, train_set::Dataset, test_set::Dataset, sets::AbstractVector = DistilledSet[];
    kwargs...) = analyze("recognition", b, train_set, test_set, sets; kwargs...)

"""
    analyze_agreement(bundle, train_set, test_set, sets; kwargs...) -> json

Test-prediction agreement of models trained on each set with accuracy-matched real-trained
models (pools A and B, trained in this call) (paper §4). Arguments as [`analyze`](@ref).
"""
analyze_agreement(b::Bundle, train_set::Dataset, test_set::Dataset, sets::AbstractVector = DistilledSet[];
    kwargs...) = analyze("agreement", b, train_set, test_set, sets; kwargs...)

"""
    analyze_recognition_over_training(bundle, train_set, test_set, sets; kwargs...) -> json

One P_real run; along it, accuracy and loss on each set and on the test sample (paper §4).
Arguments as [`analyze`](@ref).
"""
analyze_recognition_over_training(b::Bundle, train_set::Dataset, test_set::Dataset, sets::AbstractVector = DistilledSet[];
    kwargs...) = analyze("recognition-over-training", b, train_set, test_set, sets; kwargs...)

"""
    analyze_curvature(bundle, train_set, test_set, sets; kwargs...) -> json

Hessian traces (Hutchinson), top eigenvalues (Lanczos) and eigenvalue densities (SLQ) along one
P_real run, on a real sample and on each set (paper §4.3). Arguments as
[`analyze`](@ref).
"""
analyze_curvature(b::Bundle, train_set::Dataset, test_set::Dataset, sets::AbstractVector = DistilledSet[];
    kwargs...) = analyze("curvature", b, train_set, test_set, sets; kwargs...)

"""
    analyze_influence(bundle, train_set, test_set, sets; kwargs...) -> json

Per distilled image, leave-one-out retraining against influence functions, the most influenced
test images and a semantic consistency score (paper §5). Arguments as [`analyze`](@ref).
"""
analyze_influence(b::Bundle, train_set::Dataset, test_set::Dataset, sets::AbstractVector = DistilledSet[];
    kwargs...) = analyze("influence", b, train_set, test_set, sets; kwargs...)
