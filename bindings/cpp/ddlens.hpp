// ddlens C++ bindings: a header-only RAII wrapper over the C API (include/ddlens.h).
//
//   #include "ddlens.hpp"      // compile with -std=c++20 -I include -I bindings/cpp, link -lddlens
//
// * Handles (Bundle, Params, Dataset, DistilledSet, TrainConfig, DistillConfig) are move-only
//   and free their C handle in the destructor; a moved-from handle is empty and safe to
//   destroy or reset again.
// * Every failing call throws ddlens::Error, which carries the DdlStatus and the library's
//   message (ddl_last_error, copied at the point of failure).
// * Tensors go in as std::span (copied by the library during the call) and come back as
//   std::vector; images are N x C x H x W row-major, like the C API.
// * Thread-safety is the C API's: const methods may run concurrently on one object, methods
//   that modify (Params::set_*, TrainConfig and DistillConfig setters) need exclusive use.
// * The analyses (analyze("<name>", ...), or the shorthands analyze_pixels(), analyze_mixing()...)
//   take their settings as a JSON object and return their result as JSON.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <initializer_list>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ddlens.h"

namespace ddlens {

// A failed ddlens call: the status code and the library's message.
class Error : public std::runtime_error {
 public:
  Error(DdlStatus status, const std::string& message)
      : std::runtime_error(message), status_(status) {}

  // The status code (DDL_STATUS_*).
  DdlStatus status() const noexcept { return status_; }

  // The status name, e.g. "DDL_STATUS_NOT_FOUND".
  const char* status_name() const noexcept { return ddl_status_name(status_); }

 private:
  DdlStatus status_;
};

namespace detail {

// Throws the thread's last error when `status` is not DDL_STATUS_OK.
inline void check(DdlStatus status) {
  if (status != DDL_STATUS_OK) throw Error(status, ddl_last_error());
}

// Takes ownership of a library string and frees it.
inline std::string take(char* s) {
  std::string out = s != nullptr ? s : "";
  ddl_string_free(s);
  return out;
}

// A move-only owner of one C handle, released with `Free` (which accepts NULL).
template <typename T, void (*Free)(T*)>
class Handle {
 public:
  Handle() noexcept = default;
  explicit Handle(T* ptr) noexcept : ptr_(ptr) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& other) noexcept : ptr_(std::exchange(other.ptr_, nullptr)) {}
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      reset();
      ptr_ = std::exchange(other.ptr_, nullptr);
    }
    return *this;
  }
  ~Handle() { reset(); }

  // Frees the handle now; the object becomes empty (calling it again is harmless).
  void reset() noexcept { Free(std::exchange(ptr_, nullptr)); }
  // The C handle (NULL when empty), still owned by this object.
  T* get() const noexcept { return ptr_; }
  // Gives up ownership of the C handle to the caller.
  T* release() noexcept { return std::exchange(ptr_, nullptr); }
  // Whether the object holds a handle.
  explicit operator bool() const noexcept { return ptr_ != nullptr; }

 private:
  T* ptr_ = nullptr;
};

// Builds an invalid-argument error on the C++ side (sizes the wrapper can check from spans).
inline Error invalid(const std::string& message) {
  return Error(DDL_STATUS_INVALID_ARGUMENT, message);
}

// Bridges a std::function progress callback to DdlProgressFn; keeps the first exception it
// throws so it can be rethrown after the C call returns (exceptions must not cross C).
struct ProgressBridge {
  const std::function<bool(uint64_t, uint64_t)>* callback = nullptr;
  std::exception_ptr error;

  static int trampoline(void* self, uint64_t step, uint64_t total) {
    auto* bridge = static_cast<ProgressBridge*>(self);
    try {
      return (*bridge->callback)(step, total) ? 0 : 1;
    } catch (...) {
      bridge->error = std::current_exception();
      return 1;
    }
  }

  DdlProgressFn fn() const { return callback != nullptr && *callback ? &trampoline : nullptr; }

  // Rethrows the callback's exception if it had one, else checks the status.
  void finish(DdlStatus status) const {
    if (error) std::rethrow_exception(error);
    check(status);
  }
};

}  // namespace detail

// Progress callback: (step, total) -> keep going? Returning false cancels the call, which then
// throws Error with DDL_STATUS_CANCELLED; an exception thrown here is rethrown by the call.
using Progress = std::function<bool(uint64_t step, uint64_t total)>;

// The loaded library's version (compare with DDL_VERSION_STRING).
inline std::string version() { return ddl_version(); }

// Sets ONNX Runtime up for the process (see ddl_runtime_init). `library_path` empty = search.
inline void init_runtime(const std::string& library_path = "",
                         DdlProvider provider = DDL_PROVIDER_AUTO, uint32_t threads = 0) {
  detail::check(ddl_runtime_init(library_path.empty() ? nullptr : library_path.c_str(), provider,
                                 threads));
}

// Whether the runtime is set up.
inline bool runtime_initialized() noexcept { return ddl_runtime_is_initialized(); }

