# The paper's analyses from Julia: pixel-value distributions and loss curvature of a distilled
# set against the real data it stands for, written as `ddlens analyze` writes them
# (`<name>.json` and PNG figures) and returned as JSON. Mirrors examples/cpp/analyze.cpp.
#
#   cargo build --release
#   julia --project=bindings/julia examples/julia/analyze.jl [BUNDLE [OUT_DIR [SET_FILE...]]]
#
# (default tiny-1x8x8, ddlens-out/analysis-jl). Without SET_FILEs the set studied is a random
# class-balanced real subset with two images per class, written to
# OUT_DIR/random-ipc2.safetensors. The smoke budget runs in seconds and is for trying things
# out; use `budget = :cpu` or `:paper` for conclusions.
using DDLens
using Random

model = length(ARGS) >= 1 ? ARGS[1] : "tiny-1x8x8"
out_dir = length(ARGS) >= 2 ? ARGS[2] : "ddlens-out/analysis-jl"
set_files = length(ARGS) >= 3 ? ARGS[3:end] : String[]

# A learnable toy problem in normalised space: class c lights up one horizontal band of the
# image on a noisy background. Images are (W, H, C, N), the column-major view of N x C x H x W.
function make_data(bundle, n, seed)
    c, h, w = input_shape(bundle)
    k = num_classes(bundle)
    rng = MersenneTwister(seed)
    band = max(h ÷ k, 1)
    x = 0.3f0 .* randn(rng, Float32, w, h, c, n)
    y = [(i - 1) % k for i in 1:n]
    for i in 1:n, row in 1:h
        (row - 1) ÷ band == y[i] && (x[:, row, :, i] .+= 2.0f0)
    end
    return Dataset(x, y, k; name = "bands")
end

init_runtime(provider = :cpu, threads = 1)
bundle = Bundle(model)
train_set = make_data(bundle, 300, 1)
test_set = make_data(bundle, 150, 2)

# The sets to study: the files given, or a random real subset made here.
sets = [read_distilled(f) for f in set_files]
names = [first(splitext(basename(f))) for f in set_files]  # as `ddlens analyze`
if isempty(sets)
    push!(sets, DistilledSet(class_balanced(train_set, 2; seed = 0)))
    push!(names, "random-ipc2")
    mkpath(out_dir)
    path = joinpath(out_dir, "random-ipc2.safetensors")
    write_distilled(sets[end], path)
    println("wrote ", path)
end

# Pixel values: settings are a JSON object of overrides (docs/analyses.md lists them).
pixels = analyze_pixels(bundle, train_set, test_set, sets; names = names, budget = :smoke,
                        options = """{"bins": 40}""", out_dir = out_dir)
println("pixels: ", pixels)

# Any analysis by name (analysis_names() lists them): curvature along one P_real run, with a
# progress callback (returning false would cancel).
println("analyses: ", join(analysis_names(), ", "))
curvature = analyze("curvature", bundle, train_set, test_set, sets; names = names, budget = :smoke,
                    out_dir = out_dir,
                              progress = (step, total) -> (println(stderr, "  curvature $step/$total"); true))
println("curvature: ", curvature)

println("wrote ", joinpath(out_dir, "pixels.json"), ", ", joinpath(out_dir, "curvature.json"),
        " and their figures")
