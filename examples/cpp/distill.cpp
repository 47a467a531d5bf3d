// Dataset distillation from C++: distil one image per class with DM (distribution matching) from
// a small in-memory dataset, then train a fresh model on the distilled images and on the same
// number of random real images, and compare their test accuracy. Optionally writes the
// distilled set and resumes from a checkpoint.
//
//   c++ -std=c++20 -I include -I bindings/cpp examples/cpp/distill.cpp -L target/release -lddlens -Wl,-rpath,$PWD/target/release -o distill
//   ./distill [BUNDLE [ITERATIONS [OUT_DIR]]]      (default tiny-1x8x8, 20 iterations)
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "ddlens.hpp"

// A learnable toy problem in normalised space: class c lights up one horizontal band of the
// image on a noisy background.
ddlens::Dataset make_data(const ddlens::Bundle& bundle, size_t n, uint32_t seed) {
  auto [c, h, w] = bundle.input_shape();
  size_t classes = bundle.num_classes();
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0.0f, 0.3f);
  std::vector<float> x(n * c * h * w);
  std::vector<int64_t> y(n);
  size_t band = h / classes > 0 ? h / classes : 1;
  for (size_t i = 0; i < n; i++) {
    size_t cls = i % classes;
    y[i] = static_cast<int64_t>(cls);
    for (size_t p = 0; p < c * h * w; p++) {
      size_t row = (p / w) % h;
      x[i * c * h * w + p] = noise(rng) + (row / band == cls ? 2.0f : 0.0f);
    }
  }
  return ddlens::Dataset::from_memory(x, {n, c, h, w}, y, classes, std::nullopt, "bands");
}

// Test accuracy of a fresh model trained full-batch (P_dist, 300 steps) on `train_set`.
double accuracy_after_training(const ddlens::Bundle& bundle, const ddlens::Dataset& train_set,
                               const ddlens::Dataset& test_set) {
  auto config = ddlens::TrainConfig::p_dist(300, 0);
  auto trained = ddlens::train(bundle, ddlens::Params::init(bundle, 0), train_set, config);
  return ddlens::evaluate(bundle, trained.params, test_set).accuracy;
}

int main(int argc, char** argv) try {
  std::string model = argc > 1 ? argv[1] : "tiny-1x8x8";
  uint64_t iterations = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 20;
  std::string out_dir = argc > 3 ? argv[3] : "";

  ddlens::init_runtime("", DDL_PROVIDER_CPU, 1);
  auto bundle = ddlens::Bundle::open(model);
  auto real = make_data(bundle, 300, 1);
  auto test = make_data(bundle, 150, 2);

  // DM with one image per class; every other setting keeps `ddlens distill`'s default
  // (image lr 1, momentum 0.5, DSA augmentation).
  auto config = ddlens::DistillConfig::create("dm", 1);
  config.iterations(iterations).batch_real(64).seed(0);
  std::printf("distilling with %s\n", config.describe().c_str());
  auto result = ddlens::distill(bundle, real, config, [](uint64_t step, uint64_t total) {
    std::printf("\r  iteration %llu/%llu", static_cast<unsigned long long>(step),
                static_cast<unsigned long long>(total));
    if (step == total) std::printf("\n");
    std::fflush(stdout);
    return true;  // false would cancel
  });
  std::printf("report: %s\n", result.report_json.c_str());

  // The random baseline: the same number of real images, drawn with the same seed (they are
  // also DM's starting point).
  auto random = ddlens::distill(bundle, real, ddlens::DistillConfig::create("random", 1));

  auto distilled_set = result.set.data();
  double dm_acc = accuracy_after_training(bundle, distilled_set, test);
  double random_acc = accuracy_after_training(bundle, random.set.data(), test);
  std::printf("dm ipc 1 (%zu images): test accuracy %.4f\n", distilled_set.size(), dm_acc);
  std::printf("random ipc 1: test accuracy %.4f\n", random_acc);

  if (!out_dir.empty()) {
    std::string path = out_dir + "/dm-ipc1.safetensors";
    result.set.write(path);
    std::printf("wrote %s\n", path.c_str());
    // A run with a checkpoint, stopped half-way by the progress callback, then resumed: the
    // result is the same as the uninterrupted run above (bit for bit on the CPU).
    std::string ckpt = out_dir + "/dm-ipc1.ckpt";
    config.checkpoint(ckpt, 1);
    try {
      ddlens::distill(bundle, real, config,
                      [&](uint64_t step, uint64_t) { return step < iterations / 2; });
    } catch (const ddlens::Error& e) {
      if (e.status() != DDL_STATUS_CANCELLED) throw;
      std::printf("stopped half-way (%s)\n", e.status_name());
    }
    auto resumed = ddlens::distill(bundle, real, config.resume());
    bool same = resumed.set.data().images() == distilled_set.images();
    std::printf("resumed from %s: %s the uninterrupted run\n", ckpt.c_str(),
                same ? "identical to" : "DIFFERENT from");
    if (!same) return 1;
  }
  return 0;
} catch (const ddlens::Error& e) {
  std::fprintf(stderr, "ddlens error %s: %s\n", e.status_name(), e.what());
  return 1;
}