// The runtime description as JSON (library, version, provider in use...).
inline std::string runtime_json() {
  char* out = nullptr;
  detail::check(ddl_runtime_describe(&out));
  return detail::take(out);
}

class Params;

// Output of Bundle::forward.
struct ForwardResult {
  std::vector<float> logits;    // batch x num_classes
  std::vector<float> features;  // batch x feature_dim
};

// Output of Bundle::grad.
struct GradResult {
  float loss = 0.0f;
  std::vector<float> grad;  // flat, in parameter order
};

// A model bundle (ddl_bundle_*).
class Bundle : public detail::Handle<DdlBundle, ddl_bundle_free> {
 public:
  using Handle::Handle;

  // Opens a bundle folder or a bundle name from models/ / DDLENS_MODELS.
  static Bundle open(const std::string& path_or_name) {
    DdlBundle* out = nullptr;
    detail::check(ddl_bundle_open(path_or_name.c_str(), &out));
    return Bundle(out);
  }

  // The manifest summary as JSON (see ddl_bundle_describe).
  std::string describe() const {
    char* out = nullptr;
    detail::check(ddl_bundle_describe(get(), &out));
    return detail::take(out);
  }

  // Shape [C, H, W] of one example.
  std::array<size_t, 3> input_shape() const {
    std::array<size_t, 3> s{};
    detail::check(ddl_bundle_input_shape(get(), &s[0], &s[1], &s[2]));
    return s;
  }

  // C * H * W.
  size_t example_size() const {
    auto s = input_shape();
    return s[0] * s[1] * s[2];
  }

  size_t num_classes() const { return query(ddl_bundle_num_classes); }
  size_t feature_dim() const { return query(ddl_bundle_feature_dim); }
  size_t num_parameters() const { return query(ddl_bundle_num_parameters); }

  // Per-channel (mean, std) the model expects pixels in [0, 1] to be normalised with.
  std::pair<std::vector<float>, std::vector<float>> normalization() const {
    size_t c = input_shape()[0];
    std::vector<float> mean(c), std(c);
    detail::check(ddl_bundle_normalization(get(), mean.data(), std.data(), c));
    return {mean, std};
  }

  // Logits and features of a batch: x holds batch x C x H x W floats (normalised).
  ForwardResult forward(const Params& params, std::span<const float> x) const;

  // Weighted mean cross-entropy and its flat gradient; `w` empty = all-ones weights.
  GradResult grad(const Params& params, std::span<const float> x, std::span<const int64_t> y,
                  std::span<const float> w = {}) const;

  // The batch size of `x`, checked to be a positive multiple of the example size.
  size_t batch_of(std::span<const float> x) const {
    size_t n = example_size();
    if (x.empty() || x.size() % n != 0)
      throw detail::invalid("x holds " + std::to_string(x.size()) +
                            " floats, not a positive multiple of C*H*W = " + std::to_string(n));
    return x.size() / n;
  }

 private:
  size_t query(DdlStatus (*fn)(const DdlBundle*, size_t*)) const {
    size_t v = 0;
    detail::check(fn(get(), &v));
    return v;
  }
};

// Model parameters (ddl_params_*).
class Params : public detail::Handle<DdlParams, ddl_params_free> {
 public:
  using Handle::Handle;

  // A fresh initialisation drawn from `seed`.
  static Params init(const Bundle& bundle, uint64_t seed) {
    DdlParams* out = nullptr;
    detail::check(ddl_params_init(bundle.get(), seed, &out));
    return Params(out);
  }

  // Parameters copied from a flat vector of exactly bundle.num_parameters() floats.
  static Params from_flat(const Bundle& bundle, std::span<const float> values) {
    DdlParams* out = nullptr;
    detail::check(ddl_params_from_flat(bundle.get(), values.data(), values.size(), &out));
    return Params(out);
  }

  // Reads a safetensors parameter file.
  static Params load(const Bundle& bundle, const std::string& path) {
    DdlParams* out = nullptr;
    detail::check(ddl_params_load(bundle.get(), path.c_str(), &out));
    return Params(out);
  }

  // Writes a safetensors parameter file (atomically).
  void save(const Bundle& bundle, const std::string& path) const {
    detail::check(ddl_params_save(bundle.get(), get(), path.c_str()));
  }

  // A deep copy.
  Params clone() const {
    DdlParams* out = nullptr;
    detail::check(ddl_params_clone(get(), &out));
    return Params(out);
  }

  // Total number of scalars.
  size_t numel() const {
    size_t n = 0;
    detail::check(ddl_params_numel(get(), &n));
    return n;
  }

  // All values, flat in parameter order.
  std::vector<float> to_vector() const {
    std::vector<float> v(numel());
    detail::check(ddl_params_get_flat(get(), v.data(), v.size()));
    return v;
  }

  // Copies all values into `out` (at least numel() floats), e.g. a framework's own buffer.
  void copy_to(std::span<float> out) const {
    detail::check(ddl_params_get_flat(get(), out.data(), out.size()));
  }

