# Dataset distillation from Julia: generate MTT expert trajectories on Fashion-MNIST, distil one
# image per class by trajectory matching, and evaluate the set beside a random real subset.
#
#   cargo build --release
#   julia --project=bindings/julia examples/julia/distill.jl [BUNDLE] [OUT_DIR]
#
# (a short run for illustration: the reference settings use 100 experts of 50 epochs and 5000
# iterations; see docs/c-api.md)
using DDLens

model = length(ARGS) >= 1 ? ARGS[1] : "convnet3-1x28x28"
out_dir = length(ARGS) >= 2 ? ARGS[2] : mktempdir()

init_runtime(provider = :auto)
bundle = Bundle(model)
train_all, test_all = load_dataset("fashion-mnist")
real = class_balanced(train_all, 500; seed = 0)
test_set = class_balanced(test_all, 100; seed = 0)

experts = joinpath(out_dir, "experts")
index = generate_experts(bundle, real, experts; num_experts = 2, epochs = 4, batch = 256,
                         progress = (step, total) -> (println("  expert epoch $step/$total"); true))
println("experts: ", index)

config = DistillConfig(:mtt, 1; experts = experts, iterations = 50, max_start_epoch = 2,
                       checkpoint = joinpath(out_dir, "mtt-ipc1.ckpt"), checkpoint_every = 10)
println("distilling with ", describe(config))
set, report = distill(bundle, real, config;
                      progress = (step, total) -> (step % 10 == 0 && println("  iteration $step/$total"); true))
write_distilled(set, joinpath(out_dir, "mtt-ipc1.safetensors"))
println("learned lr ", learned_lr(set))

random_set, _ = distill(bundle, real, DistillConfig(:random, 1))
for (name, s) in (("mtt", set), ("random", random_set))
    lr = something(learned_lr(s), 0.01)
    summary = standard_evaluation(bundle, dataset(s), test_set; runs = 2, epochs = 300, lr = lr)
    println(name, " ipc 1: ", summary)
end
