# Tests of the Julia bindings (run where Julia is installed, after `cargo build`):
#   DDLENS_MODELS=models julia --project=bindings/julia -e 'using Pkg; Pkg.test()'
# Without Julia, tests/ffi_bindings.rs still parses this file and checks every ccall.
using DDLens
using Test

const MODELS = get(ENV, "DDLENS_TEST_MODELS", normpath(joinpath(@__DIR__, "..", "..", "..", "models")))
const TINY = joinpath(MODELS, "tiny-1x8x8")

# The synthetic 3-class problem of the other tests, as a (W, H, C, N) Julia array: class c
# lights rows 2c and 2c+1 (the H axis is the second Julia dimension).
function synthetic(n; seed = 1)
    state = UInt32(seed) * 0x9e3779b1 + 0x00000001
    x = zeros(Float32, 8, 8, 1, n)
    y = [Int64((i - 1) % 3) for i in 1:n]
    for i in 1:n, h in 1:8, w in 1:8
        state = state * 0x0019660d + 0x3c6ef35f
        x[w, h, 1, i] = (Float32(state >> 8) / 16777216.0f0 - 0.5f0) * 0.6f0 +
                        ((h - 1) ÷ 2 == y[i] ? 2.0f0 : 0.0f0)
    end
    return x, y
end

@testset "before set-up" begin
    @test !runtime_initialized()
    err = try
        Bundle(TINY)
        nothing
    catch e
        e
    end
    @test err isa DDLensError
    @test err.status == DDLens.DDL_STATUS_RUNTIME_NOT_INITIALIZED
    @test occursin("ddl_runtime_init", err.message)
end

init_runtime(provider = :cpu, threads = 1)

@testset "errors carry status and message" begin
    e = try; init_runtime(provider = :cpu, threads = 2); catch e; e; end
    @test e isa DDLensError && e.name == "DDL_STATUS_RUNTIME_CONFIG"
    e = try; Bundle(joinpath(MODELS, "no-such-bundle")); catch e; e; end
    @test e isa DDLensError && e.status == DDLens.DDL_STATUS_NOT_FOUND
    @test occursin("no-such-bundle", DDLens.last_error_copy())
    e = try; read_distilled("/nonexistent.safetensors"); catch e; e; end
    @test e.status == DDLens.DDL_STATUS_NOT_FOUND
    e = try; configure!(p_real_config(1); momentum = 1.5); catch e; e; end
    @test e.status == DDLens.DDL_STATUS_INVALID_ARGUMENT && occursin("momentum", e.message)
end

@testset "column-major images cross without permutation" begin
    x = reshape(Float32.(1:(8 * 8 * 1 * 5)), 8, 8, 1, 5)  # (W, H, C, N)
    d = Dataset(x, [0, 1, 2, 0, 1], 3)
    @test length(d) == 5 && input_shape(d) == (1, 8, 8)
    @test images(d) == x
    @test labels(d) == [0, 1, 2, 0, 1]
    sub = select(d, [5, 1])  # 1-based
    @test images(sub) == x[:, :, :, [5, 1]]
    bytes = rand(UInt8, 8, 8, 1, 2)
    db = Dataset(bytes, [0, 1], 3; mean = [0.5], std = [0.25])
    @test images(db) ≈ (Float32.(bytes) ./ 255 .- 0.5f0) ./ 0.25f0
    @test_throws DDLensError Dataset(x, [0, 1], 3)  # 5 images, 2 labels
end

@testset "handles close once" begin
    b = Bundle(TINY)
    p = init_params(b, 0)
    close(p)
    close(p)  # a second close frees nothing
    e = try; length(p); catch e; e; end
    @test e.status == DDLens.DDL_STATUS_NULL_ARGUMENT
    close(b)
end

@testset "train, evaluate, forward, files" begin
    b = Bundle(TINY)
    x, y = synthetic(60)
    xt, yt = synthetic(30; seed = 2)
    train_set, test_set = Dataset(x, y, 3), Dataset(xt, yt, 3)
    cfg = configure!(p_real_config(10; seed = 3); batch_size = 16, lr = 0.05)
    calls = Ref(0)
    params, report = train(b, init_params(b, 0), train_set, cfg; progress = (s, t) -> (calls[] += 1; true))
    @test calls[] == 41 && occursin("\"steps\":40", report)
    r = evaluate(b, params, test_set)
    @test r.accuracy > 0.9
    logits, features = forward(b, params, xt)
    @test size(logits) == (3, 30) && size(features, 2) == 30
    @test count(i -> argmax(logits[:, i]) - 1 == yt[i], 1:30) / 30 ≈ r.accuracy
    loss, g = grad(b, params, xt, yt)
    @test isapprox(loss, r.loss; atol = 1e-4) && length(g) == num_parameters(b)
    e = try; train(b, params, train_set, cfg; progress = (s, t) -> s < 2); catch e; e; end
    @test e.status == DDLens.DDL_STATUS_CANCELLED
    @test_throws ErrorException train(b, params, train_set, cfg; progress = (s, t) -> error("boom"))
    # Tensors are their manifest shape reversed; the flat vector starts with the first one.
    w = tensor(params, "conv0.weight")
    @test size(w) == reverse(tensor_shape(params, "conv0.weight"))
    @test vec(w) == flat(params)[1:length(w)]
    set_tensor!(params, "conv0.weight", 2 .* w)
    @test tensor(params, "conv0.weight") == 2 .* w
    set_tensor!(params, "conv0.weight", w)
    dir = mktempdir()
    save_params(b, params, joinpath(dir, "p.safetensors"))
    @test flat(load_params(b, joinpath(dir, "p.safetensors"))) == flat(params)
    s = DistilledSet(class_balanced(train_set, 2); lr = 0.02, meta = "{\"method\": \"random\"}")
    write_distilled(s, joinpath(dir, "s.safetensors"))
    back = read_distilled(joinpath(dir, "s.safetensors"))
    @test learned_lr(back) == 0.02f0 && length(dataset(back)) == 6
    @test occursin("\"accuracies\"", standard_evaluation(b, dataset(back), test_set; runs = 2, epochs = 2))
end