  // Overwrites all values (exactly numel() floats).
  void set_flat(std::span<const float> values) {
    detail::check(ddl_params_set_flat(get(), values.data(), values.size()));
  }

  // Shape of a named tensor.
  std::vector<size_t> tensor_shape(const std::string& name) const {
    size_t ndim = 0;
    DdlStatus s = ddl_params_tensor_shape(get(), name.c_str(), nullptr, 0, &ndim);
    if (s != DDL_STATUS_OK && s != DDL_STATUS_BUFFER_TOO_SMALL) detail::check(s);
    std::vector<size_t> shape(ndim);
    detail::check(ddl_params_tensor_shape(get(), name.c_str(), shape.data(), ndim, &ndim));
    return shape;
  }

  // Values of a named tensor (row-major).
  std::vector<float> tensor(const std::string& name) const {
    size_t n = 1;
    for (size_t d : tensor_shape(name)) n *= d;
    std::vector<float> v(n);
    detail::check(ddl_params_get_tensor(get(), name.c_str(), v.data(), v.size()));
    return v;
  }

  // Overwrites a named tensor (exactly as many floats as it has).
  void set_tensor(const std::string& name, std::span<const float> values) {
    detail::check(ddl_params_set_tensor(get(), name.c_str(), values.data(), values.size()));
  }

  // Names and shapes as JSON.
  std::string describe() const {
    char* out = nullptr;
    detail::check(ddl_params_describe(get(), &out));
    return detail::take(out);
  }
};

inline ForwardResult Bundle::forward(const Params& params, std::span<const float> x) const {
  size_t batch = batch_of(x);
  ForwardResult r{std::vector<float>(batch * num_classes()),
                  std::vector<float>(batch * feature_dim())};
  detail::check(ddl_bundle_forward(get(), params.get(), x.data(), batch, r.logits.data(),
                                   r.logits.size(), r.features.data(), r.features.size()));
  return r;
}

inline GradResult Bundle::grad(const Params& params, std::span<const float> x,
                               std::span<const int64_t> y, std::span<const float> w) const {
  size_t batch = batch_of(x);
  if (y.size() != batch)
    throw detail::invalid("y has " + std::to_string(y.size()) + " labels for a batch of " +
                          std::to_string(batch));
  if (!w.empty() && w.size() != batch)
    throw detail::invalid("w has " + std::to_string(w.size()) + " weights for a batch of " +
                          std::to_string(batch));
  GradResult r;
  r.grad.resize(num_parameters());
  detail::check(ddl_bundle_grad(get(), params.get(), x.data(), y.data(),
                                w.empty() ? nullptr : w.data(), batch, &r.loss, r.grad.data(),
                                r.grad.size()));
  return r;
}

// Per-channel normalisation for Dataset::from_memory.
struct Normalization {
  std::vector<float> mean;
  std::vector<float> std;
};

// Labelled images (ddl_dataset_*).
class Dataset : public detail::Handle<DdlDataset, ddl_dataset_free> {
 public:
  using Handle::Handle;

  // Both splits of "fashion-mnist", "mnist" or "cifar10"; `dir` empty = default folder.
  static std::pair<Dataset, Dataset> load(const std::string& name, const std::string& dir = "") {
    DdlDataset* train = nullptr;
    DdlDataset* test = nullptr;
    detail::check(
        ddl_dataset_load(name.c_str(), dir.empty() ? nullptr : dir.c_str(), &train, &test));
    return {Dataset(train), Dataset(test)};
  }

  // Copies float images (N x C x H x W row-major) and labels; with `norm`, images are pixels in
  // [0, 1] to normalise, without it they are already normalised.
  static Dataset from_memory(std::span<const float> images, std::array<size_t, 4> shape,
                             std::span<const int64_t> labels, size_t num_classes,
                             const std::optional<Normalization>& norm = std::nullopt,
                             const std::string& name = "memory") {
    check_size(images.size(), shape);
    return create(images.data(), DDL_DTYPE_F32, shape, labels, num_classes, norm, name);
  }

  // Copies byte images (pixels 0..255) and labels; normalised with `norm`, or scaled to [0, 1].
  static Dataset from_memory(std::span<const uint8_t> images, std::array<size_t, 4> shape,
                             std::span<const int64_t> labels, size_t num_classes,
                             const std::optional<Normalization>& norm = std::nullopt,
                             const std::string& name = "memory") {
    check_size(images.size(), shape);
    return create(images.data(), DDL_DTYPE_U8, shape, labels, num_classes, norm, name);
  }

  size_t size() const { return query(ddl_dataset_len); }
  size_t num_classes() const { return query(ddl_dataset_num_classes); }

  // Shape [C, H, W] of one example.
  std::array<size_t, 3> input_shape() const {
    std::array<size_t, 3> s{};
    detail::check(ddl_dataset_input_shape(get(), &s[0], &s[1], &s[2]));
    return s;
  }

