/* The C ABI from C, as a real caller links it: misuse gives the right status and message,
 * calls before set-up are refused, a full train/evaluate/distilled-set flow works, progress
 * callbacks cancel, and several threads with separate handles run at once with identical,
 * deterministic results. Built with AddressSanitizer by tests/ffi_c.rs: any leak of a handle,
 * double free or out-of-bounds access in this program or through the ABI fails the test.
 *
 * usage: c_api_test MODELS_DIR TMP_DIR */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ddlens.h"

static int failures = 0;

#define CHECK(cond, ...)                                                           \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond);     \
      fprintf(stderr, __VA_ARGS__);                                                \
      fprintf(stderr, "\n  last error: %s\n", ddl_last_error());                  \
      failures++;                                                                  \
    }                                                                              \
  } while (0)

#define OK(call)                                                                   \
  do {                                                                             \
    DdlStatus s_ = (call);                                                         \
    CHECK(s_ == DDL_STATUS_OK, "%s returned %s", #call, ddl_status_name(s_));      \
  } while (0)

/* The call returns `status` and the thread's message contains `needle`. */
#define EXPECT(call, status, needle)                                               \
  do {                                                                             \
    DdlStatus s_ = (call);                                                         \
    CHECK(s_ == (status), "%s returned %s, expected %s", #call, ddl_status_name(s_), \
          ddl_status_name(status));                                                \
    CHECK(strstr(ddl_last_error(), (needle)) != NULL, "message of %s lacks \"%s\"", \
          #call, (needle));                                                        \
  } while (0)

static char models_dir[4096];
static char tmp_dir[4096];

static void bundle_path(char* out, size_t n, const char* name) {
  snprintf(out, n, "%s/%s", models_dir, name);
}

/* The learnable 3-class problem of the Rust tests: class c lights rows 2c, 2c+1 of an 8x8
 * image, plus deterministic noise from a small LCG. */
static void synthetic(size_t n, uint32_t seed, float* x, int64_t* y) {
  uint32_t state = seed * 2654435761u + 1u;
  for (size_t i = 0; i < n; i++) {
    y[i] = (int64_t)(i % 3);
    for (size_t p = 0; p < 64; p++) {
      state = state * 1664525u + 1013904223u;
      float noise = ((float)(state >> 8) / 16777216.0f - 0.5f) * 0.6f;
      size_t row = p / 8;
      x[i * 64 + p] = noise + ((row / 2) == (size_t)(i % 3) ? 2.0f : 0.0f);
    }
  }
}

static DdlDataset* make_dataset(size_t n, uint32_t seed) {
  float* x = malloc(n * 64 * sizeof(float));
  int64_t* y = malloc(n * sizeof(int64_t));
  synthetic(n, seed, x, y);
  size_t shape[4] = {n, 1, 8, 8};
  DdlDataset* d = NULL;
  OK(ddl_dataset_from_memory(x, DDL_DTYPE_F32, shape, 4, y, n, 3, NULL, NULL, "synthetic", &d));
  /* Borrowed only for the call: freeing now must be fine. */
  free(x);
  free(y);
  return d;
}

static void test_before_init(void) {
  char path[4200];
  bundle_path(path, sizeof path, "tiny-1x8x8");
  DdlBundle* b = (DdlBundle*)0x1; /* must be overwritten with NULL */
  CHECK(!ddl_runtime_is_initialized(), "fresh process");
  EXPECT(ddl_bundle_open(path, &b), DDL_STATUS_RUNTIME_NOT_INITIALIZED, "ddl_runtime_init");
  CHECK(b == NULL, "output handle is NULL on failure");
  char* json = NULL;
  EXPECT(ddl_runtime_describe(&json), DDL_STATUS_RUNTIME_NOT_INITIALIZED, "ddl_runtime_init");
  CHECK(json == NULL, "no string on failure");
}

static void test_misuse(DdlBundle* b) {
  size_t n = 0;
  /* NULL handles and outputs. */
  EXPECT(ddl_bundle_num_classes(NULL, &n), DDL_STATUS_NULL_ARGUMENT, "`bundle`");
  EXPECT(ddl_bundle_num_classes(b, NULL), DDL_STATUS_NULL_ARGUMENT, "`out`");
  EXPECT(ddl_dataset_len(NULL, &n), DDL_STATUS_NULL_ARGUMENT, "ddl_dataset_len");
  DdlParams* p = NULL;
  EXPECT(ddl_params_init(NULL, 0, &p), DDL_STATUS_NULL_ARGUMENT, "`bundle`");
  EXPECT(ddl_bundle_open(NULL, NULL), DDL_STATUS_NULL_ARGUMENT, "`out`");
  /* Free functions accept NULL. */
  ddl_bundle_free(NULL);
  ddl_params_free(NULL);
  ddl_dataset_free(NULL);
  ddl_distilled_free(NULL);
  ddl_train_config_free(NULL);
  ddl_string_free(NULL);
  /* Bad enum values. */
  EXPECT(ddl_runtime_init(NULL, 99, 1), DDL_STATUS_INVALID_ARGUMENT, "`provider`");
  float x[64] = {0};
  int64_t y[1] = {0};
  size_t shape[4] = {1, 1, 8, 8};
  DdlDataset* d = NULL;
  EXPECT(ddl_dataset_from_memory(x, 5, shape, 4, y, 1, 3, NULL, NULL, NULL, &d),
         DDL_STATUS_INVALID_ARGUMENT, "`dtype`");
  /* Wrong sizes and shapes. */
  EXPECT(ddl_dataset_from_memory(x, DDL_DTYPE_F32, shape, 3, y, 1, 3, NULL, NULL, NULL, &d),
         DDL_STATUS_INVALID_ARGUMENT, "`ndim`");
  EXPECT(ddl_dataset_from_memory(x, DDL_DTYPE_F32, shape, 4, y, 2, 3, NULL, NULL, NULL, &d),
         DDL_STATUS_INVALID_ARGUMENT, "`num_labels`");
  EXPECT(ddl_dataset_from_memory(NULL, DDL_DTYPE_F32, shape, 4, y, 1, 3, NULL, NULL, NULL, &d),
         DDL_STATUS_NULL_ARGUMENT, "`images`");
  size_t wrong_shape[4] = {1, 1, 4, 16};
  OK(ddl_dataset_from_memory(x, DDL_DTYPE_F32, wrong_shape, 4, y, 1, 3, NULL, NULL, NULL, &d));
  OK(ddl_params_init(b, 0, &p));
  double acc = 0;
  EXPECT(ddl_evaluate(b, p, d, &acc, NULL, NULL), DDL_STATUS_DATA, "tiny-1x8x8");
  ddl_dataset_free(d);
  size_t numel = 0;
  OK(ddl_params_numel(p, &numel));
  float* flat = calloc(numel, sizeof(float));
  EXPECT(ddl_params_get_flat(p, flat, numel - 1), DDL_STATUS_BUFFER_TOO_SMALL, "are needed");
  EXPECT(ddl_params_set_flat(p, flat, numel + 1), DDL_STATUS_INVALID_ARGUMENT, "`len`");
  free(flat);
  float logits[2];
  EXPECT(ddl_bundle_forward(b, p, x, 1, logits, 2, NULL, 0), DDL_STATUS_BUFFER_TOO_SMALL,
         "`logits`");
  ddl_params_free(p);
  /* Missing files. */
  DdlBundle* nb = NULL;
  EXPECT(ddl_bundle_open("/nonexistent/bundle", &nb), DDL_STATUS_NOT_FOUND, "/nonexistent/bundle");
  DdlDistilledSet* set = NULL;
  EXPECT(ddl_distilled_read("/nonexistent/set.safetensors", &set), DDL_STATUS_NOT_FOUND,
         "does not exist");
  DdlDataset *tr = NULL, *te = NULL;
  EXPECT(ddl_dataset_load("fashion-mnist", "/nonexistent/data", &tr, &te), DDL_STATUS_NOT_FOUND,
         "`dir`");
  CHECK(nb == NULL && set == NULL && tr == NULL && te == NULL, "outputs NULL on failure");
  /* Changing the runtime once set up. */
  EXPECT(ddl_runtime_init(NULL, DDL_PROVIDER_CPU, 2), DDL_STATUS_RUNTIME_CONFIG, "already");
  /* The copy variant of the message. */
  char small[6];
  size_t full = ddl_last_error_copy(small, sizeof small);
  CHECK(full == strlen(ddl_last_error()) && strlen(small) == 5, "truncating copy");
  CHECK(strcmp(ddl_status_name(12345), "DDL_STATUS_UNKNOWN") == 0, "unknown status name");
}

struct progress {
  uint64_t calls;
  uint64_t last_step;
  uint64_t total;
  uint64_t stop_at;
};

static int on_progress(void* user, uint64_t step, uint64_t total) {
  struct progress* p = user;
  p->calls++;
  p->last_step = step;
  p->total = total;
  return step >= p->stop_at;
}

static void test_flow(DdlBundle* b) {
  DdlDataset* train = make_dataset(60, 1);
  DdlDataset* test = make_dataset(30, 2);
  DdlParams* init = NULL;
  OK(ddl_params_init(b, 0, &init));
  DdlTrainConfig* cfg = NULL;
  OK(ddl_train_config_p_real(10, 3, &cfg));
  OK(ddl_train_config_set_batch_size(cfg, 16));
  OK(ddl_train_config_set_lr(cfg, 0.05f));
  EXPECT(ddl_train_config_set_momentum(cfg, 1.5f), DDL_STATUS_INVALID_ARGUMENT, "`momentum`");
  struct progress prog = {0, 0, 0, UINT64_MAX};
  DdlParams* trained = NULL;
  char* report = NULL;
  OK(ddl_train(b, init, train, cfg, on_progress, &prog, &trained, &report));
  CHECK(prog.calls == 41 && prog.last_step == 40 && prog.total == 40, "progress %llu calls",
        (unsigned long long)prog.calls);
  CHECK(report != NULL && strstr(report, "\"steps\":40") != NULL, "report %s", report);
  ddl_string_free(report);
  double acc = 0, loss = 0, acc0 = 0;
  OK(ddl_evaluate(b, trained, test, &acc, &loss, NULL));
  OK(ddl_evaluate(b, init, test, &acc0, NULL, NULL));
  CHECK(acc > 0.9 && acc > acc0 && isfinite(loss), "accuracy %f (before %f)", acc, acc0);

  /* Cancellation: no result, status CANCELLED. */
  struct progress stop = {0, 0, 0, 2};
  DdlParams* none = NULL;
  EXPECT(ddl_train(b, init, train, cfg, on_progress, &stop, &none, NULL), DDL_STATUS_CANCELLED,
         "step 2");
  CHECK(none == NULL && stop.calls == 3, "cancelled after 3 callbacks, got %llu",
        (unsigned long long)stop.calls);

  /* Parameters survive a file round trip. */
  char path[4200];
  snprintf(path, sizeof path, "%s/trained.safetensors", tmp_dir);
  OK(ddl_params_save(b, trained, path));
  DdlParams* loaded = NULL;
  OK(ddl_params_load(b, path, &loaded));
  double acc2 = 0;
  OK(ddl_evaluate(b, loaded, test, &acc2, NULL, NULL));
  CHECK(acc2 == acc, "loaded params evaluate the same (%f vs %f)", acc2, acc);

  /* A distilled set: write, read, train on it. */
  DdlDataset* small = NULL;
  OK(ddl_dataset_class_balanced(train, 2, 0, &small));
  float lr = 0.03f;
  DdlDistilledSet* set = NULL;
  OK(ddl_distilled_create(small, &lr, "{\"method\": \"random\", \"ipc\": 2}", &set));
  snprintf(path, sizeof path, "%s/set.safetensors", tmp_dir);
  OK(ddl_distilled_write(set, path));
  DdlDistilledSet* back = NULL;
  OK(ddl_distilled_read(path, &back));
  bool has = false;
  float got = 0;
  OK(ddl_distilled_lr(back, &has, &got));
  CHECK(has && got == lr, "learned lr %f", got);
  DdlDataset* distilled = NULL;
  OK(ddl_distilled_data(back, &distilled));
  size_t n = 0;
  OK(ddl_dataset_len(distilled, &n));
  CHECK(n == 6, "2 per class x 3 classes, got %zu", n);
  char* summary = NULL;
  OK(ddl_standard_evaluation(b, distilled, test, 2, 2, got, 0, NULL, NULL, &summary));
  CHECK(summary != NULL && strstr(summary, "\"accuracies\"") != NULL, "summary %s", summary);
  ddl_string_free(summary);

  ddl_distilled_free(set);
  ddl_distilled_free(back);
  ddl_dataset_free(distilled);
  ddl_dataset_free(small);
  ddl_params_free(loaded);
  ddl_params_free(trained);
  ddl_params_free(init);
  ddl_train_config_free(cfg);
  ddl_dataset_free(train);
  ddl_dataset_free(test);
}

/* One thread's whole job, on handles of its own. */
struct job {
  double accuracy;
  float checksum;
  int failed;
};

static void* worker(void* arg) {
  struct job* job = arg;
  char path[4200];
  bundle_path(path, sizeof path, "tiny-1x8x8");
  DdlBundle* b = NULL;
  DdlStatus s = ddl_bundle_open(path, &b);
  if (s != DDL_STATUS_OK) {
    fprintf(stderr, "worker: %s\n", ddl_last_error());
    job->failed = 1;
    return NULL;
  }
  /* A failure on this thread leaves a message no other thread can overwrite. */
  size_t n = 0;
  ddl_dataset_len(NULL, &n);
  DdlDataset* train = make_dataset(45, 7);
  DdlDataset* test = make_dataset(30, 8);
  DdlParams* init = NULL;
  DdlTrainConfig* cfg = NULL;
  DdlParams* out = NULL;
  s = ddl_params_init(b, 11, &init);
  if (s == DDL_STATUS_OK) s = ddl_train_config_p_dist(25, 0, &cfg);
  if (s == DDL_STATUS_OK) s = ddl_train(b, init, train, cfg, NULL, NULL, &out, NULL);
  if (s == DDL_STATUS_OK) s = ddl_evaluate(b, out, test, &job->accuracy, NULL, NULL);
  if (s == DDL_STATUS_OK) {
    size_t numel = 0;
    ddl_params_numel(out, &numel);
    float* flat = malloc(numel * sizeof(float));
    s = ddl_params_get_flat(out, flat, numel);
    for (size_t i = 0; i < numel; i++) job->checksum += flat[i] * (float)(i % 7 + 1);
    free(flat);
  }
  if (s != DDL_STATUS_OK) {
    fprintf(stderr, "worker: %s: %s\n", ddl_status_name(s), ddl_last_error());
    job->failed = 1;
  } else if (strstr(ddl_last_error(), "ddl_dataset_len") == NULL) {
    fprintf(stderr, "worker: own message lost: %s\n", ddl_last_error());
    job->failed = 1;
  }
  ddl_params_free(out);
  ddl_params_free(init);
  ddl_train_config_free(cfg);
  ddl_dataset_free(train);
  ddl_dataset_free(test);
  ddl_bundle_free(b);
  return NULL;
}

static void test_threads(void) {
  enum { THREADS = 4 };
  struct job reference = {0, 0, 0};
  worker(&reference);
  CHECK(!reference.failed, "single-threaded reference run");
  pthread_t tids[THREADS];
  struct job jobs[THREADS];
  memset(jobs, 0, sizeof jobs);
  for (int i = 0; i < THREADS; i++) pthread_create(&tids[i], NULL, worker, &jobs[i]);
  for (int i = 0; i < THREADS; i++) pthread_join(tids[i], NULL);
  for (int i = 0; i < THREADS; i++) {
    CHECK(!jobs[i].failed, "thread %d failed", i);
    CHECK(jobs[i].checksum == reference.checksum && jobs[i].accuracy == reference.accuracy,
          "thread %d: checksum %f accuracy %f, reference %f %f", i, jobs[i].checksum,
          jobs[i].accuracy, reference.checksum, reference.accuracy);
  }
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s MODELS_DIR TMP_DIR\n", argv[0]);
    return 2;
  }
  snprintf(models_dir, sizeof models_dir, "%s", argv[1]);
  snprintf(tmp_dir, sizeof tmp_dir, "%s", argv[2]);
  CHECK(strcmp(ddl_version(), DDL_VERSION_STRING) == 0, "library %s, header %s", ddl_version(),
        DDL_VERSION_STRING);

  test_before_init();
  OK(ddl_runtime_init(NULL, DDL_PROVIDER_CPU, 1));
  char path[4200];
  bundle_path(path, sizeof path, "tiny-1x8x8");
  DdlBundle* b = NULL;
  OK(ddl_bundle_open(path, &b));
  if (b == NULL) return 1;
  test_misuse(b);
  test_flow(b);
  ddl_bundle_free(b);
  test_threads();
  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("c_api_test: all checks passed\n");
  return 0;
}
