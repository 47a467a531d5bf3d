// A training framework handing its own tensors to ddlens by pointer.
//
// The "framework" below owns everything: its parameter buffer, its data (raw bytes), its
// optimiser and its training loop. ddlens only evaluates the exported model's graphs: each
// step the framework passes pointers to its batch and parameters, and ddlens writes the loss
// and the gradient straight into the framework's gradient buffer. At the end ddlens evaluates
// the framework's parameters and trains the same model itself for comparison.
//
//   c++ -std=c++20 -I include -I bindings/cpp examples/cpp/framework_tensors.cpp -L target/release -lddlens -Wl,-rpath,$PWD/target/release -o framework_tensors
//   ./framework_tensors [BUNDLE]      (default models/tiny-1x8x8: 1x8x8 inputs, 3 classes)
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "ddlens.hpp"

namespace framework {

// The framework's tensor: contiguous row-major storage plus a shape.
template <typename T>
struct Tensor {
  std::vector<T> data;
  std::vector<size_t> shape;
};

// Synthetic images of `classes` classes: class c brightens one horizontal band.
void make_data(size_t n, size_t c, size_t h, size_t w, size_t classes, uint32_t seed,
               Tensor<uint8_t>& images, Tensor<int64_t>& labels) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0.0f, 60.0f);
  images = {std::vector<uint8_t>(n * c * h * w), {n, c, h, w}};
  labels = {std::vector<int64_t>(n), {n}};
  size_t band = h / classes;
  for (size_t i = 0; i < n; i++) {
    size_t cls = i % classes;
    labels.data[i] = static_cast<int64_t>(cls);
    for (size_t p = 0; p < c * h * w; p++) {
      size_t row = (p / w) % h;
      float v = 60.0f + noise(rng) + (row / band == cls ? 30.0f : 0.0f);
      images.data[i * c * h * w + p] = static_cast<uint8_t>(std::fmin(255.0f, std::fmax(0.0f, v)));
    }
  }
}

// Plain SGD with momentum, the framework's own optimiser.
struct Sgd {
  float lr, momentum;
  std::vector<float> velocity;
  void step(std::vector<float>& params, const std::vector<float>& grad) {
    velocity.resize(params.size(), 0.0f);
    for (size_t i = 0; i < params.size(); i++) {
      velocity[i] = momentum * velocity[i] + grad[i];
      params[i] -= lr * velocity[i];
    }
  }
};

}  // namespace framework

int main(int argc, char** argv) try {
  std::string model = argc > 1 ? argv[1] : "tiny-1x8x8";
  ddlens::init_runtime("", DDL_PROVIDER_CPU, 1);
  auto bundle = ddlens::Bundle::open(model);
  auto [c, h, w] = bundle.input_shape();
  size_t classes = bundle.num_classes();

  // The framework's data, as bytes. ddlens normalises them with the model's own constants
  // while copying them in; the framework's buffers are only read during the call.
  framework::Tensor<uint8_t> train_x, test_x;
  framework::Tensor<int64_t> train_y, test_y;
  framework::make_data(240, c, h, w, classes, 1, train_x, train_y);
  framework::make_data(120, c, h, w, classes, 2, test_x, test_y);
  auto [mean, std] = bundle.normalization();
  ddlens::Normalization norm{mean, std};
  auto shape = [](const framework::Tensor<uint8_t>& t) {
    return std::array<size_t, 4>{t.shape[0], t.shape[1], t.shape[2], t.shape[3]};
  };
  auto train = ddlens::Dataset::from_memory(std::span<const uint8_t>(train_x.data),
                                            shape(train_x), train_y.data, classes, norm, "train");
  auto test = ddlens::Dataset::from_memory(std::span<const uint8_t>(test_x.data), shape(test_x),
                                           test_y.data, classes, norm, "test");

  // The framework's parameters: one flat buffer in the bundle's parameter order, initialised
  // by ddlens once, then owned and updated by the framework.
  std::vector<float> params = ddlens::Params::init(bundle, 0).to_vector();
  std::vector<float> grad(params.size());
  framework::Sgd sgd{0.05f, 0.9f, {}};

  // The framework's loop over normalised minibatches (ddlens hands the normalised images back).
  std::vector<float> xs = train.images();
  std::vector<int64_t> ys = train.labels();
  const size_t batch = 32, example = c * h * w;
  auto view = ddlens::Params::from_flat(bundle, params);  // reused: set_flat copies in place
  for (int epoch = 0; epoch < 5; epoch++) {
    double epoch_loss = 0;
    size_t steps = 0;
    for (size_t start = 0; start + batch <= ys.size(); start += batch, steps++) {
      view.set_flat(params);  // hand the framework's current parameters to ddlens
      std::span<const float> x(xs.data() + start * example, batch * example);
      std::span<const int64_t> y(ys.data() + start, batch);
      float loss = 0;
      // ddlens writes the gradient straight into the framework's buffer.
      DdlStatus s = ddl_bundle_grad(bundle.get(), view.get(), x.data(), y.data(), nullptr, batch,
                                    &loss, grad.data(), grad.size());
      if (s != DDL_STATUS_OK) throw ddlens::Error(s, ddl_last_error());
      sgd.step(params, grad);
      epoch_loss += loss;
    }
    std::printf("framework epoch %d: mean loss %.4f\n", epoch + 1, epoch_loss / steps);
  }

  view.set_flat(params);
  auto ours = ddlens::evaluate(bundle, view, test);
  std::printf("framework-trained parameters: test accuracy %.4f\n", ours.accuracy);

  // For comparison: the same model trained by ddlens's own loop.
  auto config = ddlens::TrainConfig::p_real(5, 0);
  config.batch_size(batch).lr(0.05f);
  auto theirs = ddlens::train(bundle, ddlens::Params::init(bundle, 0), train, config);
  auto e = ddlens::evaluate(bundle, theirs.params, test);
  std::printf("ddlens-trained parameters:    test accuracy %.4f\n", e.accuracy);

  // Back into the framework: copy ddlens's result into a framework tensor.
  std::vector<float> imported(bundle.num_parameters());
  theirs.params.copy_to(imported);
  std::printf("imported %zu parameters back into the framework\n", imported.size());
  return ours.accuracy > 0.6 ? 0 : 1;
} catch (const ddlens::Error& e) {
  std::fprintf(stderr, "ddlens error %s: %s\n", e.status_name(), e.what());
  return 1;
}