  // The images, N x C x H x W row-major, normalised.
  std::vector<float> images() const {
    auto s = input_shape();
    std::vector<float> v(size() * s[0] * s[1] * s[2]);
    detail::check(ddl_dataset_get_images(get(), v.data(), v.size()));
    return v;
  }

  // The labels.
  std::vector<int64_t> labels() const {
    std::vector<int64_t> v(size());
    detail::check(ddl_dataset_get_labels(get(), v.data(), v.size()));
    return v;
  }

  // A seeded class-balanced subset with `per_class` examples per class.
  Dataset class_balanced(size_t per_class, uint64_t seed) const {
    DdlDataset* out = nullptr;
    detail::check(ddl_dataset_class_balanced(get(), per_class, seed, &out));
    return Dataset(out);
  }

  // The examples at `indices`, in order.
  Dataset select(std::span<const size_t> indices) const {
    DdlDataset* out = nullptr;
    detail::check(ddl_dataset_select(get(), indices.data(), indices.size(), &out));
    return Dataset(out);
  }

  // Name, size, shape, classes and class counts as JSON.
  std::string describe() const {
    char* out = nullptr;
    detail::check(ddl_dataset_describe(get(), &out));
    return detail::take(out);
  }

 private:
  static void check_size(size_t have, const std::array<size_t, 4>& shape) {
    size_t want = shape[0] * shape[1] * shape[2] * shape[3];
    if (have != want)
      throw detail::invalid("images hold " + std::to_string(have) + " values, shape needs " +
                            std::to_string(want));
  }

  static Dataset create(const void* images, DdlDtype dtype, const std::array<size_t, 4>& shape,
                        std::span<const int64_t> labels, size_t num_classes,
                        const std::optional<Normalization>& norm, const std::string& name) {
    if (norm && (norm->mean.size() != shape[1] || norm->std.size() != shape[1]))
      throw detail::invalid("normalization needs one mean and one std per channel (" +
                            std::to_string(shape[1]) + ")");
    DdlDataset* out = nullptr;
    detail::check(ddl_dataset_from_memory(images, dtype, shape.data(), shape.size(),
                                          labels.data(), labels.size(), num_classes,
                                          norm ? norm->mean.data() : nullptr,
                                          norm ? norm->std.data() : nullptr, name.c_str(), &out));
    return Dataset(out);
  }

  size_t query(DdlStatus (*fn)(const DdlDataset*, size_t*)) const {
    size_t v = 0;
    detail::check(fn(get(), &v));
    return v;
  }
};

// A distilled set (ddl_distilled_*).
class DistilledSet : public detail::Handle<DdlDistilledSet, ddl_distilled_free> {
 public:
  using Handle::Handle;

  // Reads a distilled-set file.
  static DistilledSet read(const std::string& path) {
    DdlDistilledSet* out = nullptr;
    detail::check(ddl_distilled_read(path.c_str(), &out));
    return DistilledSet(out);
  }

  // Makes a set from a dataset, an optional learned learning rate and metadata JSON.
  static DistilledSet create(const Dataset& data, std::optional<float> lr = std::nullopt,
                             const std::string& meta_json = "") {
    DdlDistilledSet* out = nullptr;
    detail::check(ddl_distilled_create(data.get(), lr ? &*lr : nullptr,
                                       meta_json.empty() ? nullptr : meta_json.c_str(), &out));
    return DistilledSet(out);
  }

  // Writes the set (atomically).
  void write(const std::string& path) const {
    detail::check(ddl_distilled_write(get(), path.c_str()));
  }

  // The images and labels as a dataset.
  Dataset data() const {
    DdlDataset* out = nullptr;
    detail::check(ddl_distilled_data(get(), &out));
    return Dataset(out);
  }

  // The learned learning rate, if the set has one.
  std::optional<float> lr() const {
    bool has = false;
    float lr = 0.0f;
    detail::check(ddl_distilled_lr(get(), &has, &lr));
    return has ? std::optional<float>(lr) : std::nullopt;
  }

  // Metadata, learning rate and data summary as JSON.
  std::string describe() const {
    char* out = nullptr;
    detail::check(ddl_distilled_describe(get(), &out));
    return detail::take(out);
  }
};

// A training configuration (ddl_train_config_*); setters return *this for chaining.
class TrainConfig : public detail::Handle<DdlTrainConfig, ddl_train_config_free> {
 public:
  using Handle::Handle;

  static TrainConfig standard_eval(uint64_t epochs, float lr, size_t train_size, uint64_t seed) {
    return make([&](DdlTrainConfig** o) {
      return ddl_train_config_standard_eval(epochs, lr, train_size, seed, o);
    });
  }
  static TrainConfig p_dist(uint64_t steps, uint64_t seed) {
    return make([&](DdlTrainConfig** o) { return ddl_train_config_p_dist(steps, seed, o); });
  }
  static TrainConfig p_real(uint64_t epochs, uint64_t seed) {
    return make([&](DdlTrainConfig** o) { return ddl_train_config_p_real(epochs, seed, o); });
  }
  static TrainConfig from_json(const std::string& json) {
    return make([&](DdlTrainConfig** o) { return ddl_train_config_from_json(json.c_str(), o); });
  }

