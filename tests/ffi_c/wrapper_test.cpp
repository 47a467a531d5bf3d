// The C++ wrapper (bindings/cpp/ddlens.hpp): move-only handles that cannot be freed twice,
// exceptions carrying status and message, spans in and vectors out, progress lambdas that
// cancel or throw. Built with AddressSanitizer by tests/ffi_c.rs, so a double free or a leak
// through the wrapper fails the test.
//
// usage: wrapper_test MODELS_DIR TMP_DIR
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "ddlens.hpp"

namespace {

int failures = 0;

#define CHECK(cond, what)                                                              \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      std::fprintf(stderr, "%s:%d: CHECK(%s) failed: %s\n", __FILE__, __LINE__, #cond, \
                   std::string(what).c_str());                                         \
      failures++;                                                                      \
    }                                                                                  \
  } while (0)

// Runs `body`, which must throw ddlens::Error with `status` and a message containing `needle`.
template <typename F>
void expect_error(F&& body, DdlStatus status, const char* needle, const char* what) {
  try {
    body();
    CHECK(false, std::string(what) + ": no exception");
  } catch (const ddlens::Error& e) {
    CHECK(e.status() == status, std::string(what) + ": status " + e.status_name());
    CHECK(std::strstr(e.what(), needle) != nullptr,
          std::string(what) + ": message \"" + e.what() + "\" lacks \"" + needle + "\"");
  }
}

static_assert(!std::is_copy_constructible_v<ddlens::Bundle>, "handles are move-only");
static_assert(!std::is_copy_assignable_v<ddlens::Params>, "handles are move-only");
static_assert(std::is_nothrow_move_constructible_v<ddlens::Dataset>, "moves never throw");
static_assert(std::is_nothrow_move_assignable_v<ddlens::TrainConfig>, "moves never throw");

// The synthetic 3-class problem of the other tests (class c lights rows 2c, 2c+1).
void synthetic(size_t n, uint32_t seed, std::vector<float>& x, std::vector<int64_t>& y) {
  x.assign(n * 64, 0.0f);
  y.assign(n, 0);
  uint32_t state = seed * 2654435761u + 1u;
  for (size_t i = 0; i < n; i++) {
    y[i] = static_cast<int64_t>(i % 3);
    for (size_t p = 0; p < 64; p++) {
      state = state * 1664525u + 1013904223u;
      float noise = (static_cast<float>(state >> 8) / 16777216.0f - 0.5f) * 0.6f;
      x[i * 64 + p] = noise + ((p / 8) / 2 == i % 3 ? 2.0f : 0.0f);
    }
  }
}

ddlens::Dataset dataset(size_t n, uint32_t seed) {
  std::vector<float> x;
  std::vector<int64_t> y;
  synthetic(n, seed, x, y);
  return ddlens::Dataset::from_memory(std::span<const float>(x), {n, 1, 8, 8}, y, 3);
}

void test_handles(const std::string& bundle_path) {
  ddlens::Bundle b = ddlens::Bundle::open(bundle_path);
  ddlens::Params p = ddlens::Params::init(b, 1);
  // Moving transfers ownership; the moved-from object is empty and safe to destroy.
  ddlens::Params q = std::move(p);
  CHECK(!p && q, "moved");
  p.reset();  // nothing to free: harmless
  q.reset();
  q.reset();  // a second reset must not free twice (ASan would catch it)
  CHECK(!q, "reset empties");
  ddlens::Params r = ddlens::Params::init(b, 2);
  r = ddlens::Params::init(b, 3);  // move-assign frees the old handle
  auto& self = r;
  r = std::move(self);  // self-move keeps the handle
  CHECK(static_cast<bool>(r), "self-move keeps the handle");
  // Calls on an empty handle are errors, not crashes.
  expect_error([&] { (void)q.numel(); }, DDL_STATUS_NULL_ARGUMENT, "`params`", "empty handle");
  // release() hands the C handle over; the caller frees it.
  DdlParams* raw = r.release();
  CHECK(!r && raw != nullptr, "release");
  ddl_params_free(raw);
}

void test_errors(const std::string& models) {
  expect_error([&] { ddlens::Bundle::open(models + "/no-such-bundle"); }, DDL_STATUS_NOT_FOUND,
               "no-such-bundle", "missing bundle");
  expect_error([] { ddlens::init_runtime("", static_cast<DdlProvider>(77)); },
               DDL_STATUS_INVALID_ARGUMENT, "`provider`", "bad provider");
  expect_error([] { ddlens::init_runtime("", DDL_PROVIDER_CPU, 3); }, DDL_STATUS_RUNTIME_CONFIG,
               "already", "runtime change");
  expect_error([] { ddlens::DistilledSet::read("/nonexistent.safetensors"); },
               DDL_STATUS_NOT_FOUND, "does not exist", "missing set");
  expect_error([] { ddlens::TrainConfig::p_real(1, 0).lr(-1.0f); }, DDL_STATUS_INVALID_ARGUMENT,
               "`lr`", "bad lr");
  expect_error([] { ddlens::TrainConfig::from_json("{\"epochs\": 1}"); },
               DDL_STATUS_INVALID_ARGUMENT, "missing field", "incomplete json");
  std::vector<float> x(10);
  std::vector<int64_t> y(1);
  expect_error([&] { ddlens::Dataset::from_memory(std::span<const float>(x), {1, 1, 8, 8}, y, 3); },
               DDL_STATUS_INVALID_ARGUMENT, "shape needs 64", "images too short");
  ddlens::Bundle b = ddlens::Bundle::open(models + "/tiny-1x8x8");
  ddlens::Params p = ddlens::Params::init(b, 0);
  expect_error([&] { (void)b.forward(p, x); }, DDL_STATUS_INVALID_ARGUMENT, "multiple",
               "batch not a multiple of C*H*W");
  expect_error([&] { p.set_flat(x); }, DDL_STATUS_INVALID_ARGUMENT, "`len`", "short set_flat");
  expect_error([&] { (void)p.tensor("nope"); }, DDL_STATUS_INVALID_ARGUMENT, "nope", "bad tensor");
}

