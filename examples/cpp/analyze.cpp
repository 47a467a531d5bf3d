// The paper's analyses from C++: pixel-value distributions and loss curvature of a distilled
// set against the real data it stands for, written as `ddlens analyze` writes them
// (`<name>.json` and PNG figures) and returned as JSON.
//
//   c++ -std=c++20 -I include -I bindings/cpp examples/cpp/analyze.cpp -L target/release -lddlens -Wl,-rpath,$PWD/target/release -o analyze
//   ./analyze [BUNDLE [OUT_DIR [SET_FILE...]]]    (default tiny-1x8x8, ddlens-out/analysis-cpp)
//
// Without SET_FILEs the set studied is a random class-balanced real subset with two images per
// class, written to OUT_DIR/random-ipc2.safetensors (pass that file to analyse it again).
// The smoke budget runs in seconds and is for trying things out; use Budget::cpu or
// Budget::paper for conclusions.
#include <cstdio>
#include <filesystem>
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

int main(int argc, char** argv) try {
  std::string model = argc > 1 ? argv[1] : "tiny-1x8x8";
  std::string out_dir = argc > 2 ? argv[2] : "ddlens-out/analysis-cpp";

  ddlens::init_runtime("", DDL_PROVIDER_CPU, 1);
  auto bundle = ddlens::Bundle::open(model);
  auto train_set = make_data(bundle, 300, 1);
  auto test_set = make_data(bundle, 150, 2);

  // The sets to study: the files given, or a random real subset made here.
  std::vector<ddlens::DistilledSet> sets;
  std::vector<std::string> names;
  for (int i = 3; i < argc; i++) {
    sets.push_back(ddlens::DistilledSet::read(argv[i]));
    names.push_back(std::filesystem::path(argv[i]).stem().string());  // as `ddlens analyze`
  }
  if (sets.empty()) {
    sets.push_back(ddlens::DistilledSet::create(train_set.class_balanced(2, 0)));
    names.push_back("random-ipc2");
    std::filesystem::create_directories(out_dir);
    std::string path = out_dir + "/random-ipc2.safetensors";
    sets.back().write(path);
    std::printf("wrote %s\n", path.c_str());
  }

  // Pixel values: settings are a JSON object of overrides (docs/analyses.md lists them).
  std::string pixels = ddlens::analyze_pixels(bundle, train_set, test_set, sets, names,
                                              ddlens::Budget::smoke, R"({"bins": 40})", 0,
                                              out_dir);
  std::printf("pixels: %s\n", pixels.c_str());

  // Any analysis by name (ddlens::analysis_names() lists them): curvature along one P_real
  // run, with a progress callback (returning false would cancel).
  std::printf("analyses: %s\n", ddlens::analysis_names().c_str());
  std::string curvature = ddlens::analyze(
      "curvature", bundle, train_set, test_set, sets, names, ddlens::Budget::smoke, "", 0, out_dir,
      [](uint64_t step, uint64_t total) {
        std::fprintf(stderr, "\r  curvature %llu/%llu", static_cast<unsigned long long>(step),
                     static_cast<unsigned long long>(total));
        if (step == total) std::fprintf(stderr, "\n");
        return true;
      });
  std::printf("curvature: %s\n", curvature.c_str());

  std::printf("wrote %s/pixels.json, %s/curvature.json and their figures\n", out_dir.c_str(),
              out_dir.c_str());
  return 0;
} catch (const ddlens::Error& e) {
  std::fprintf(stderr, "ddlens error %s: %s\n", e.status_name(), e.what());
  return 1;
}