  std::string to_json() const {
    char* out = nullptr;
    detail::check(ddl_train_config_to_json(get(), &out));
    return detail::take(out);
  }

  // Updates a run on `train_size` examples makes.
  uint64_t total_steps(size_t train_size) const {
    uint64_t n = 0;
    detail::check(ddl_train_config_total_steps(get(), train_size, &n));
    return n;
  }

  TrainConfig& epochs(uint64_t v) { return set(ddl_train_config_set_epochs(get(), v)); }
  TrainConfig& max_steps(uint64_t v) { return set(ddl_train_config_set_max_steps(get(), v)); }
  TrainConfig& batch_size(uint64_t v) { return set(ddl_train_config_set_batch_size(get(), v)); }
  TrainConfig& lr(float v) { return set(ddl_train_config_set_lr(get(), v)); }
  TrainConfig& momentum(float v) { return set(ddl_train_config_set_momentum(get(), v)); }
  TrainConfig& weight_decay(float v) {
    return set(ddl_train_config_set_weight_decay(get(), v));
  }
  TrainConfig& seed(uint64_t v) { return set(ddl_train_config_set_seed(get(), v)); }
  TrainConfig& constant_lr() { return set(ddl_train_config_set_schedule_constant(get())); }
  TrainConfig& step_lr(std::span<const uint64_t> milestones, float gamma) {
    return set(
        ddl_train_config_set_schedule_step(get(), milestones.data(), milestones.size(), gamma));
  }
  // DSA augmentation of every minibatch: a strategy such as
  // "color_crop_cutout_flip_scale_rotate"; nullptr, "" or "none" trains on the plain images.
  TrainConfig& dsa(const char* strategy) {
    return set(ddl_train_config_set_dsa(get(), strategy));
  }
  TrainConfig& dsa(const std::string& strategy) { return dsa(strategy.c_str()); }

 private:
  template <typename F>
  static TrainConfig make(F&& create) {
    DdlTrainConfig* out = nullptr;
    detail::check(create(&out));
    return TrainConfig(out);
  }
  TrainConfig& set(DdlStatus status) {
    detail::check(status);
    return *this;
  }
};

// Output of train(): the trained parameters and the JSON report (steps, loss per step...).
struct TrainResult {
  Params params;
  std::string report_json;
};

// Trains a copy of `init` on `data` (see ddl_train).
inline TrainResult train(const Bundle& bundle, const Params& init, const Dataset& data,
                         const TrainConfig& config, const Progress& progress = {}) {
  detail::ProgressBridge bridge{&progress, nullptr};
  DdlParams* out = nullptr;
  char* json = nullptr;
  DdlStatus s = ddl_train(bundle.get(), init.get(), data.get(), config.get(), bridge.fn(), &bridge,
                          &out, &json);
  TrainResult r{Params(out), detail::take(json)};
  bridge.finish(s);
  return r;
}

// Output of evaluate().
struct Evaluation {
  double accuracy = 0.0;
  double loss = 0.0;
  std::string json;  // also holds the confusion matrix
};

// Accuracy and mean loss of `params` on `data`.
inline Evaluation evaluate(const Bundle& bundle, const Params& params, const Dataset& data) {
  Evaluation e;
  char* json = nullptr;
  detail::check(
      ddl_evaluate(bundle.get(), params.get(), data.get(), &e.accuracy, &e.loss, &json));
  e.json = detail::take(json);
  return e;
}

// The standard evaluation protocol; returns its JSON summary (accuracies, mean, std).
inline std::string standard_evaluation(const Bundle& bundle, const Dataset& train_set,
                                       const Dataset& test_set, size_t runs, uint64_t epochs,
                                       float lr, uint64_t seed, const Progress& progress = {}) {
  detail::ProgressBridge bridge{&progress, nullptr};
  char* json = nullptr;
  DdlStatus s = ddl_standard_evaluation(bundle.get(), train_set.get(), test_set.get(), runs,
                                        epochs, lr, seed, bridge.fn(), &bridge, &json);
  std::string out = detail::take(json);
  bridge.finish(s);
  return out;
}

// The standard evaluation with DSA augmentation of every minibatch (`strategy`, e.g.
// "color_crop_cutout_flip_scale_rotate"; the protocol trains 1000 epochs), as `ddlens eval --dsa`.
inline std::string standard_evaluation_augmented(const Bundle& bundle, const Dataset& train_set,
                                                 const Dataset& test_set, size_t runs,
                                                 uint64_t epochs, float lr, uint64_t seed,
                                                 const std::string& strategy,
                                                 const Progress& progress = {}) {
  detail::ProgressBridge bridge{&progress, nullptr};
  char* json = nullptr;
  DdlStatus s = ddl_standard_evaluation_augmented(bundle.get(), train_set.get(), test_set.get(),
                                                  runs, epochs, lr, seed, strategy.c_str(),
                                                  bridge.fn(), &bridge, &json);
  std::string out = detail::take(json);
  bridge.finish(s);
  return out;
}

