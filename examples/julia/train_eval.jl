# ddlens from Julia: load Fashion-MNIST, train on a class-balanced subset, evaluate, then run
# the forward graph on a batch of Julia-owned images (column-major, (W, H, C, N)).
#
#   cargo build --release
#   julia --project=bindings/julia examples/julia/train_eval.jl [BUNDLE] [DATA_DIR]
#
# (or `DDLENS_LIB=/path/to/libddlens.so julia ...` for a library elsewhere)
using DDLens

model = length(ARGS) >= 1 ? ARGS[1] : "mlp-1x28x28"
data_dir = length(ARGS) >= 2 ? ARGS[2] : nothing

init_runtime(provider = :auto)
println("ddlens ", DDLens.version(), ": ", runtime_info())

bundle = Bundle(model)
println(describe(bundle))

train_all, test_all = load_dataset("fashion-mnist"; dir = data_dir)
train_set = class_balanced(train_all, 100; seed = 0)
test_set = class_balanced(test_all, 100; seed = 0)
close(train_all)  # free the full splits now rather than at the next garbage collection
close(test_all)

config = p_real_config(3; seed = 0)
configure!(config; batch_size = 64, lr = 0.05)
init = init_params(bundle, 0)
params, report = train(bundle, init, train_set, config;
                       progress = (step, total) -> (step % 10 == 0 && println("  step $step/$total"); true))
result = evaluate(bundle, params, test_set)
println("test accuracy $(result.accuracy), loss $(result.loss)")

# Julia arrays cross the boundary as they are: images are (W, H, C, N), logits come back
# (K, N). Take 8 test images and check the predictions against evaluate's accuracy.
x = images(test_set)[:, :, :, 1:8]
y = labels(test_set)[1:8]
logits, features = forward(bundle, params, x)
predicted = [argmax(logits[:, i]) - 1 for i in 1:size(logits, 2)]  # class ids are 0-based
println("labels    ", y)
println("predicted ", predicted)
println("features per image: ", size(features, 1))

# A per-tensor view: a weight matrix with its manifest shape reversed.
c_shape = tensor_shape(params, "fc0.weight")
println("fc0.weight: C shape $c_shape, Julia size $(size(tensor(params, "fc0.weight")))")