void test_flow(const std::string& models, const std::string& tmp) {
  ddlens::Bundle b = ddlens::Bundle::open(models + "/tiny-1x8x8");
  CHECK(b.input_shape()[1] == 8 && b.num_classes() == 3, "shape");
  ddlens::Dataset train = dataset(60, 1);
  ddlens::Dataset test = dataset(30, 2);
  ddlens::Params init = ddlens::Params::init(b, 0);
  ddlens::TrainConfig cfg = ddlens::TrainConfig::p_real(10, 3);
  cfg.batch_size(16).lr(0.05f);
  uint64_t calls = 0;
  ddlens::TrainResult r = ddlens::train(b, init, train, cfg, [&](uint64_t, uint64_t) {
    calls++;
    return true;
  });
  CHECK(calls == 41, "progress calls " + std::to_string(calls));
  CHECK(r.report_json.find("\"steps\":40") != std::string::npos, r.report_json);
  ddlens::Evaluation e = ddlens::evaluate(b, r.params, test);
  CHECK(e.accuracy > 0.9, "accuracy " + std::to_string(e.accuracy));

  // Returning false cancels; an exception in the callback is rethrown as itself.
  expect_error([&] { ddlens::train(b, init, train, cfg, [](uint64_t s, uint64_t) { return s < 2; }); },
               DDL_STATUS_CANCELLED, "step 2", "cancel");
  bool rethrown = false;
  try {
    ddlens::train(b, init, train, cfg, [](uint64_t s, uint64_t) -> bool {
      if (s == 1) throw std::logic_error("from the callback");
      return true;
    });
  } catch (const std::logic_error& err) {
    rethrown = std::string(err.what()) == "from the callback";
  }
  CHECK(rethrown, "callback exception rethrown");

  // Forward and grad through spans agree with evaluate and with finite differences' sign.
  std::vector<float> x = test.images();
  std::vector<int64_t> y = test.labels();
  ddlens::ForwardResult f = b.forward(r.params, x);
  CHECK(f.logits.size() == 90 && f.features.size() == 30 * b.feature_dim(), "forward sizes");
  size_t correct = 0;
  for (size_t i = 0; i < 30; i++) {
    size_t arg = 0;
    for (size_t k = 1; k < 3; k++)
      if (f.logits[i * 3 + k] > f.logits[i * 3 + arg]) arg = k;
    correct += static_cast<int64_t>(arg) == y[i];
  }
  CHECK(std::fabs(correct / 30.0 - e.accuracy) < 1e-12, "forward argmax = evaluate accuracy");
  ddlens::GradResult g = b.grad(r.params, x, y);
  CHECK(std::fabs(g.loss - e.loss) < 1e-4, "grad loss " + std::to_string(g.loss) + " vs " +
                                                 std::to_string(e.loss));
  CHECK(g.grad.size() == b.num_parameters(), "grad size");

  // Files: parameters and a distilled set.
  r.params.save(b, tmp + "/p.safetensors");
  ddlens::Params loaded = ddlens::Params::load(b, tmp + "/p.safetensors");
  CHECK(loaded.to_vector() == r.params.to_vector(), "params round trip");
  ddlens::DistilledSet set =
      ddlens::DistilledSet::create(train.class_balanced(2, 0), 0.02f, "{\"method\": \"random\"}");
  set.write(tmp + "/set.safetensors");
  ddlens::DistilledSet back = ddlens::DistilledSet::read(tmp + "/set.safetensors");
  CHECK(back.lr() == 0.02f && back.data().size() == 6, back.describe());
  std::string summary = ddlens::standard_evaluation(b, back.data(), test, 2, 2, *back.lr(), 0);
  CHECK(summary.find("\"accuracies\"") != std::string::npos, summary);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s MODELS_DIR TMP_DIR\n", argv[0]);
    return 2;
  }
  std::string models = argv[1], tmp = argv[2];
  try {
    CHECK(ddlens::version() == DDL_VERSION_STRING, ddlens::version());
    expect_error([&] { ddlens::Bundle::open(models + "/tiny-1x8x8"); },
                 DDL_STATUS_RUNTIME_NOT_INITIALIZED, "ddl_runtime_init", "before init");
    ddlens::init_runtime("", DDL_PROVIDER_CPU, 1);
    CHECK(ddlens::runtime_json().find("\"provider\":\"cpu\"") != std::string::npos,
          ddlens::runtime_json());
    test_handles(models + "/tiny-1x8x8");
    test_errors(models);
    test_flow(models, tmp);
  } catch (const ddlens::Error& e) {
    std::fprintf(stderr, "unexpected %s: %s\n", e.status_name(), e.what());
    return 1;
  }
  if (failures) {
    std::fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  std::printf("wrapper_test: all checks passed\n");
  return 0;
}