// A distillation configuration (ddl_distill_config_*): a method, images per class and the
// defaults of `ddlens distill`; setters (each validated by the library, and refused for a method
// it does not apply to) return *this for chaining.
class DistillConfig : public detail::Handle<DdlDistillConfig, ddl_distill_config_free> {
 public:
  using Handle::Handle;

  // `method` is "random", "herding", "dm", "dc", "dsa", "mtt" or "bptt".
  static DistillConfig create(const std::string& method, size_t ipc) {
    DdlDistillConfig* out = nullptr;
    detail::check(ddl_distill_config_new(method.c_str(), ipc, &out));
    return DistillConfig(out);
  }

  // The effective settings (defaults resolved) as JSON.
  std::string describe() const {
    char* out = nullptr;
    detail::check(ddl_distill_config_describe(get(), &out));
    return detail::take(out);
  }

  DistillConfig& iterations(uint64_t v) { return set(ddl_distill_config_set_iterations(get(), v)); }
  DistillConfig& seed(uint64_t v) { return set(ddl_distill_config_set_seed(get(), v)); }
  DistillConfig& lr_img(float v) { return set(ddl_distill_config_set_lr_img(get(), v)); }
  DistillConfig& momentum(float v) { return set(ddl_distill_config_set_momentum(get(), v)); }
  DistillConfig& batch_real(uint64_t v) { return set(ddl_distill_config_set_batch_real(get(), v)); }
  DistillConfig& syn_steps(uint64_t v) { return set(ddl_distill_config_set_syn_steps(get(), v)); }
  // 0 = the whole synthetic set.
  DistillConfig& batch_syn(uint64_t v) { return set(ddl_distill_config_set_batch_syn(get(), v)); }
  DistillConfig& lr_lr(float v) { return set(ddl_distill_config_set_lr_lr(get(), v)); }
  DistillConfig& dsa(bool on) { return set(ddl_distill_config_set_dsa(get(), on)); }
  // mtt: a folder from generate_experts().
  DistillConfig& experts(const std::string& dir) {
    return set(ddl_distill_config_set_experts(get(), dir.c_str()));
  }
  DistillConfig& expert_epochs_ahead(uint64_t v) {
    return set(ddl_distill_config_set_expert_epochs_ahead(get(), v));
  }
  DistillConfig& max_start_epoch(uint64_t v) {
    return set(ddl_distill_config_set_max_start_epoch(get(), v));
  }
  // bptt: RaT-BPTT window (0 = full BPTT), learned inner lr.
  DistillConfig& window(uint64_t v) { return set(ddl_distill_config_set_window(get(), v)); }
  DistillConfig& learn_lr(bool on) { return set(ddl_distill_config_set_learn_lr(get(), on)); }
  // herding: features from a parameter file (empty = a model trained for one epoch of P_real).
  DistillConfig& herding_params(const std::string& path) {
    return set(
        ddl_distill_config_set_herding_params(get(), path.empty() ? nullptr : path.c_str()));
  }
  // Checkpoint file (empty = none), written every `every` iterations and after the last one.
  DistillConfig& checkpoint(const std::string& path, uint64_t every = 0) {
    return set(
        ddl_distill_config_set_checkpoint(get(), path.empty() ? nullptr : path.c_str(), every));
  }
  // Continue from the checkpoint of an earlier run with the same settings.
  DistillConfig& resume(bool on = true) { return set(ddl_distill_config_set_resume(get(), on)); }

 private:
  DistillConfig& set(DdlStatus status) {
    detail::check(status);
    return *this;
  }
};

// Output of distill(): the distilled set and the JSON report (settings, loss per iteration...).
struct DistillResult {
  DistilledSet set;
  std::string report_json;
};

// Distils `real` for the model of `bundle` (see ddl_distill); `progress` sees the iterations
// and may cancel (Error with DDL_STATUS_CANCELLED; a checkpoint due by then is on disk).
inline DistillResult distill(const Bundle& bundle, const Dataset& real,
                             const DistillConfig& config, const Progress& progress = {}) {
  detail::ProgressBridge bridge{&progress, nullptr};
  DdlDistilledSet* out = nullptr;
  char* json = nullptr;
  DdlStatus s = ddl_distill(bundle.get(), real.get(), config.get(), bridge.fn(), &bridge, &out,
                            &json);
  DistillResult r{DistilledSet(out), detail::take(json)};
  bridge.finish(s);
  return r;
}

// Trains MTT's expert trajectories into `out_dir` (see ddl_generate_experts); returns the
// index JSON. `progress` counts epochs over all experts and may cancel.
inline std::string generate_experts(const Bundle& bundle, const Dataset& data, size_t num_experts,
                                    uint64_t epochs, float lr, size_t batch, bool dsa,
                                    uint64_t seed, const std::string& out_dir,
                                    const Progress& progress = {}) {
  detail::ProgressBridge bridge{&progress, nullptr};
  char* json = nullptr;
  DdlStatus s = ddl_generate_experts(bundle.get(), data.get(), num_experts, epochs, lr, batch, dsa,
                                     seed, out_dir.c_str(), bridge.fn(), &bridge, &json);
  std::string out = detail::take(json);
  bridge.finish(s);
  return out;
}

