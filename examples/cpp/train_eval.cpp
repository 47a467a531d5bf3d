// ddlens from C++ through the header-only wrapper: load Fashion-MNIST, train on a
// class-balanced subset with a progress bar, evaluate, keep the result as a distilled-set file.
//
//   c++ -std=c++20 -I include -I bindings/cpp examples/cpp/train_eval.cpp -L target/release -lddlens -Wl,-rpath,$PWD/target/release -o train_eval_cpp
//   ./train_eval_cpp [BUNDLE [DATA_DIR [PER_CLASS [EPOCHS [OUT_DIR]]]]]
#include <cstdio>
#include <cstdlib>
#include <string>

#include "ddlens.hpp"

int main(int argc, char** argv) try {
  std::string model = argc > 1 ? argv[1] : "mlp-1x28x28";
  std::string data_dir = argc > 2 ? argv[2] : "";
  size_t per_class = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 100;
  uint64_t epochs = argc > 4 ? std::strtoull(argv[4], nullptr, 10) : 3;
  std::string out_dir = argc > 5 ? argv[5] : "";

  ddlens::init_runtime();  // search for ONNX Runtime, CUDA if it works
  std::printf("ddlens %s on %s\n", ddlens::version().c_str(), ddlens::runtime_json().c_str());

  auto bundle = ddlens::Bundle::open(model);
  auto [train_all, test_all] = ddlens::Dataset::load("fashion-mnist", data_dir);
  auto train = train_all.class_balanced(per_class, 0);
  auto test = test_all.class_balanced(100, 0);
  train_all.reset();  // the full splits are no longer needed: free them now
  test_all.reset();

  auto config = ddlens::TrainConfig::p_real(epochs, 0);
  config.batch_size(64).lr(0.05f);
  auto init = ddlens::Params::init(bundle, 0);
  std::printf("training %s on %zu images, %llu steps\n", model.c_str(), train.size(),
              static_cast<unsigned long long>(config.total_steps(train.size())));
  auto result = ddlens::train(bundle, init, train, config, [](uint64_t step, uint64_t total) {
    std::printf("\r  step %llu/%llu", static_cast<unsigned long long>(step),
                static_cast<unsigned long long>(total));
    if (step == total) std::printf("\n");
    std::fflush(stdout);
    return true;  // false would cancel
  });

  auto eval = ddlens::evaluate(bundle, result.params, test);
  std::printf("test accuracy on %zu images: %.4f, loss %.4f\n", test.size(), eval.accuracy,
              eval.loss);

  if (!out_dir.empty()) {
    // The training subset as a "random" distilled set, and the trained parameters.
    auto set = ddlens::DistilledSet::create(
        train, std::nullopt,
        "{\"method\": \"random\", \"dataset\": \"fashion-mnist\", \"model\": \"" + model + "\"}");
    set.write(out_dir + "/subset.safetensors");
    result.params.save(bundle, out_dir + "/params.safetensors");
    std::printf("wrote %s/subset.safetensors and %s/params.safetensors\n", out_dir.c_str(),
                out_dir.c_str());
  }
  return 0;
} catch (const ddlens::Error& e) {
  std::fprintf(stderr, "ddlens error %s: %s\n", e.status_name(), e.what());
  return 1;
}