// --- analyses (ddl_analyze_*) ----------------------------------------------------------------

// How much compute an analysis may spend (DdlBudget).
enum class Budget : DdlBudget {
  paper = DDL_BUDGET_PAPER,  // the paper's protocol (GPU hours)
  cpu = DDL_BUDGET_CPU,      // minutes on 2 CPU cores
  smoke = DDL_BUDGET_SMOKE,  // seconds: tests and smoke runs, not for conclusions
};

// The distilled sets an analysis studies, in order: borrowed handles, built from DistilledSet
// references ({a, b}), pointers ({&a, &b}) or vectors of either. The sets must outlive it.
class SetRefs {
 public:
  SetRefs() = default;
  SetRefs(std::initializer_list<std::reference_wrapper<const DistilledSet>> sets) {
    for (const DistilledSet& s : sets) handles_.push_back(s.get());
  }
  SetRefs(std::initializer_list<const DistilledSet*> sets) { add(sets); }
  SetRefs(const std::vector<std::reference_wrapper<const DistilledSet>>& sets) {
    for (const DistilledSet& s : sets) handles_.push_back(s.get());
  }
  SetRefs(const std::vector<const DistilledSet*>& sets) { add(sets); }
  SetRefs(const std::vector<DistilledSet>& sets) {
    for (const DistilledSet& s : sets) handles_.push_back(s.get());
  }

  const DdlDistilledSet* const* data() const noexcept {
    return handles_.empty() ? nullptr : handles_.data();
  }
  size_t size() const noexcept { return handles_.size(); }

 private:
  template <typename Range>
  void add(const Range& sets) {
    // A null pointer passes a NULL handle, which the library reports as `sets[i]`.
    for (const DistilledSet* s : sets) handles_.push_back(s != nullptr ? s->get() : nullptr);
  }

  std::vector<const DdlDistilledSet*> handles_;
};

// The analyses analyze() knows, in the paper's order, as the JSON array of
// ddl_analysis_names: [{"name", "about", "own_baseline"}, ...].
inline std::string analysis_names() {
  char* json = nullptr;
  detail::check(ddl_analysis_names(&json));
  return detail::take(json);
}

// Runs the analysis `name` (e.g. "mixing"; see analysis_names()) through ddl_analyze and returns
// its result as JSON. The analyze_<name>() functions below are shorthands for it. The result's
// "verdict" says what it means for the paper's claim: "state" ("supports", "contradicts" or
// "inconclusive"), "claim", "effect", "reason", and per set its effect with a 95% interval
// ({"estimate", "lo", "hi", "n"}); with a set named "random…" (a random real reference),
// "against_reference" says whether the effect goes beyond it (docs/analyses.md, "Verdicts").
//
// * `train_set`, `test_set`: the real data (normalised); `sets`: the distilled sets studied.
// * `names`: empty (every set is named `set<i>`) or one name per set ("" = `set<i>`).
// * `budget` scales the defaults; `options_json` ("" = the defaults) overrides settings, see
//   docs/analyses.md; an unknown field throws Error naming it.
// * `seed` seeds every random draw; `out_dir` ("" = none) receives `<name>.json` and the PNG
//   figures as `ddlens analyze <name>` writes them.
// * `progress` may cancel (Error with DDL_STATUS_CANCELLED).
//
// Every input is only read: analyses may run concurrently on shared handles.
inline std::string analyze(const std::string& name, const Bundle& bundle, const Dataset& train_set,
                           const Dataset& test_set, const SetRefs& sets,
                           const std::vector<std::string>& names = {},
                           Budget budget = Budget::cpu, const std::string& options_json = "",
                           uint64_t seed = 0, const std::string& out_dir = "",
                           const Progress& progress = {}) {
  if (!names.empty() && names.size() != sets.size())
    throw detail::invalid("names has " + std::to_string(names.size()) + " entries for " +
                          std::to_string(sets.size()) + " sets (give none, or one per set)");
  std::vector<const char*> name_ptrs;
  for (const std::string& n : names) name_ptrs.push_back(n.empty() ? nullptr : n.c_str());
  detail::ProgressBridge bridge{&progress, nullptr};
  char* json = nullptr;
  DdlStatus s = ddl_analyze(name.c_str(), bundle.get(), train_set.get(), test_set.get(),
                            sets.data(), name_ptrs.empty() ? nullptr : name_ptrs.data(),
                            sets.size(), static_cast<DdlBudget>(budget),
                            options_json.empty() ? nullptr : options_json.c_str(), seed,
                            out_dir.empty() ? nullptr : out_dir.c_str(), bridge.fn(), &bridge,
                            &json);
  std::string out = detail::take(json);
  bridge.finish(s);
  return out;
}

// One function per analysis, with analyze()'s arguments; the settings and the result of each
// are documented on its C entry (include/ddlens.h) and in docs/analyses.md.

// Pixel-value distributions of the real images and of each set (ddl_analyze_pixels).
inline std::string analyze_pixels(const Bundle& bundle, const Dataset& train_set,
                                  const Dataset& test_set, const SetRefs& sets,
                                  const std::vector<std::string>& names = {},
                                  Budget budget = Budget::cpu,
                                  const std::string& options_json = "", uint64_t seed = 0,
                                  const std::string& out_dir = "",
                                  const Progress& progress = {}) {
  return analyze("pixels", bundle, train_set, test_set, sets, names, budget,
                 options_json, seed, out_dir, progress);
}

// Each set plus k real images per class, against a random real baseline (ddl_analyze_mixing).
inline std::string analyze_mixing(const Bundle& bundle, const Dataset& train_set,
                                  const Dataset& test_set, const SetRefs& sets,
                                  const std::vector<std::string>& names = {},
                                  Budget budget = Budget::cpu,
                                  const std::string& options_json = "", uint64_t seed = 0,
                                  const std::string& out_dir = "",
                                  const Progress& progress = {}) {
  return analyze("mixing", bundle, train_set, test_set, sets, names, budget,
                 options_json, seed, out_dir, progress);
}

// Accuracy under variations of the standard evaluation (ddl_analyze_sensitivity).
inline std::string analyze_sensitivity(const Bundle& bundle, const Dataset& train_set,
                                       const Dataset& test_set, const SetRefs& sets,
                                       const std::vector<std::string>& names = {},
                                       Budget budget = Budget::cpu,
                                       const std::string& options_json = "", uint64_t seed = 0,
                                       const std::string& out_dir = "",
                                       const Progress& progress = {}) {
  return analyze("sensitivity", bundle, train_set, test_set, sets, names, budget,
                 options_json, seed, out_dir, progress);
}

// Recognition of the sets' images by real-trained models (ddl_analyze_recognition).
inline std::string analyze_recognition(const Bundle& bundle, const Dataset& train_set,
                                       const Dataset& test_set, const SetRefs& sets,
                                       const std::vector<std::string>& names = {},
                                       Budget budget = Budget::cpu,
                                       const std::string& options_json = "", uint64_t seed = 0,
                                       const std::string& out_dir = "",
                                       const Progress& progress = {}) {
  return analyze("recognition", bundle, train_set, test_set, sets, names, budget,
                 options_json, seed, out_dir, progress);
}

// Prediction agreement with accuracy-matched real-trained models (ddl_analyze_agreement).
inline std::string analyze_agreement(const Bundle& bundle, const Dataset& train_set,
                                     const Dataset& test_set, const SetRefs& sets,
                                     const std::vector<std::string>& names = {},
                                     Budget budget = Budget::cpu,
                                     const std::string& options_json = "", uint64_t seed = 0,
                                     const std::string& out_dir = "",
                                     const Progress& progress = {}) {
  return analyze("agreement", bundle, train_set, test_set, sets, names, budget,
                 options_json, seed, out_dir, progress);
}

// Accuracy and loss on each set along one P_real run
// (ddl_analyze_recognition_over_training).
inline std::string analyze_recognition_over_training(
    const Bundle& bundle, const Dataset& train_set, const Dataset& test_set,
    const SetRefs& sets, const std::vector<std::string>& names = {},
    Budget budget = Budget::cpu, const std::string& options_json = "", uint64_t seed = 0,
    const std::string& out_dir = "", const Progress& progress = {}) {
  return analyze("recognition-over-training", bundle, train_set, test_set, sets, names,
                 budget, options_json, seed, out_dir, progress);
}

// Hessian traces, top eigenvalues and spectra along one P_real run (ddl_analyze_curvature).
inline std::string analyze_curvature(const Bundle& bundle, const Dataset& train_set,
                                     const Dataset& test_set, const SetRefs& sets,
                                     const std::vector<std::string>& names = {},
                                     Budget budget = Budget::cpu,
                                     const std::string& options_json = "", uint64_t seed = 0,
                                     const std::string& out_dir = "",
                                     const Progress& progress = {}) {
  return analyze("curvature", bundle, train_set, test_set, sets, names, budget,
                 options_json, seed, out_dir, progress);
}

// Leave-one-out retraining against influence functions per distilled image
// (ddl_analyze_influence).
inline std::string analyze_influence(const Bundle& bundle, const Dataset& train_set,
                                     const Dataset& test_set, const SetRefs& sets,
                                     const std::vector<std::string>& names = {},
                                     Budget budget = Budget::cpu,
                                     const std::string& options_json = "", uint64_t seed = 0,
                                     const std::string& out_dir = "",
                                     const Progress& progress = {}) {
  return analyze("influence", bundle, train_set, test_set, sets, names, budget,
                 options_json, seed, out_dir, progress);
}

}  // namespace ddlens
