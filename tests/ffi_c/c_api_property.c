/* A property test of the C ABI's argument checks: seeded random sequences of calls over every
 * function of include/ddlens.h, with random NULLs, lengths (0, too small, too large, lengths that
 * disagree with shapes), enum values (valid and out of range), strings (valid and missing paths,
 * "", invalid UTF-8) and handles: live ones, and slots whose handle was freed and then set to
 * NULL (never a dangling pointer: that is the one misuse the library cannot check).
 *
 * After every call:
 *  - the status is a documented DDL_STATUS_* value, and never DDL_STATUS_PANIC (a caught bug);
 *  - a failure leaves a non-empty message on the thread that names the function, and
 *    ddl_last_error_copy agrees with ddl_last_error; a success leaves the message alone;
 *  - a NULL required pointer or handle is a failure, never a success;
 *  - handle and string outputs are NULL after a failure and set after a success; scalar
 *    outputs are written only on success (docs/c-api.md, "Outputs on failure");
 *  - what the header promises per function: buffer sizes (DDL_STATUS_BUFFER_TOO_SMALL exactly
 *    when a capacity is short), sizes and shapes that match what made the handle, the rank of
 *    ddl_params_tensor_shape on a short buffer, cancellation by the progress callback.
 * The process must not abort, and (under AddressSanitizer, as tests/ffi/c.rs builds it) touch no
 * memory it should not and leak nothing: every handle and string is freed at the end.
 *
 * Long calls (training, distillation, experts, analyses) run on tiny data (8x8 images, a few
 * dozen at most) with a progress callback that cancels them after a few steps, so a run of the
 * default length takes seconds; a NULL callback is passed only when the call fails on its
 * arguments before any work.
 *
 * Every function of the header is called: the first calls go through all of them in a random
 * order, then each call picks one at random (constructors more often). The first tenth of the
 * calls (at most 200) run before ddl_runtime_init succeeds. The program prints the functions it
 * called (`covered:`) and those it cannot call (`skipped:`, with a reason each), which
 * tests/ffi/c.rs compares with the header. Files are written in TMP_DIR only (the process works
 * there); the models are only read.
 *
 * usage: c_api_property MODELS_DIR TMP_DIR [SEED [CALLS]]   (defaults: seed 1, 3000 calls)
 * C_API_PROPERTY_TRACE=1 prints every call, its time and its status on stderr. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, strdup, chdir under -std=c11 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ddlens.h"

#define DEFAULT_CALLS 3000

/* ------------------------------------------------------------------------------------------ */
/* Every function of the header, in its order. */
#define FUNCTIONS(X)                                                                          \
  X(ddl_version)                                                                             \
  X(ddl_last_error)                                                                          \
  X(ddl_last_error_copy)                                                                     \
  X(ddl_status_name)                                                                         \
  X(ddl_string_free)                                                                         \
  X(ddl_runtime_init)                                                                        \
  X(ddl_runtime_is_initialized)                                                              \
  X(ddl_runtime_describe)                                                                    \
  X(ddl_bundle_open)                                                                         \
  X(ddl_bundle_free)                                                                         \
  X(ddl_bundle_describe)                                                                     \
  X(ddl_bundle_input_shape)                                                                  \
  X(ddl_bundle_num_classes)                                                                  \
  X(ddl_bundle_feature_dim)                                                                  \
  X(ddl_bundle_num_parameters)                                                               \
  X(ddl_bundle_normalization)                                                                \
  X(ddl_bundle_forward)                                                                      \
  X(ddl_bundle_grad)                                                                         \
  X(ddl_params_init)                                                                         \
  X(ddl_params_from_flat)                                                                    \
  X(ddl_params_load)                                                                         \
  X(ddl_params_save)                                                                         \
  X(ddl_params_clone)                                                                        \
  X(ddl_params_free)                                                                         \
  X(ddl_params_numel)                                                                        \
  X(ddl_params_get_flat)                                                                     \
  X(ddl_params_set_flat)                                                                     \
  X(ddl_params_tensor_shape)                                                                 \
  X(ddl_params_describe)                                                                     \
  X(ddl_params_get_tensor)                                                                   \
  X(ddl_params_set_tensor)                                                                   \
  X(ddl_dataset_load)                                                                        \
  X(ddl_dataset_from_memory)                                                                 \
  X(ddl_dataset_free)                                                                        \
  X(ddl_dataset_len)                                                                         \
  X(ddl_dataset_num_classes)                                                                 \
  X(ddl_dataset_input_shape)                                                                 \
  X(ddl_dataset_get_images)                                                                  \
  X(ddl_dataset_get_labels)                                                                  \
  X(ddl_dataset_class_balanced)                                                              \
  X(ddl_dataset_select)                                                                      \
  X(ddl_dataset_describe)                                                                    \
  X(ddl_distilled_read)                                                                      \
  X(ddl_distilled_write)                                                                     \
  X(ddl_distilled_create)                                                                    \
  X(ddl_distilled_free)                                                                      \
  X(ddl_distilled_data)                                                                      \
  X(ddl_distilled_lr)                                                                        \
  X(ddl_distilled_describe)                                                                  \
  X(ddl_train_config_standard_eval)                                                          \
  X(ddl_train_config_p_dist)                                                                 \
  X(ddl_train_config_p_real)                                                                 \
  X(ddl_train_config_from_json)                                                              \
  X(ddl_train_config_to_json)                                                                \
  X(ddl_train_config_total_steps)                                                            \
  X(ddl_train_config_free)                                                                   \
  X(ddl_train_config_set_epochs)                                                             \
  X(ddl_train_config_set_max_steps)                                                          \
  X(ddl_train_config_set_batch_size)                                                         \
  X(ddl_train_config_set_lr)                                                                 \
  X(ddl_train_config_set_momentum)                                                           \
  X(ddl_train_config_set_weight_decay)                                                       \
  X(ddl_train_config_set_seed)                                                               \
  X(ddl_train_config_set_schedule_constant)                                                  \
  X(ddl_train_config_set_schedule_step)                                                      \
  X(ddl_train_config_set_dsa)                                                                \
  X(ddl_train)                                                                               \
  X(ddl_evaluate)                                                                            \
  X(ddl_standard_evaluation)                                                                 \
  X(ddl_standard_evaluation_augmented)                                                       \
  X(ddl_distill_config_new)                                                                  \
  X(ddl_distill_config_free)                                                                 \
  X(ddl_distill_config_describe)                                                             \
  X(ddl_distill_config_set_iterations)                                                       \
  X(ddl_distill_config_set_seed)                                                             \
  X(ddl_distill_config_set_lr_img)                                                           \
  X(ddl_distill_config_set_momentum)                                                         \
  X(ddl_distill_config_set_batch_real)                                                       \
  X(ddl_distill_config_set_syn_steps)                                                        \
  X(ddl_distill_config_set_batch_syn)                                                        \
  X(ddl_distill_config_set_lr_lr)                                                            \
  X(ddl_distill_config_set_dsa)                                                              \
  X(ddl_distill_config_set_experts)                                                          \
  X(ddl_distill_config_set_expert_epochs_ahead)                                              \
  X(ddl_distill_config_set_max_start_epoch)                                                  \
  X(ddl_distill_config_set_window)                                                           \
  X(ddl_distill_config_set_learn_lr)                                                         \
  X(ddl_distill_config_set_herding_params)                                                   \
  X(ddl_distill_config_set_checkpoint)                                                       \
  X(ddl_distill_config_set_resume)                                                           \
  X(ddl_distill)                                                                             \
  X(ddl_generate_experts)                                                                    \
  X(ddl_analysis_names)                                                                      \
  X(ddl_analyze)                                                                             \
  X(ddl_analyze_pixels)                                                                      \
  X(ddl_analyze_mixing)                                                                      \
  X(ddl_analyze_sensitivity)                                                                 \
  X(ddl_analyze_curvature)                                                                   \
  X(ddl_analyze_recognition)                                                                 \
  X(ddl_analyze_agreement)                                                                   \
  X(ddl_analyze_recognition_over_training)                                                   \
  X(ddl_analyze_influence)

/* Functions that cannot be called with random arguments, with the reason; tests/ffi/c.rs
 * counts them as accounted for. Empty: every function is called. */
static const char* const skipped[][2] = {{NULL, NULL}};

#define AS_ID(f) ID_##f,
enum { FUNCTIONS(AS_ID) NUM_FUNCS };
#define AS_NAME(f) #f,
static const char* const func_names[NUM_FUNCS] = {FUNCTIONS(AS_NAME)};

/* ------------------------------------------------------------------------------------------ */
/* Randomness: splitmix64. */
static uint64_t rng_state;
static uint64_t seed_arg = 1;

static uint64_t next_u64(void) {
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static uint64_t below(uint64_t n) { return n ? next_u64() % n : 0; }
static int chance(unsigned percent) { return below(100) < percent; }
/* One of the listed values of `type`, uniformly. */
#define PICK(type, ...) \
  ((type[]){__VA_ARGS__})[below(sizeof((type[]){__VA_ARGS__}) / sizeof(type))]

static size_t pick_size(void) {
  return PICK(size_t, 0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 64, 65, 255, 256, (size_t)1 << 31,
              (size_t)1 << 40, SIZE_MAX / 2, SIZE_MAX - 1, SIZE_MAX);
}
static uint64_t pick_u64(void) {
  return PICK(uint64_t, 0, 1, 2, 3, 5, 8, 20, 100, 1000, (uint64_t)1 << 32, (uint64_t)1 << 40,
              UINT64_MAX / 2, UINT64_MAX);
}
static float pick_f32(void) {
  return PICK(float, 0.0f, -0.0f, 1e-3f, 0.01f, 0.05f, 0.1f, 0.5f, 0.9f, 0.99f, 1.0f, 2.0f, 10.0f,
              -1.0f, 1e30f, -1e30f, 1e-45f, NAN, INFINITY, -INFINITY);
}
/* A small positive count most of the time, anything otherwise. */
static size_t small_size(size_t lo, size_t hi) {
  return chance(75) ? lo + (size_t)below(hi - lo + 1) : pick_size();
}
static uint64_t small_u64(uint64_t lo, uint64_t hi) {
  return chance(75) ? lo + below(hi - lo + 1) : pick_u64();
}
static float rate(float good) { return chance(70) ? good : pick_f32(); }
static uint32_t pick_enum(uint32_t valid_count) {
  return chance(80) ? (uint32_t)below(valid_count)
                    : PICK(uint32_t, valid_count, valid_count + 1, 99, 0x80000000u, UINT32_MAX);
}
static bool pick_bool(void) { return chance(50); }

/* ------------------------------------------------------------------------------------------ */
/* Checks and accounting. */
static int failures = 0;
static unsigned long calls = 0, nonok = 0, call_counts[NUM_FUNCS];
static unsigned long status_counts[32];
static double seconds[NUM_FUNCS];
static int cur_fn = -1;
static char* msg_before = NULL;
static struct timespec t_start;
static int must_fail; /* set when the call has a NULL required pointer or handle */

static void report(const char* file, int line, const char* cond, const char* fmt, ...) {
  fprintf(stderr, "%s:%d: seed %llu, call %lu (%s): CHECK(%s) failed: ", file, line,
          (unsigned long long)seed_arg, calls, cur_fn >= 0 ? func_names[cur_fn] : "-", cond);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n  last error: %s\n", ddl_last_error());
  if (++failures >= 100) {
    fprintf(stderr, "too many failures, stopping\n");
    exit(1);
  }
}
#define CHECK(cond, ...)                                 \
  do {                                                   \
    if (!(cond)) report(__FILE__, __LINE__, #cond, __VA_ARGS__); \
  } while (0)

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Before a call: remember the thread's message (a success must leave it alone). */
static void begin(int fn) {
  cur_fn = fn;
  must_fail = 0;
  free(msg_before);
  msg_before = strdup(ddl_last_error());
  clock_gettime(CLOCK_MONOTONIC, &t_start);
}

static double last_seconds;
static void account(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  last_seconds = (double)(t.tv_sec - t_start.tv_sec) + (double)(t.tv_nsec - t_start.tv_nsec) * 1e-9;
  seconds[cur_fn] += last_seconds;
  calls++;
  call_counts[cur_fn]++;
}

/* After a call returning a status: the properties every call shares. */
static int trace = 0; /* C_API_PROPERTY_TRACE=1: one line per call on stderr */

static DdlStatus end(DdlStatus s) {
  account();
  if (trace)
    fprintf(stderr, "#%lu %.3fs %s -> %s %.160s\n", calls, last_seconds, func_names[cur_fn],
            ddl_status_name(s), s ? ddl_last_error() : "");
  const char* name = func_names[cur_fn];
  status_counts[s < 31 ? s : 31]++;
  CHECK(s <= DDL_STATUS_INTERNAL, "status %u is not a documented DDL_STATUS_* value", (unsigned)s);
  CHECK(s != DDL_STATUS_PANIC, "DDL_STATUS_PANIC: a bug inside ddlens");
  if (s == DDL_STATUS_OK) {
    CHECK(!must_fail, "succeeded although a required pointer or handle was NULL");
    CHECK(strcmp(ddl_last_error(), msg_before) == 0,
          "a successful call changed the message (was \"%s\")", msg_before);
    return s;
  }
  nonok++;
  const char* msg = ddl_last_error();
  CHECK(msg != NULL, "%s with a NULL message", ddl_status_name(s));
  if (msg == NULL) return s;
  size_t n = strlen(name);
  CHECK(msg[0] != '\0', "%s with an empty message", ddl_status_name(s));
  CHECK(strncmp(msg, name, n) == 0 && msg[n] == ':', "%s: the message does not name the function",
        ddl_status_name(s));
  CHECK(ddl_last_error_copy(NULL, 0) == strlen(msg), "ddl_last_error_copy disagrees on the length");
  return s;
}

/* After a call without a status (void, strings, flags): it must not touch the message. */
static void end_plain(void) {
  account();
  status_counts[DDL_STATUS_OK]++;
  CHECK(strcmp(ddl_last_error(), msg_before) == 0, "the call changed the message (was \"%s\")",
        msg_before);
}

#define CALL(f, ...) (begin(ID_##f), end(f(__VA_ARGS__)))

/* ------------------------------------------------------------------------------------------ */
/* Outputs. A handle or string output starts as SENT, so that "set to NULL" and "written" can be
 * told apart from "left alone". */
static char sentinel_object;
#define SENT ((void*)&sentinel_object)
static const size_t SIZE_SENT = (size_t)0x5eed5eed5eed5eedull;
static const float F32_SENT = -12345.5f;
static const double F64_SENT = -12345.5;

/* A handle output `v` after a call that got a pointer to it when `given`. */
static int out_ok(DdlStatus s, int given, const void* v, const char* what) {
  if (!given) return 0;
  if (s == DDL_STATUS_OK) {
    CHECK(v != NULL && v != SENT, "output `%s` not set on success", what);
    return v != NULL && v != SENT;
  }
  CHECK(v == NULL, "output `%s` is %p after %s, not NULL", what, v, ddl_status_name(s));
  return 0;
}

/* A pointer argument: NULL with probability `percent`, else `p`; a NULL marks the call as one
 * that must fail when the argument is required. */
static void* maybe_null(void* p, unsigned percent, int required) {
  if (chance(percent)) {
    if (required) must_fail = 1;
    return NULL;
  }
  return p;
}
#define OUT(p) maybe_null((p), 6, 1)
#define OPT_OUT(p) maybe_null((p), 30, 0)

/* ------------------------------------------------------------------------------------------ */
/* The table of handles: SLOTS per type, each live, or NULL (never used, or freed then NULLed). */
enum { T_BUNDLE, T_PARAMS, T_DATASET, T_DSET, T_TCFG, T_DCFG, T_STRING, T_COUNT };
#define SLOTS 4

enum { M_TINY, M_MAXPOOL, M_MLP, M_COUNT, M_UNKNOWN = -1 };
static const struct {
  const char* dir;
  size_t c, h, w, classes, feature_dim;
} models[M_COUNT] = {{"tiny-1x8x8", 1, 8, 8, 3, 64},
                     {"tiny-maxpool-1x8x8", 1, 8, 8, 3, 16},
                     {"mlp-1x28x28", 1, 28, 28, 10, 128}};
static size_t model_numel[M_COUNT]; /* learned from the first answer, then checked */

enum { D_RANDOM, D_HERDING, D_DM, D_DC, D_DSA, D_MTT, D_BPTT, D_COUNT, D_UNKNOWN = -1 };

struct slot {
  void* h;
  int model; /* bundle, params: M_* */
  /* dataset: what made it (-1 unknown) */
  long len, c, hh, w, classes;
  /* distill config */
  int method;
  uint64_t iterations, syn_steps;
};
static struct slot tab[T_COUNT][SLOTS];

static void free_handle(int type, void* h) {
  switch (type) {
    case T_BUNDLE: ddl_bundle_free(h); break;
    case T_PARAMS: ddl_params_free(h); break;
    case T_DATASET: ddl_dataset_free(h); break;
    case T_DSET: ddl_distilled_free(h); break;
    case T_TCFG: ddl_train_config_free(h); break;
    case T_DCFG: ddl_distill_config_free(h); break;
    case T_STRING: ddl_string_free(h); break;
  }
}

/* Frees a slot's handle and sets it to NULL. */
static void clear_slot(int type, int i) {
  free_handle(type, tab[type][i].h);
  memset(&tab[type][i], 0, sizeof tab[type][i]);
  tab[type][i].model = M_UNKNOWN;
  tab[type][i].len = tab[type][i].c = tab[type][i].hh = tab[type][i].w = tab[type][i].classes = -1;
  tab[type][i].method = D_UNKNOWN;
}

/* Stores a new handle in a random slot (freeing what was there); returns the slot. */
static struct slot* store(int type, void* h) {
  int i = (int)below(SLOTS);
  clear_slot(type, i);
  tab[type][i].h = h;
  return &tab[type][i];
}

/* A handle argument: mostly a live one, sometimes a NULL slot (never used or freed) or NULL.
 * Returns the slot index or -1 for an explicit NULL. */
static int pick_slot(int type) {
  if (chance(5)) return -1;
  int live[SLOTS], n = 0;
  for (int i = 0; i < SLOTS; i++)
    if (tab[type][i].h) live[n++] = i;
  if (n > 0 && chance(90)) return live[below((uint64_t)n)];
  return (int)below(SLOTS);
}
static void* handle_at(int type, int slot, int required);
/* Picks a slot of `type` into `*slot` and returns its handle (a required argument). */
static void* handle_pick(int type, int* slot) {
  *slot = pick_slot(type);
  return handle_at(type, *slot, 1);
}
static void* handle_at(int type, int slot, int required) {
  void* h = slot < 0 ? NULL : tab[type][slot].h;
  if (h == NULL && required) must_fail = 1;
  return h;
}
static const struct slot* slot_info(int type, int slot) {
  static struct slot none = {NULL, M_UNKNOWN, -1, -1, -1, -1, -1, D_UNKNOWN, 0, 0};
  return slot < 0 || tab[type][slot].h == NULL ? &none : &tab[type][slot];
}
/* A required handle argument, picked at random. */
#define HANDLE(type, slot_var) handle_pick((type), &(slot_var))

/* A JSON string output after a call: checked, then kept in the string table or freed. */
static void take_json(DdlStatus s, int given, char* json, const char* what) {
  if (!out_ok(s, given, json, what)) return;
  CHECK(json[0] == '{' || json[0] == '[', "`%s` is not JSON: %.80s", what, json);
  if (chance(50))
    store(T_STRING, json);
  else
    ddl_string_free(json);
}

/* ------------------------------------------------------------------------------------------ */
/* Buffers: inputs read by the library and outputs it writes, never shorter than the length
 * passed with them (a length beyond a buffer is passed only with NULL). */
#define SCR 131072 /* floats: more than the largest model's parameters (mlp-1x28x28) */
static float *fin, *fout, *fout2;
static int64_t labels_buf[512];
static size_t sizes_buf[64];
static uint64_t u64_buf[16];
#define LABELS_CAP (sizeof labels_buf / sizeof labels_buf[0])

/* `buf` when `len` elements fit in `cap` (and mostly then), else NULL (with the call marked as
 * one that must fail when len > 0 and the buffer is required). */
static void* buffer_for(void* buf, size_t len, size_t cap, int required) {
  if (len <= cap && chance(94)) return buf;
  if (required && len > 0) must_fail = 1;
  return NULL;
}

/* The learnable 3-class problem of the other C tests: class i%3 lights two rows of 8x8. */
static void fill_images(float* x, size_t n, size_t per_image) {
  uint32_t state = (uint32_t)next_u64() | 1u;
  for (size_t i = 0; i < n; i++)
    for (size_t p = 0; p < per_image; p++) {
      state = state * 1664525u + 1013904223u;
      float noise = ((float)(state >> 8) / 16777216.0f - 0.5f) * 0.6f;
      x[i * per_image + p] = noise + (((p % 64) / 16) == i % 3 ? 2.0f : 0.0f);
    }
}
static void fill_labels(size_t n, size_t classes) {
  for (size_t i = 0; i < n && i < LABELS_CAP; i++) labels_buf[i] = (int64_t)(i % (classes ? classes : 1));
  if (n > 0 && n <= LABELS_CAP && chance(5))
    labels_buf[below(n)] = PICK(int64_t, -1, (int64_t)classes, INT64_MAX, INT64_MIN);
}

/* ------------------------------------------------------------------------------------------ */
/* Strings and paths. Nothing is ever written outside TMP_DIR (the process works there). */
static char models_dir[4096], tmp_dir[4096];
static const char BAD_UTF8[] = "\xff\xfe\xc3(";

static const char* pathf(const char* fmt, ...) {
  static char bufs[16][4400];
  static int next = 0;
  char* b = bufs[next++ % 16];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b, sizeof bufs[0], fmt, ap);
  va_end(ap);
  return b;
}
static const char* model_path(int m) { return pathf("%s/%s", models_dir, models[m].dir); }
static unsigned k3(void) { return (unsigned)below(3); }

/* A string argument: a pick from `good` (weighted), else one of the hostile ones. */
static const char* hostile_string(int required) {
  int r = (int)below(4);
  if (r == 0) {
    if (required) must_fail = 1;
    return NULL;
  }
  if (r == 1) return "";
  if (r == 2) return BAD_UTF8;
  return pathf("%s/missing/nothing-here", tmp_dir);
}

/* A file to read: written by this run, or not what the call wants, or missing. */
static const char* read_path(const char* kind) {
  if (chance(20)) return hostile_string(1);
  switch (below(7)) {
    case 0: return pathf("%s/params-%u.safetensors", tmp_dir, k3());
    case 1: return pathf("%s/set-%u.safetensors", tmp_dir, k3());
    case 2: return pathf("%s/%s-%u.safetensors", tmp_dir, kind, k3());
    case 3: return pathf("%s/tiny-1x8x8/manifest.json", models_dir);
    case 4: return pathf("%s/blocker", tmp_dir); /* an empty file */
    case 5: return pathf("%s/garbage.safetensors", tmp_dir);
    default: return tmp_dir; /* a folder */
  }
}

/* A file to write: in TMP_DIR, or where it cannot be written. */
static const char* write_path(const char* kind) {
  if (chance(15)) return hostile_string(1);
  switch (below(6)) {
    case 0: return tmp_dir;                                /* a folder */
    case 1: return pathf("%s/blocker/sub.safetensors", tmp_dir); /* below a file */
    default: return pathf("%s/%s-%u.safetensors", tmp_dir, kind, k3());
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Progress callbacks: each long call with a callback gets a limit after which it cancels. */
struct progress {
  uint64_t limit, calls, first_step, last_step, last_total;
  int cancelled;
};
static int on_progress(void* user, uint64_t step, uint64_t total) {
  struct progress* p = user;
  if (p->calls == 0) p->first_step = step;
  p->calls++;
  p->last_step = step;
  p->last_total = total;
  if (step >= p->limit) {
    p->cancelled = 1;
    return 1;
  }
  return 0;
}

/* Picks the callback of a long call. `fails_fast`: the arguments are already wrong in a way the
 * call checks before any work, so it may run without a callback. */
static DdlProgressFn pick_progress(struct progress* p, uint64_t limit, int fails_fast,
                                   void** user_data) {
  memset(p, 0, sizeof *p);
  p->limit = limit;
  if (fails_fast && chance(50)) {
    *user_data = chance(50) ? NULL : (void*)p;
    return NULL;
  }
  *user_data = p;
  return on_progress;
}

/* After a long call: cancellation by the callback is DDL_STATUS_CANCELLED, and only then. */
static void check_progress(DdlStatus s, DdlProgressFn f, const struct progress* p, int steps_from_zero) {
  if (f == NULL) {
    CHECK(s != DDL_STATUS_CANCELLED, "cancelled without a callback");
    return;
  }
  if (p->cancelled) CHECK(s == DDL_STATUS_CANCELLED, "the callback cancelled, the call returned %s", ddl_status_name(s));
  if (s == DDL_STATUS_CANCELLED) CHECK(p->cancelled, "DDL_STATUS_CANCELLED without a cancel");
  if (steps_from_zero && p->calls > 0) {
    CHECK(p->first_step == 0, "first progress step %llu, not 0", (unsigned long long)p->first_step);
    CHECK(p->last_step <= p->last_total, "step %llu of %llu", (unsigned long long)p->last_step,
          (unsigned long long)p->last_total);
  }
}

/* ------------------------------------------------------------------------------------------ */
/* The runtime. */
static int runtime_ready = 0;

static void act_ddl_version(void) {
  begin(ID_ddl_version);
  const char* v = ddl_version();
  end_plain();
  CHECK(v != NULL && strcmp(v, DDL_VERSION_STRING) == 0, "version %s", v ? v : "(null)");
}

static void act_ddl_last_error(void) {
  begin(ID_ddl_last_error);
  const char* m = ddl_last_error();
  end_plain();
  CHECK(m != NULL, "ddl_last_error() is NULL");
}

static void act_ddl_last_error_copy(void) {
  char buf[64];
  memset(buf, 'x', sizeof buf);
  size_t cap = chance(70) ? (size_t)below(sizeof buf + 1) : pick_size();
  char* b = cap <= sizeof buf && chance(85) ? buf : NULL;
  begin(ID_ddl_last_error_copy);
  size_t full = ddl_last_error_copy(b, cap);
  end_plain();
  const char* m = ddl_last_error();
  CHECK(full == strlen(m), "returned %zu, the message has %zu bytes", full, strlen(m));
  if (b && cap > 0) {
    size_t n = full < cap - 1 ? full : cap - 1;
    CHECK(buf[n] == '\0' && strncmp(buf, m, n) == 0, "copy of %zu bytes into %zu", full, cap);
  } else if (b == buf) {
    CHECK(buf[0] == 'x', "capacity 0 wrote into the buffer");
  }
}

static void act_ddl_status_name(void) {
  uint32_t v = chance(70) ? (uint32_t)below(20) : PICK(uint32_t, 17, 255, 0x80000000u, UINT32_MAX);
  begin(ID_ddl_status_name);
  const char* n = ddl_status_name(v);
  end_plain();
  CHECK(n != NULL, "NULL name");
  if (n == NULL) return;
  if (v <= DDL_STATUS_INTERNAL)
    CHECK(strncmp(n, "DDL_STATUS_", 11) == 0 && strcmp(n, "DDL_STATUS_UNKNOWN") != 0, "%u is %s", v, n);
  else
    CHECK(strcmp(n, "DDL_STATUS_UNKNOWN") == 0, "%u is %s", v, n);
}

static void act_ddl_string_free(void) {
  int slot = chance(20) ? -1 : (int)below(SLOTS);
  begin(ID_ddl_string_free);
  ddl_string_free(slot < 0 ? NULL : tab[T_STRING][slot].h);
  end_plain();
  if (slot >= 0) tab[T_STRING][slot].h = NULL;
}

static void act_ddl_runtime_init(void) {
  const char* path = NULL;
  uint32_t provider = DDL_PROVIDER_CPU, threads = 1;
  if (!runtime_ready) {
    /* Before the set-up proper, only calls that must fail: a bad provider or library. */
    if (chance(50))
      provider = PICK(uint32_t, 3, 99, UINT32_MAX);
    else
      path = chance(50) ? BAD_UTF8 : pathf("%s/missing/libonnxruntime.so", tmp_dir);
    threads = (uint32_t)pick_size();
  } else {
    if (chance(40)) path = PICK(const char*, "", BAD_UTF8, pathf("%s/missing/lib.so", tmp_dir),
                                pathf("%s/blocker", tmp_dir));
    provider = chance(60) ? DDL_PROVIDER_CPU : pick_enum(3);
    threads = chance(60) ? 1 : PICK(uint32_t, 0, 2, 64, UINT32_MAX);
  }
  DdlStatus s = CALL(ddl_runtime_init, path, provider, threads);
  if (!runtime_ready) CHECK(s != DDL_STATUS_OK, "a bad set-up succeeded");
  if (runtime_ready && path == NULL && provider == DDL_PROVIDER_CPU && threads == 1)
    CHECK(s == DDL_STATUS_OK, "the same settings again: %s", ddl_status_name(s));
  if (runtime_ready && s == DDL_STATUS_OK)
    CHECK(path == NULL && provider == DDL_PROVIDER_CPU && threads == 1, "other settings accepted");
}

static void act_ddl_runtime_is_initialized(void) {
  begin(ID_ddl_runtime_is_initialized);
  bool on = ddl_runtime_is_initialized();
  end_plain();
  CHECK(on == (runtime_ready != 0), "is_initialized %d", on);
}

static void act_ddl_runtime_describe(void) {
  char* json = SENT;
  begin(ID_ddl_runtime_describe);
  char** o = OUT(&json);
  DdlStatus s = end(ddl_runtime_describe(o));
  if (!runtime_ready) CHECK(s != DDL_STATUS_OK, "described before set-up");
  if (runtime_ready && o) CHECK(s == DDL_STATUS_OK, "describe failed");
  take_json(s, o != NULL, json, "out_json");
}

/* ------------------------------------------------------------------------------------------ */
/* Bundles. */
static void act_ddl_bundle_open(void) {
  int model = M_UNKNOWN;
  const char* path;
  switch (below(10)) {
    case 0: case 1: case 2: case 3: model = M_TINY; path = model_path(model); break;
    case 4: model = M_MAXPOOL; path = model_path(model); break;
    case 5: model = M_MLP; path = model_path(model); break;
    case 6: path = PICK(const char*, "tiny-1x8x8", "no-such-model", "zoo:dm-ipc1"); break;
    case 7: path = PICK(const char*, models_dir, tmp_dir, pathf("%s/tiny-1x8x8/manifest.json", models_dir)); break;
    default: path = hostile_string(1); break;
  }
  DdlBundle* b = SENT;
  begin(ID_ddl_bundle_open);
  DdlBundle** o = OUT(&b);
  if (path == NULL) must_fail = 1;
  DdlStatus s = end(ddl_bundle_open(path, o));
  if (!runtime_ready) CHECK(s != DDL_STATUS_OK, "opened before set-up");
  /* A committed bundle opens (when the models folder has it: DDLENS_TEST_MODELS may differ). */
  if (runtime_ready && o && model != M_UNKNOWN && access(pathf("%s/manifest.json", path), R_OK) == 0)
    CHECK(s == DDL_STATUS_OK, "cannot open %s", path);
  if (out_ok(s, o != NULL, b, "out")) {
    if (path && strcmp(path, "tiny-1x8x8") == 0) model = M_TINY;
    store(T_BUNDLE, b)->model = model;
  }
}

static void act_ddl_bundle_free(void) {
  int slot = chance(15) ? -1 : (int)below(SLOTS);
  begin(ID_ddl_bundle_free);
  ddl_bundle_free(slot < 0 ? NULL : tab[T_BUNDLE][slot].h);
  end_plain();
  if (slot >= 0) tab[T_BUNDLE][slot].h = NULL;
}

static void act_ddl_bundle_describe(void) {
  int bs;
  char* json = SENT;
  begin(ID_ddl_bundle_describe);
  const DdlBundle* b = HANDLE(T_BUNDLE, bs);
  char** o = OUT(&json);
  DdlStatus s = end(ddl_bundle_describe(b, o));
  take_json(s, o != NULL, json, "out_json");
}

static void act_ddl_bundle_input_shape(void) {
  int bs;
  size_t c = SIZE_SENT, h = SIZE_SENT, w = SIZE_SENT;
  begin(ID_ddl_bundle_input_shape);
  const DdlBundle* b = HANDLE(T_BUNDLE, bs);
  size_t *pc = OUT(&c), *ph = OUT(&h), *pw = OUT(&w);
  DdlStatus s = end(ddl_bundle_input_shape(b, pc, ph, pw));
  int m = slot_info(T_BUNDLE, bs)->model;
  if (s == DDL_STATUS_OK && m != M_UNKNOWN)
    CHECK(c == models[m].c && h == models[m].h && w == models[m].w, "shape %zux%zux%zu", c, h, w);
  if (s != DDL_STATUS_OK) CHECK(c == SIZE_SENT && h == SIZE_SENT && w == SIZE_SENT, "written on failure");
}

static void bundle_scalar(int fn, DdlStatus (*f)(const DdlBundle*, size_t*), int what) {
  int bs;
  size_t v = SIZE_SENT;
  begin(fn);
  const DdlBundle* b = HANDLE(T_BUNDLE, bs);
  size_t* o = OUT(&v);
  DdlStatus s = end(f(b, o));
  int m = slot_info(T_BUNDLE, bs)->model;
  if (s != DDL_STATUS_OK) {
    CHECK(v == SIZE_SENT, "written on failure");
    return;
  }
  if (m == M_UNKNOWN) return;
  if (what == 0) CHECK(v == models[m].classes, "%zu classes", v);
  if (what == 1) CHECK(v == models[m].feature_dim, "feature dim %zu", v);
  if (what == 2) {
    if (model_numel[m] == 0) model_numel[m] = v;
    CHECK(v == model_numel[m], "%zu parameters, earlier %zu", v, model_numel[m]);
  }
}
static void act_ddl_bundle_num_classes(void) { bundle_scalar(ID_ddl_bundle_num_classes, ddl_bundle_num_classes, 0); }
static void act_ddl_bundle_feature_dim(void) { bundle_scalar(ID_ddl_bundle_feature_dim, ddl_bundle_feature_dim, 1); }
static void act_ddl_bundle_num_parameters(void) {
  bundle_scalar(ID_ddl_bundle_num_parameters, ddl_bundle_num_parameters, 2);
}

static void act_ddl_bundle_normalization(void) {
  int bs;
  float mean[8], std[8];
  size_t channels = chance(70) ? 1 : pick_size();
  begin(ID_ddl_bundle_normalization);
  const DdlBundle* b = HANDLE(T_BUNDLE, bs);
  float* pm = buffer_for(mean, channels, 8, 1);
  float* ps = buffer_for(std, channels, 8, 1);
  DdlStatus s = end(ddl_bundle_normalization(b, pm, ps, channels));
  if (s == DDL_STATUS_OK) CHECK(channels == 1 && std[0] > 0.0f, "channels %zu, std %f", channels, std[0]);
}

/* The model of a bundle slot's handle, and its per-example input size (784 when unknown). */
static size_t example_size(int bslot) {
  int m = slot_info(T_BUNDLE, bslot)->model;
  return m == M_UNKNOWN ? 784 : models[m].c * models[m].h * models[m].w;
}

static void act_ddl_bundle_forward(void) {
  int bs, ps;
  begin(ID_ddl_bundle_forward);
  const DdlBundle* b = HANDLE(T_BUNDLE, bs);
  const DdlParams* p = HANDLE(T_PARAMS, ps);
  size_t batch = small_size(1, 8);
  size_t ex = example_size(bs);
  size_t need_x = batch <= 64 ? batch * ex : SIZE_MAX;
  if (batch == 0) must_fail = 1;
  fill_images(fin, batch <= 64 ? batch : 0, ex);
  const float* x = buffer_for(fin, need_x, SCR, 1);
  int m = slot_info(T_BUNDLE, bs)->model;
  size_t classes = m == M_UNKNOWN ? 10 : models[m].classes;
  size_t lcap = chance(70) && batch <= 64 ? batch * classes - (chance(20) ? 1 : 0) : pick_size();
  float* logits = buffer_for(fout, lcap, SCR, 1);
  size_t fcap = chance(70) && batch <= 64 ? batch * 128 : pick_size();
  float* features = chance(50) ? buffer_for(fout2, fcap, SCR, 0) : NULL;
  DdlStatus s = end(ddl_bundle_forward(b, p, x, batch, logits, lcap, features, fcap));
  if (m != M_UNKNOWN && s == DDL_STATUS_OK)
    CHECK(lcap >= batch * classes, "logits capacity %zu for %zu x %zu", lcap, batch, classes);
}

static void act_ddl_bundle_grad(void) {
  int bs, ps;
  begin(ID_ddl_bundle_grad);
  const DdlBundle* b = HANDLE(T_BUNDLE, bs);
  const DdlParams* p = HANDLE(T_PARAMS, ps);
  size_t batch = small_size(1, 8);
  size_t ex = example_size(bs);
  if (batch == 0) must_fail = 1;
  fill_images(fin, batch <= 64 ? batch : 0, ex);
  fill_labels(batch, 3);
  const float* x = buffer_for(fin, batch <= 64 ? batch * ex : SIZE_MAX, SCR, 1);
  const int64_t* y = buffer_for(labels_buf, batch, LABELS_CAP, 1);
  for (size_t i = 0; i < 64; i++) fout2[i] = chance(90) ? 1.0f : pick_f32();
  const float* w = chance(50) ? buffer_for(fout2, batch, 64, 0) : NULL;
  float loss = F32_SENT;
  float* pl = OPT_OUT(&loss);
  size_t gcap = chance(60) ? 243 : pick_size();
  float* g = chance(70) ? buffer_for(fout, gcap, SCR, 0) : NULL;
  DdlStatus s = end(ddl_bundle_grad(b, p, x, y, w, batch, pl, g, gcap));
  if (s != DDL_STATUS_OK) CHECK(loss == F32_SENT, "loss written on failure");
  int m = slot_info(T_BUNDLE, bs)->model;
  if (s == DDL_STATUS_OK && g && m != M_UNKNOWN && model_numel[m])
    CHECK(gcap >= model_numel[m], "gradient capacity %zu accepted", gcap);
  if (s == DDL_STATUS_BUFFER_TOO_SMALL) CHECK(g != NULL, "BUFFER_TOO_SMALL without a buffer");
}

/* ------------------------------------------------------------------------------------------ */
/* Parameters. */
static void keep_params(DdlStatus s, int given, DdlParams* p, int model) {
  if (out_ok(s, given, p, "out")) store(T_PARAMS, p)->model = model;
}

static void act_ddl_params_init(void) {
  int bs;
  DdlParams* p = SENT;
  begin(ID_ddl_params_init);
  const DdlBundle* b = HANDLE(T_BUNDLE, bs);
  DdlParams** o = OUT(&p);
  DdlStatus s = end(ddl_params_init(b, pick_u64(), o));
  keep_params(s, o != NULL, p, slot_info(T_BUNDLE, bs)->model);
}

static void act_ddl_params_from_flat(void) {
  int bs;
  DdlParams* p = SENT;
  begin(ID_ddl_params_from_flat);
  const DdlBundle* b = HANDLE(T_BUNDLE, bs);
  int m = slot_info(T_BUNDLE, bs)->model;
  size_t n = m != M_UNKNOWN && model_numel[m] ? model_numel[m] : 243;
  size_t len = chance(60) ? n : chance(50) ? n + PICK(size_t, 1, (size_t)-1) : pick_size();
  for (size_t i = 0; i < n && i < SCR; i++) fin[i] = chance(99) ? 0.01f * (float)(i % 7) : pick_f32();
  const float* v = buffer_for(fin, len, SCR, 1);
  DdlParams** o = OUT(&p);
  DdlStatus s = end(ddl_params_from_flat(b, v, len, o));
  keep_params(s, o != NULL, p, m);
}

static void act_ddl_params_load(void) {
  int bs;
  DdlParams* p = SENT;
  begin(ID_ddl_params_load);
  const DdlBundle* b = HANDLE(T_BUNDLE, bs);
  const char* path = read_path("params");
  DdlParams** o = OUT(&p);
  DdlStatus s = end(ddl_params_load(b, path, o));
  keep_params(s, o != NULL, p, slot_info(T_BUNDLE, bs)->model);
}

static void act_ddl_params_save(void) {
  int bs, ps;
  begin(ID_ddl_params_save);
  const DdlBundle* b = HANDLE(T_BUNDLE, bs);
  const DdlParams* p = HANDLE(T_PARAMS, ps);
  const char* path = write_path("params");
  DdlStatus s = end(ddl_params_save(b, p, path));
  int mb = slot_info(T_BUNDLE, bs)->model, mp = slot_info(T_PARAMS, ps)->model;
  /* The models have different parameter counts, so parameters fit one model only. */
  if (s == DDL_STATUS_OK && mb != M_UNKNOWN && mp != M_UNKNOWN)
    CHECK(mb == mp, "saved %s parameters as %s", models[mp].dir, models[mb].dir);
}

static void act_ddl_params_clone(void) {
  int ps;
  DdlParams* p = SENT;
  begin(ID_ddl_params_clone);
  const DdlParams* src = HANDLE(T_PARAMS, ps);
  DdlParams** o = OUT(&p);
  DdlStatus s = end(ddl_params_clone(src, o));
  keep_params(s, o != NULL, p, slot_info(T_PARAMS, ps)->model);
}

static void act_ddl_params_free(void) {
  int slot = chance(15) ? -1 : (int)below(SLOTS);
  begin(ID_ddl_params_free);
  ddl_params_free(slot < 0 ? NULL : tab[T_PARAMS][slot].h);
  end_plain();
  if (slot >= 0) tab[T_PARAMS][slot].h = NULL;
}

static void act_ddl_params_numel(void) {
  int ps;
  size_t v = SIZE_SENT;
  begin(ID_ddl_params_numel);
  const DdlParams* p = HANDLE(T_PARAMS, ps);
  size_t* o = OUT(&v);
  DdlStatus s = end(ddl_params_numel(p, o));
  if (s != DDL_STATUS_OK) {
    CHECK(v == SIZE_SENT, "written on failure");
    return;
  }
  int m = slot_info(T_PARAMS, ps)->model;
  if (m == M_UNKNOWN) return;
  if (model_numel[m] == 0) model_numel[m] = v;
  CHECK(v == model_numel[m], "%zu values, the model has %zu", v, model_numel[m]);
}

static size_t params_numel_guess(int pslot) {
  int m = slot_info(T_PARAMS, pslot)->model;
  return m != M_UNKNOWN && model_numel[m] ? model_numel[m] : 0;
}

static void act_ddl_params_get_flat(void) {
  int ps;
  begin(ID_ddl_params_get_flat);
  const DdlParams* p = HANDLE(T_PARAMS, ps);
  size_t n = params_numel_guess(ps);
  size_t cap = chance(60) && n ? n - (chance(25) ? 1 : 0) : pick_size();
  float* v = buffer_for(fout, cap, SCR, 1);
  DdlStatus s = end(ddl_params_get_flat(p, v, cap));
  if (n && p) {
    if (cap < n) CHECK(s == DDL_STATUS_BUFFER_TOO_SMALL, "capacity %zu < %zu gave %s", cap, n, ddl_status_name(s));
    if (cap >= n && v) CHECK(s == DDL_STATUS_OK, "capacity %zu >= %zu", cap, n);
  }
}

static void act_ddl_params_set_flat(void) {
  int ps;
  begin(ID_ddl_params_set_flat);
  DdlParams* p = HANDLE(T_PARAMS, ps);
  size_t n = params_numel_guess(ps);
  size_t len = chance(60) && n ? n + (chance(20) ? 1 : 0) : pick_size();
  for (size_t i = 0; i < 2048 && i < SCR; i++) fin[i] = chance(99) ? 0.02f * (float)(i % 5) - 0.04f : pick_f32();
  if (len <= SCR && len > 2048)
    for (size_t i = 2048; i < len; i++) fin[i] = 0.001f * (float)(i % 11);
  const float* v = buffer_for(fin, len, SCR, 1);
  DdlStatus s = end(ddl_params_set_flat(p, v, len));
  if (n && p && len != n) CHECK(s == DDL_STATUS_INVALID_ARGUMENT, "length %zu of %zu accepted", len, n);
}

static const char* param_name(void) {
  return chance(75) ? PICK(const char*, "conv0.weight", "conv0.bias", "norm0.weight", "norm0.bias",
                           "classifier.weight", "classifier.bias", "fc0.weight", "fc1.bias")
                    : PICK(const char*, "nope", "", "conv0", "conv0.weight ", BAD_UTF8, NULL);
}

static void act_ddl_params_tensor_shape(void) {
  int ps;
  size_t ndim = SIZE_SENT;
  begin(ID_ddl_params_tensor_shape);
  const DdlParams* p = HANDLE(T_PARAMS, ps);
  const char* name = param_name();
  if (name == NULL) must_fail = 1;
  size_t cap = chance(60) ? (size_t)below(6) : pick_size();
  size_t* shape = buffer_for(sizes_buf, cap, 64, 0);
  size_t* o = OUT(&ndim);
  DdlStatus s = end(ddl_params_tensor_shape(p, name, shape, cap, o));
  if (s == DDL_STATUS_OK) CHECK(ndim >= 1 && ndim <= 4 && ndim <= cap, "rank %zu, capacity %zu", ndim, cap);
  if (s == DDL_STATUS_BUFFER_TOO_SMALL) CHECK(ndim != SIZE_SENT && ndim > cap, "rank %zu on BUFFER_TOO_SMALL", ndim);
  if (s != DDL_STATUS_OK && s != DDL_STATUS_BUFFER_TOO_SMALL) CHECK(ndim == SIZE_SENT, "rank written on %s", ddl_status_name(s));
}

static void act_ddl_params_describe(void) {
  int ps;
  char* json = SENT;
  begin(ID_ddl_params_describe);
  const DdlParams* p = HANDLE(T_PARAMS, ps);
  char** o = OUT(&json);
  DdlStatus s = end(ddl_params_describe(p, o));
  take_json(s, o != NULL, json, "out_json");
}

static void act_ddl_params_get_tensor(void) {
  int ps;
  begin(ID_ddl_params_get_tensor);
  const DdlParams* p = HANDLE(T_PARAMS, ps);
  const char* name = param_name();
  if (name == NULL) must_fail = 1;
  size_t cap = chance(60) ? (size_t)below(200) : pick_size();
  float* v = buffer_for(fout, cap, SCR, 0);
  (void)end(ddl_params_get_tensor(p, name, v, cap));
}

static void act_ddl_params_set_tensor(void) {
  int ps;
  begin(ID_ddl_params_set_tensor);
  DdlParams* p = HANDLE(T_PARAMS, ps);
  const char* name = param_name();
  if (name == NULL) must_fail = 1;
  size_t len = chance(60) ? PICK(size_t, 3, 4, 36, 192, 256, 100352) : pick_size();
  const float* v = buffer_for(fin, len, SCR, 1);
  (void)end(ddl_params_set_tensor(p, name, v, len));
}

/* ------------------------------------------------------------------------------------------ */
/* Datasets. */
static void keep_dataset(DdlStatus s, int given, DdlDataset* d, long len, long c, long h, long w,
                         long classes) {
  if (!out_ok(s, given, d, "out")) return;
  struct slot* sl = store(T_DATASET, d);
  sl->len = len, sl->c = c, sl->hh = h, sl->w = w, sl->classes = classes;
}

static void act_ddl_dataset_load(void) {
  /* Never a real benchmark (that would load 70000 images): a bad name, or a folder without it. */
  const char* name = PICK(const char*, "fashion-mnist", "mnist", "cifar10", "FASHION-MNIST",
                          "imagenet", "", BAD_UTF8, NULL);
  const char* dir = PICK(const char*, models_dir, tmp_dir, pathf("%s/missing", tmp_dir),
                         pathf("%s/blocker", tmp_dir), "", BAD_UTF8, NULL);
  int known = name && (strcmp(name, "fashion-mnist") == 0 || strcmp(name, "mnist") == 0 ||
                       strcmp(name, "cifar10") == 0 || strcmp(name, "FASHION-MNIST") == 0);
  if (dir == NULL && known) dir = pathf("%s/missing", tmp_dir);
  DdlDataset *tr = SENT, *te = SENT;
  begin(ID_ddl_dataset_load);
  DdlDataset** otr = maybe_null(&tr, 30, 0);
  DdlDataset** ote = maybe_null(&te, 30, 0);
  if (name == NULL || (otr == NULL && ote == NULL)) must_fail = 1;
  DdlStatus s = end(ddl_dataset_load(name, dir, otr, ote));
  CHECK(s != DDL_STATUS_OK, "loaded a benchmark from %s", dir ? dir : "(null)");
  if (out_ok(s, otr != NULL, tr, "out_train")) keep_dataset(s, 1, tr, -1, -1, -1, -1, -1);
  if (out_ok(s, ote != NULL, te, "out_test")) keep_dataset(s, 1, te, -1, -1, -1, -1, -1);
}

static void act_ddl_dataset_from_memory(void) {
  size_t n = 1 + (size_t)below(24), c = 1, h = 8, w = 8;
  if (chance(20)) {
    switch (below(4)) {
      case 0: c = 1, h = 28, w = 28; break;
      case 1: c = 1, h = 4, w = 16; break;
      case 2: c = 3, h = 8, w = 8; break;
      default: c = 9; break;
    }
  }
  size_t shape[8] = {n, c, h, w, 1, 1, 1, 1};
  if (chance(6)) shape[below(4)] = PICK(size_t, 0, (size_t)1 << 33, SIZE_MAX);
  size_t ndim = chance(92) ? 4 : PICK(size_t, 0, 1, 3, 5, 8, SIZE_MAX);
  uint32_t dtype = chance(90) ? (chance(70) ? DDL_DTYPE_F32 : DDL_DTYPE_U8) : pick_enum(2);
  size_t need = 1;
  for (int i = 0; i < 4; i++) need = shape[i] && need > SIZE_MAX / shape[i] ? SIZE_MAX : need * shape[i];
  if (need <= SCR) {
    fill_images(fin, shape[0], need / (shape[0] ? shape[0] : 1));
    if (chance(5)) fin[below(need)] = PICK(float, NAN, INFINITY, -INFINITY);
  }
  size_t num_labels = chance(90) ? shape[0] : PICK(size_t, 0, n + 1, n - 1, SIZE_MAX);
  size_t classes = chance(85) ? 3 : PICK(size_t, 0, 1, 2, 10, (size_t)1 << 20, (size_t)1 << 40, SIZE_MAX);
  fill_labels(num_labels, classes < 3 ? classes : 3);
  float mean[8] = {0.1f, 0.2f, 0.3f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f};
  float std[8] = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f};
  if (chance(10)) std[below(shape[1] < 8 ? shape[1] : 8)] = PICK(float, 0.0f, -1.0f, NAN, INFINITY);
  if (chance(5)) mean[0] = NAN;
  const float *pm = NULL, *ps = NULL;
  int r = (int)below(10);
  if (r < 2 && shape[1] <= 8) pm = mean, ps = std;
  if (r == 2) pm = mean;
  if (r == 3) ps = std;
  const char* name = PICK(const char*, NULL, "synthetic", "synthetic", "", BAD_UTF8, "fashion-mnist-train");
  DdlDataset* d = SENT;
  begin(ID_ddl_dataset_from_memory);
  /* images: a float buffer holds `need` floats, so `need` bytes too. */
  const void* images = buffer_for(fin, need, SCR, 1);
  const size_t* sh = ndim <= 8 ? maybe_null(shape, 4, 1) : NULL;
  if (sh == NULL) must_fail = 1;
  const int64_t* labels = buffer_for(labels_buf, num_labels, LABELS_CAP, 1);
  DdlDataset** o = OUT(&d);
  DdlStatus s = end(ddl_dataset_from_memory(images, dtype, sh, ndim, labels, num_labels, classes,
                                            pm, ps, name, o));
  if (s == DDL_STATUS_OK)
    CHECK(ndim == 4 && num_labels == shape[0] && dtype <= DDL_DTYPE_U8 && classes > 0 &&
              (pm == NULL) == (ps == NULL),
          "accepted ndim %zu, %zu labels for %zu images, dtype %u, %zu classes", ndim,
          num_labels, shape[0], dtype, classes);
  keep_dataset(s, o != NULL, d, (long)shape[0], (long)shape[1], (long)shape[2], (long)shape[3],
               (long)classes);
}

static void act_ddl_dataset_free(void) {
  int slot = chance(15) ? -1 : (int)below(SLOTS);
  begin(ID_ddl_dataset_free);
  ddl_dataset_free(slot < 0 ? NULL : tab[T_DATASET][slot].h);
  end_plain();
  if (slot >= 0) tab[T_DATASET][slot].h = NULL;
}

static void dataset_scalar(int fn, DdlStatus (*f)(const DdlDataset*, size_t*), int what) {
  int ds;
  size_t v = SIZE_SENT;
  begin(fn);
  const DdlDataset* d = HANDLE(T_DATASET, ds);
  size_t* o = OUT(&v);
  DdlStatus s = end(f(d, o));
  const struct slot* info = slot_info(T_DATASET, ds);
  if (s != DDL_STATUS_OK) {
    CHECK(v == SIZE_SENT, "written on failure");
    return;
  }
  long want = what == 0 ? info->len : info->classes;
  if (want >= 0) CHECK(v == (size_t)want, "%zu, made with %ld", v, want);
}
static void act_ddl_dataset_len(void) { dataset_scalar(ID_ddl_dataset_len, ddl_dataset_len, 0); }
static void act_ddl_dataset_num_classes(void) {
  dataset_scalar(ID_ddl_dataset_num_classes, ddl_dataset_num_classes, 1);
}

static void act_ddl_dataset_input_shape(void) {
  int ds;
  size_t c = SIZE_SENT, h = SIZE_SENT, w = SIZE_SENT;
  begin(ID_ddl_dataset_input_shape);
  const DdlDataset* d = HANDLE(T_DATASET, ds);
  size_t *pc = OUT(&c), *ph = OUT(&h), *pw = OUT(&w);
  DdlStatus s = end(ddl_dataset_input_shape(d, pc, ph, pw));
  const struct slot* info = slot_info(T_DATASET, ds);
  if (s == DDL_STATUS_OK && info->c >= 0)
    CHECK(c == (size_t)info->c && h == (size_t)info->hh && w == (size_t)info->w, "%zux%zux%zu", c, h, w);
  if (s != DDL_STATUS_OK) CHECK(c == SIZE_SENT && h == SIZE_SENT && w == SIZE_SENT, "written on failure");
}

static void act_ddl_dataset_get_images(void) {
  int ds;
  begin(ID_ddl_dataset_get_images);
  const DdlDataset* d = HANDLE(T_DATASET, ds);
  const struct slot* info = slot_info(T_DATASET, ds);
  int known = info->len >= 0 && info->c >= 0; /* a selection of unknown images has a length only */
  size_t need = known ? (size_t)(info->len * info->c * info->hh * info->w) : 0;
  size_t cap = chance(60) && known ? need - (chance(25) && need ? 1 : 0) : pick_size();
  float* v = buffer_for(fout, cap, SCR, 1);
  DdlStatus s = end(ddl_dataset_get_images(d, v, cap));
  if (d && known) {
    if (cap < need) CHECK(s == DDL_STATUS_BUFFER_TOO_SMALL, "capacity %zu < %zu gave %s", cap, need, ddl_status_name(s));
    if (cap >= need && v) CHECK(s == DDL_STATUS_OK, "capacity %zu >= %zu", cap, need);
  }
}

static void act_ddl_dataset_get_labels(void) {
  int ds;
  begin(ID_ddl_dataset_get_labels);
  const DdlDataset* d = HANDLE(T_DATASET, ds);
  const struct slot* info = slot_info(T_DATASET, ds);
  size_t need = info->len >= 0 ? (size_t)info->len : 0;
  size_t cap = chance(60) && info->len >= 0 ? need - (chance(25) && need ? 1 : 0) : pick_size();
  int64_t* v = buffer_for(labels_buf, cap, LABELS_CAP, 1);
  DdlStatus s = end(ddl_dataset_get_labels(d, v, cap));
  if (d && info->len >= 0) {
    if (cap < need) CHECK(s == DDL_STATUS_BUFFER_TOO_SMALL, "capacity %zu < %zu", cap, need);
    if (cap >= need && v) {
      CHECK(s == DDL_STATUS_OK, "capacity %zu >= %zu", cap, need);
      for (size_t i = 0; s == DDL_STATUS_OK && info->classes >= 0 && i < need; i++)
        CHECK(v[i] >= 0 && v[i] < info->classes, "label %lld", (long long)v[i]);
    }
  }
}

static void act_ddl_dataset_class_balanced(void) {
  int ds;
  DdlDataset* o_d = SENT;
  size_t per_class = small_size(1, 4);
  begin(ID_ddl_dataset_class_balanced);
  const DdlDataset* d = HANDLE(T_DATASET, ds);
  DdlDataset** o = OUT(&o_d);
  DdlStatus s = end(ddl_dataset_class_balanced(d, per_class, pick_u64(), o));
  const struct slot* info = slot_info(T_DATASET, ds);
  if (s == DDL_STATUS_OK) CHECK(per_class > 0, "per_class 0 accepted");
  long classes = info->classes;
  keep_dataset(s, o != NULL, o_d, classes >= 0 ? (long)per_class * classes : -1, info->c,
               info->hh, info->w, classes);
}

static void act_ddl_dataset_select(void) {
  int ds;
  DdlDataset* o_d = SENT;
  begin(ID_ddl_dataset_select);
  const DdlDataset* d = HANDLE(T_DATASET, ds);
  const struct slot* info = slot_info(T_DATASET, ds);
  size_t count = small_size(1, 12);
  long len = info->len;
  int out_of_range = 0;
  for (size_t i = 0; i < 64; i++) {
    sizes_buf[i] = len > 0 ? (size_t)below((uint64_t)len) : (size_t)below(8);
    if (chance(3)) sizes_buf[i] = PICK(size_t, (size_t)(len > 0 ? len : 8), SIZE_MAX);
    if (i < count && len >= 0 && sizes_buf[i] >= (size_t)len) out_of_range = 1;
  }
  const size_t* idx = buffer_for(sizes_buf, count, 64, 1);
  DdlDataset** o = OUT(&o_d);
  DdlStatus s = end(ddl_dataset_select(d, idx, count, o));
  if (s == DDL_STATUS_OK) CHECK(count > 0 && !out_of_range, "count %zu (out of range: %d)", count, out_of_range);
  keep_dataset(s, o != NULL, o_d, (long)count, info->c, info->hh, info->w, info->classes);
}

static void act_ddl_dataset_describe(void) {
  int ds;
  char* json = SENT;
  begin(ID_ddl_dataset_describe);
  const DdlDataset* d = HANDLE(T_DATASET, ds);
  char** o = OUT(&json);
  DdlStatus s = end(ddl_dataset_describe(d, o));
  take_json(s, o != NULL, json, "out_json");
}

/* ------------------------------------------------------------------------------------------ */
/* Distilled sets. */
static void act_ddl_distilled_read(void) {
  const char* path;
  switch (below(5)) {
    case 0: path = PICK(const char*, "zoo:dm-ipc1", "zoo:no-such-set", "zoo:", "zoo:../models");
      break;
    case 1: path = pathf("%s/%s", tmp_dir, PICK(const char*, "x.npz", "x.npy", "garbage.npz", "garbage.npy"));
      break;
    default: path = read_path("set"); break;
  }
  DdlDistilledSet* set = SENT;
  begin(ID_ddl_distilled_read);
  DdlDistilledSet** o = OUT(&set);
  if (path == NULL) must_fail = 1;
  DdlStatus s = end(ddl_distilled_read(path, o));
  if (out_ok(s, o != NULL, set, "out")) store(T_DSET, set);
}

static void act_ddl_distilled_write(void) {
  int ss;
  begin(ID_ddl_distilled_write);
  const DdlDistilledSet* set = HANDLE(T_DSET, ss);
  const char* path = write_path("set");
  (void)end(ddl_distilled_write(set, path));
}

static void act_ddl_distilled_create(void) {
  int ds;
  float lr = rate(0.03f);
  const char* meta = chance(60) ? PICK(const char*, NULL, "{}", "{\"method\": \"random\", \"ipc\": 2}",
                                       "{\"seed\": 3, \"extra\": {\"k\": \"v\"}}")
                                : PICK(const char*, "", "{", "[]", "null", "{\"bogus\": 1}",
                                       "{\"ipc\": -1}", "{\"extra\": {\"k\": 1}}", BAD_UTF8);
  DdlDistilledSet* set = SENT;
  begin(ID_ddl_distilled_create);
  const DdlDataset* d = HANDLE(T_DATASET, ds);
  const float* plr = chance(50) ? &lr : NULL;
  DdlDistilledSet** o = OUT(&set);
  DdlStatus s = end(ddl_distilled_create(d, plr, meta, o));
  if (s == DDL_STATUS_OK && plr) CHECK(isfinite(lr), "lr %f accepted", lr);
  if (out_ok(s, o != NULL, set, "out")) store(T_DSET, set);
}

static void act_ddl_distilled_free(void) {
  int slot = chance(15) ? -1 : (int)below(SLOTS);
  begin(ID_ddl_distilled_free);
  ddl_distilled_free(slot < 0 ? NULL : tab[T_DSET][slot].h);
  end_plain();
  if (slot >= 0) tab[T_DSET][slot].h = NULL;
}

static void act_ddl_distilled_data(void) {
  int ss;
  DdlDataset* d = SENT;
  begin(ID_ddl_distilled_data);
  const DdlDistilledSet* set = HANDLE(T_DSET, ss);
  DdlDataset** o = OUT(&d);
  DdlStatus s = end(ddl_distilled_data(set, o));
  keep_dataset(s, o != NULL, d, -1, -1, -1, -1, -1);
}

static void act_ddl_distilled_lr(void) {
  int ss;
  bool has;
  unsigned char raw;
  memset(&has, 0xA5, sizeof has);
  float lr = F32_SENT;
  begin(ID_ddl_distilled_lr);
  const DdlDistilledSet* set = HANDLE(T_DSET, ss);
  bool* ph = OUT(&has);
  float* pl = OUT(&lr);
  DdlStatus s = end(ddl_distilled_lr(set, ph, pl));
  memcpy(&raw, &has, 1);
  if (s != DDL_STATUS_OK) {
    CHECK(raw == 0xA5 && lr == F32_SENT, "written on failure");
  } else {
    CHECK(raw == 0 || raw == 1, "has_lr byte %u", raw);
    if (raw == 0) CHECK(lr == F32_SENT, "out_lr written without a rate");
    if (raw == 1) CHECK(isfinite(lr), "rate %f", lr);
  }
}

static void act_ddl_distilled_describe(void) {
  int ss;
  char* json = SENT;
  begin(ID_ddl_distilled_describe);
  const DdlDistilledSet* set = HANDLE(T_DSET, ss);
  char** o = OUT(&json);
  DdlStatus s = end(ddl_distilled_describe(set, o));
  take_json(s, o != NULL, json, "out_json");
}

/* ------------------------------------------------------------------------------------------ */
/* Training configurations. */
static char saved_config_json[2048] =
    "{\"epochs\":2,\"max_steps\":null,\"batch_size\":8,\"lr\":0.01,\"sgd\":{\"momentum\":0.9,"
    "\"weight_decay\":0.0},\"schedule\":{\"kind\":\"constant\"},\"seed\":0,\"augment\":null}";

static void keep_tcfg(DdlStatus s, int given, DdlTrainConfig* c) {
  if (out_ok(s, given, c, "out")) store(T_TCFG, c);
}

static void act_ddl_train_config_standard_eval(void) {
  DdlTrainConfig* c = SENT;
  uint64_t epochs = small_u64(1, 4);
  float lr = rate(0.01f);
  size_t n = small_size(1, 30);
  begin(ID_ddl_train_config_standard_eval);
  DdlTrainConfig** o = OUT(&c);
  DdlStatus s = end(ddl_train_config_standard_eval(epochs, lr, n, pick_u64(), o));
  if (s == DDL_STATUS_OK) CHECK(epochs > 0 && n > 0 && isfinite(lr) && lr > 0, "epochs %llu, lr %f, size %zu accepted", (unsigned long long)epochs, lr, n);
  keep_tcfg(s, o != NULL, c);
}

static void act_ddl_train_config_p_dist(void) {
  DdlTrainConfig* c = SENT;
  uint64_t steps = small_u64(1, 6);
  begin(ID_ddl_train_config_p_dist);
  DdlTrainConfig** o = OUT(&c);
  DdlStatus s = end(ddl_train_config_p_dist(steps, pick_u64(), o));
  if (s == DDL_STATUS_OK) CHECK(steps > 0, "0 steps accepted");
  keep_tcfg(s, o != NULL, c);
}

static void act_ddl_train_config_p_real(void) {
  DdlTrainConfig* c = SENT;
  uint64_t epochs = small_u64(1, 3);
  begin(ID_ddl_train_config_p_real);
  DdlTrainConfig** o = OUT(&c);
  DdlStatus s = end(ddl_train_config_p_real(epochs, pick_u64(), o));
  if (s == DDL_STATUS_OK) CHECK(epochs > 0, "0 epochs accepted");
  keep_tcfg(s, o != NULL, c);
}

static void act_ddl_train_config_from_json(void) {
  static char edited[2200];
  const char* json;
  switch (below(6)) {
    case 0: case 1: json = saved_config_json; break;
    case 2: /* an unknown field */
      snprintf(edited, sizeof edited, "{\"bogus\": 1, %s", saved_config_json + 1);
      json = edited;
      break;
    case 3: /* cut short */
      snprintf(edited, sizeof edited, "%s", saved_config_json);
      edited[below(strlen(edited))] = '\0';
      json = edited;
      break;
    case 4:
      json = PICK(const char*, "{\"epochs\": 0}", "{\"epochs\": 1, \"lr\": -1}", "[]", "null", "{}",
                  "{\"epochs\":1,\"max_steps\":0,\"batch_size\":0,\"lr\":1e40,\"sgd\":{\"momentum\":2,"
                  "\"weight_decay\":-1},\"schedule\":{\"kind\":\"step\",\"milestones\":[-1],\"gamma\":0},"
                  "\"seed\":-5,\"augment\":\"bogus\"}");
      break;
    default: json = hostile_string(1); break;
  }
  DdlTrainConfig* c = SENT;
  begin(ID_ddl_train_config_from_json);
  if (json == NULL) must_fail = 1;
  DdlTrainConfig** o = OUT(&c);
  DdlStatus s = end(ddl_train_config_from_json(json, o));
  keep_tcfg(s, o != NULL, c);
}

static void act_ddl_train_config_to_json(void) {
  int cs;
  char* json = SENT;
  begin(ID_ddl_train_config_to_json);
  const DdlTrainConfig* c = HANDLE(T_TCFG, cs);
  char** o = OUT(&json);
  DdlStatus s = end(ddl_train_config_to_json(c, o));
  if (s == DDL_STATUS_OK && o && json && json != SENT && strlen(json) < sizeof saved_config_json)
    snprintf(saved_config_json, sizeof saved_config_json, "%s", json);
  take_json(s, o != NULL, json, "out_json");
}

static void act_ddl_train_config_total_steps(void) {
  int cs;
  uint64_t v = (uint64_t)SIZE_SENT;
  size_t n = small_size(1, 40);
  begin(ID_ddl_train_config_total_steps);
  const DdlTrainConfig* c = HANDLE(T_TCFG, cs);
  uint64_t* o = OUT(&v);
  DdlStatus s = end(ddl_train_config_total_steps(c, n, o));
  if (s != DDL_STATUS_OK) CHECK(v == (uint64_t)SIZE_SENT, "written on failure");
  if (s == DDL_STATUS_OK) CHECK(n > 0, "train_size 0 accepted");
}

static void act_ddl_train_config_free(void) {
  int slot = chance(15) ? -1 : (int)below(SLOTS);
  begin(ID_ddl_train_config_free);
  ddl_train_config_free(slot < 0 ? NULL : tab[T_TCFG][slot].h);
  end_plain();
  if (slot >= 0) tab[T_TCFG][slot].h = NULL;
}

#define TCFG_SET(fname, value_expr)                  \
  static void act_##fname(void) {                    \
    int cs;                                          \
    begin(ID_##fname);                               \
    DdlTrainConfig* c = HANDLE(T_TCFG, cs);          \
    (void)end(fname(c, value_expr));                 \
  }
TCFG_SET(ddl_train_config_set_epochs, small_u64(1, 4))
TCFG_SET(ddl_train_config_set_max_steps, small_u64(0, 10))
TCFG_SET(ddl_train_config_set_batch_size, small_u64(0, 16))
TCFG_SET(ddl_train_config_set_lr, rate(0.02f))
TCFG_SET(ddl_train_config_set_momentum, rate(0.9f))
TCFG_SET(ddl_train_config_set_weight_decay, rate(5e-4f))
TCFG_SET(ddl_train_config_set_seed, pick_u64())

static void act_ddl_train_config_set_schedule_constant(void) {
  int cs;
  begin(ID_ddl_train_config_set_schedule_constant);
  DdlTrainConfig* c = HANDLE(T_TCFG, cs);
  (void)end(ddl_train_config_set_schedule_constant(c));
}

static void act_ddl_train_config_set_schedule_step(void) {
  int cs;
  for (size_t i = 0; i < 16; i++) u64_buf[i] = chance(90) ? below(10) : pick_u64();
  size_t count = chance(70) ? (size_t)below(5) : pick_size();
  float gamma = rate(0.1f);
  begin(ID_ddl_train_config_set_schedule_step);
  DdlTrainConfig* c = HANDLE(T_TCFG, cs);
  const uint64_t* m = buffer_for(u64_buf, count, 16, 1);
  DdlStatus s = end(ddl_train_config_set_schedule_step(c, m, count, gamma));
  if (s == DDL_STATUS_OK) CHECK(isfinite(gamma) && gamma > 0, "gamma %f accepted", gamma);
}

static void act_ddl_train_config_set_dsa(void) {
  int cs;
  const char* strategy = PICK(const char*, NULL, "", "none", "color_crop_cutout_flip_scale_rotate",
                              "crop", "flip_scale", "bogus", "crop_bogus", "color__crop", BAD_UTF8);
  begin(ID_ddl_train_config_set_dsa);
  DdlTrainConfig* c = HANDLE(T_TCFG, cs);
  (void)end(ddl_train_config_set_dsa(c, strategy));
}

/* ------------------------------------------------------------------------------------------ */
/* Training and evaluation. */
static void act_ddl_train(void) {
  int bs, ps, ds, cs;
  DdlParams* out = SENT;
  char* json = SENT;
  struct progress prog;
  void* user = NULL;
  begin(ID_ddl_train);
  const DdlBundle* b = HANDLE(T_BUNDLE, bs);
  const DdlParams* init = HANDLE(T_PARAMS, ps);
  const DdlDataset* d = HANDLE(T_DATASET, ds);
  const DdlTrainConfig* c = HANDLE(T_TCFG, cs);
  DdlParams** o = OUT(&out);
  char** oj = OPT_OUT(&json);
  DdlProgressFn f = pick_progress(&prog, PICK(uint64_t, 0, 1, 3, 10, 40), must_fail, &user);
  DdlStatus s = end(ddl_train(b, init, d, c, f, user, o, oj));
  check_progress(s, f, &prog, 1);
  if (out_ok(s, o != NULL, out, "out_params")) store(T_PARAMS, out)->model = slot_info(T_BUNDLE, bs)->model;
  if (oj && s == DDL_STATUS_OK && json && json != SENT)
    CHECK(strstr(json, "\"steps\"") != NULL, "report %.80s", json);
  take_json(s, oj != NULL, json, "out_json");
}

static void act_ddl_evaluate(void) {
  int bs, ps, ds;
  double acc = F64_SENT, loss = F64_SENT;
  char* json = SENT;
  begin(ID_ddl_evaluate);
  const DdlBundle* b = HANDLE(T_BUNDLE, bs);
  const DdlParams* p = HANDLE(T_PARAMS, ps);
  const DdlDataset* d = HANDLE(T_DATASET, ds);
  double* pa = OPT_OUT(&acc);
  double* pl = OPT_OUT(&loss);
  char** oj = OPT_OUT(&json);
  DdlStatus s = end(ddl_evaluate(b, p, d, pa, pl, oj));
  if (s != DDL_STATUS_OK) CHECK(acc == F64_SENT && loss == F64_SENT, "written on failure");
  if (s == DDL_STATUS_OK && pa) CHECK(acc >= 0.0 && acc <= 1.0, "accuracy %f", acc);
  if (s == DDL_STATUS_OK && pl) CHECK(!(loss < 0.0), "loss %f", loss);
  take_json(s, oj != NULL, json, "out_json");
}

static void act_ddl_standard_evaluation(void) {
  int bs, trs, tes;
  char* json = SENT;
  struct progress prog;
  void* user = NULL;
  size_t runs = small_size(1, 2);
  uint64_t epochs = small_u64(1, 3);
  float lr = rate(0.01f);
  begin(ID_ddl_standard_evaluation);
  const DdlBundle* b = HANDLE(T_BUNDLE, bs);
  const DdlDataset* tr = HANDLE(T_DATASET, trs);
  const DdlDataset* te = HANDLE(T_DATASET, tes);
  char** o = OUT(&json);
  int fails_fast = must_fail || runs == 0 || epochs == 0;
  DdlProgressFn f = pick_progress(&prog, PICK(uint64_t, 0, 1, 3, 10), fails_fast, &user);
  DdlStatus s = end(ddl_standard_evaluation(b, tr, te, runs, epochs, lr, pick_u64(), f, user, o));
  if (s == DDL_STATUS_OK) CHECK(runs > 0 && epochs > 0, "runs %zu epochs %llu accepted", runs, (unsigned long long)epochs);
  check_progress(s, f, &prog, 1);
  take_json(s, o != NULL, json, "out_json");
}

static void act_ddl_standard_evaluation_augmented(void) {
  int bs, trs, tes;
  char* json = SENT;
  struct progress prog;
  void* user = NULL;
  size_t runs = small_size(1, 2);
  uint64_t epochs = small_u64(1, 3);
  float lr = rate(0.01f);
  const char* strategy = PICK(const char*, NULL, "", "none", "flip", "crop_scale", "bogus", BAD_UTF8);
  int bad_strategy = strategy != NULL && (strcmp(strategy, "bogus") == 0 || strategy == BAD_UTF8);
  begin(ID_ddl_standard_evaluation_augmented);
  const DdlBundle* b = HANDLE(T_BUNDLE, bs);
  const DdlDataset* tr = HANDLE(T_DATASET, trs);
  const DdlDataset* te = HANDLE(T_DATASET, tes);
  char** o = OUT(&json);
  int fails_fast = must_fail || runs == 0 || epochs == 0 || bad_strategy;
  DdlProgressFn f = pick_progress(&prog, PICK(uint64_t, 0, 1, 3, 10), fails_fast, &user);
  DdlStatus s = end(ddl_standard_evaluation_augmented(b, tr, te, runs, epochs, lr, pick_u64(), strategy, f,
                                                      user, o));
  if (s == DDL_STATUS_OK) {
    CHECK(runs > 0 && epochs > 0, "runs %zu epochs %llu accepted", runs, (unsigned long long)epochs);
    CHECK(!bad_strategy, "strategy \"%s\" accepted", strategy);
  }
  check_progress(s, f, &prog, 1);
  take_json(s, o != NULL, json, "out_json");
}

/* ------------------------------------------------------------------------------------------ */
/* Distillation. */
static const char* const method_names[D_COUNT] = {"random", "herding", "dm", "dc", "dsa", "mtt", "bptt"};

static void act_ddl_distill_config_new(void) {
  int method = (int)below(D_COUNT + 2);
  const char* name = method < D_COUNT ? method_names[method]
                                      : PICK(const char*, "DM", "Herding", "bogus", "", BAD_UTF8, NULL);
  if (method >= D_COUNT) method = name && strcmp(name, "DM") == 0 ? D_DM
                                 : name && strcmp(name, "Herding") == 0 ? D_HERDING : D_UNKNOWN;
  size_t ipc = small_size(1, 3);
  DdlDistillConfig* c = SENT;
  begin(ID_ddl_distill_config_new);
  if (name == NULL) must_fail = 1;
  DdlDistillConfig** o = OUT(&c);
  DdlStatus s = end(ddl_distill_config_new(name, ipc, o));
  if (s == DDL_STATUS_OK) CHECK(ipc > 0 && method != D_UNKNOWN, "method %s, ipc %zu accepted", name, ipc);
  if (out_ok(s, o != NULL, c, "out")) {
    struct slot* sl = store(T_DCFG, c);
    sl->method = method;
    sl->iterations = method == D_MTT ? 5000 : 1000;
    sl->syn_steps = method == D_MTT ? 20 : 100;
  }
}

static void act_ddl_distill_config_free(void) {
  int slot = chance(15) ? -1 : (int)below(SLOTS);
  begin(ID_ddl_distill_config_free);
  ddl_distill_config_free(slot < 0 ? NULL : tab[T_DCFG][slot].h);
  end_plain();
  if (slot >= 0) tab[T_DCFG][slot].h = NULL;
}

static void act_ddl_distill_config_describe(void) {
  int cs;
  char* json = SENT;
  begin(ID_ddl_distill_config_describe);
  const DdlDistillConfig* c = HANDLE(T_DCFG, cs);
  char** o = OUT(&json);
  DdlStatus s = end(ddl_distill_config_describe(c, o));
  if (s == DDL_STATUS_OK && o && json && json != SENT)
    CHECK(strstr(json, "\"method\"") != NULL, "describe: %.80s", json);
  take_json(s, o != NULL, json, "out_json");
}

#define DCFG_SET(fname, type, value_expr, on_ok)                 \
  static void act_##fname(void) {                                \
    int cs;                                                      \
    type value = (value_expr);                                   \
    begin(ID_##fname);                                           \
    DdlDistillConfig* c = HANDLE(T_DCFG, cs);                    \
    DdlStatus s = end(fname(c, value));                          \
    if (s == DDL_STATUS_OK && cs >= 0) {                         \
      struct slot* sl = &tab[T_DCFG][cs];                        \
      (void)sl;                                                  \
      on_ok;                                                     \
    }                                                            \
  }
DCFG_SET(ddl_distill_config_set_iterations, uint64_t, small_u64(1, 3), sl->iterations = value)
DCFG_SET(ddl_distill_config_set_seed, uint64_t, pick_u64(), (void)0)
DCFG_SET(ddl_distill_config_set_lr_img, float, rate(0.1f), CHECK(isfinite(value) && value > 0, "lr_img %f", value))
DCFG_SET(ddl_distill_config_set_momentum, float, rate(0.5f), CHECK(value >= 0 && value < 1, "momentum %f", value))
DCFG_SET(ddl_distill_config_set_batch_real, uint64_t, small_u64(1, 8), CHECK(value > 0, "batch_real 0"))
DCFG_SET(ddl_distill_config_set_syn_steps, uint64_t, small_u64(1, 4), sl->syn_steps = value)
DCFG_SET(ddl_distill_config_set_batch_syn, uint64_t, small_u64(0, 4), (void)0)
DCFG_SET(ddl_distill_config_set_lr_lr, float, rate(1e-5f), CHECK(isfinite(value) && value > 0, "lr_lr %f", value))
DCFG_SET(ddl_distill_config_set_dsa, bool, pick_bool(), (void)0)
DCFG_SET(ddl_distill_config_set_expert_epochs_ahead, uint64_t, small_u64(1, 3), (void)0)
DCFG_SET(ddl_distill_config_set_max_start_epoch, uint64_t, small_u64(1, 3), (void)0)
DCFG_SET(ddl_distill_config_set_window, uint64_t, small_u64(0, 3), (void)0)
DCFG_SET(ddl_distill_config_set_learn_lr, bool, pick_bool(), (void)0)
DCFG_SET(ddl_distill_config_set_resume, bool, chance(25), (void)0)

static void act_ddl_distill_config_set_experts(void) {
  int cs;
  const char* dir = chance(70) ? PICK(const char*, pathf("%s/experts-%u", tmp_dir, k3()), models_dir,
                                      pathf("%s/blocker", tmp_dir), pathf("%s/missing", tmp_dir))
                               : hostile_string(1);
  begin(ID_ddl_distill_config_set_experts);
  DdlDistillConfig* c = HANDLE(T_DCFG, cs);
  if (dir == NULL) must_fail = 1;
  (void)end(ddl_distill_config_set_experts(c, dir));
}

static void act_ddl_distill_config_set_herding_params(void) {
  int cs;
  const char* path = chance(30) ? NULL : read_path("params");
  begin(ID_ddl_distill_config_set_herding_params);
  DdlDistillConfig* c = HANDLE(T_DCFG, cs);
  must_fail = c == NULL; /* NULL and "" are allowed: they mean the default */
  (void)end(ddl_distill_config_set_herding_params(c, path));
}

static void act_ddl_distill_config_set_checkpoint(void) {
  int cs;
  const char* path = PICK(const char*, NULL, "", pathf("%s/ckpt-%u.safetensors", tmp_dir, k3()),
                          pathf("%s/blocker/ckpt.safetensors", tmp_dir), BAD_UTF8);
  begin(ID_ddl_distill_config_set_checkpoint);
  DdlDistillConfig* c = HANDLE(T_DCFG, cs);
  (void)end(ddl_distill_config_set_checkpoint(c, path, small_u64(0, 2)));
}

static void act_ddl_distill(void) {
  int bs, ds, cs;
  DdlDistilledSet* set = SENT;
  char* json = SENT;
  struct progress prog;
  void* user = NULL;
  begin(ID_ddl_distill);
  const DdlBundle* b = HANDLE(T_BUNDLE, bs);
  const DdlDataset* d = HANDLE(T_DATASET, ds);
  const DdlDistillConfig* c = HANDLE(T_DCFG, cs);
  DdlDistilledSet** o = OUT(&set);
  char** oj = OPT_OUT(&json);
  /* A few iterations at most (the whole run when it has no more), and none of an expensive
   * unroll. */
  const struct slot* info = slot_info(T_DCFG, cs);
  uint64_t limit = info->iterations <= 3 ? PICK(uint64_t, 0, 1, 100, 100) : PICK(uint64_t, 0, 1, 2);
  if (info->method == D_RANDOM || info->method == D_HERDING) limit = PICK(uint64_t, 0, 1, 100, 100);
  if ((info->method == D_MTT || info->method == D_BPTT) && info->syn_steps > 8) limit = 0;
  if (info->method == D_UNKNOWN) limit = 0;
  if (d == NULL || slot_info(T_DATASET, ds)->len > 64 || slot_info(T_DATASET, ds)->len < 0) limit = 0;
  DdlProgressFn f = pick_progress(&prog, limit, must_fail, &user);
  DdlStatus s = end(ddl_distill(b, d, c, f, user, o, oj));
  check_progress(s, f, &prog, 0);
  if (out_ok(s, o != NULL, set, "out_set")) store(T_DSET, set);
  take_json(s, oj != NULL, json, "out_json");
}

static void act_ddl_generate_experts(void) {
  int bs, ds;
  char* json = SENT;
  struct progress prog;
  void* user = NULL;
  size_t experts = small_size(1, 2), batch = small_size(1, 16);
  uint64_t epochs = small_u64(1, 3);
  float lr = rate(0.01f);
  const char* dir = chance(85) ? pathf("%s/experts-%u", tmp_dir, k3())
                 : chance(50)  ? pathf("%s/blocker/experts", tmp_dir)
                               : hostile_string(1);
  begin(ID_ddl_generate_experts);
  const DdlBundle* b = HANDLE(T_BUNDLE, bs);
  const DdlDataset* d = HANDLE(T_DATASET, ds);
  char** oj = OPT_OUT(&json);
  if (dir == NULL) must_fail = 1;
  int fails_fast = must_fail || experts == 0 || epochs == 0 || batch == 0 || !(lr > 0) || !isfinite(lr);
  uint64_t limit = slot_info(T_DATASET, ds)->len >= 0 && slot_info(T_DATASET, ds)->len <= 64
                       ? PICK(uint64_t, 0, 1, 6, 6) : 0;
  DdlProgressFn f = pick_progress(&prog, limit, fails_fast, &user);
  DdlStatus s = end(ddl_generate_experts(b, d, experts, epochs, lr, batch, pick_bool(), pick_u64(),
                                         dir, f, user, oj));
  if (s == DDL_STATUS_OK) CHECK(!fails_fast, "bad settings accepted");
  check_progress(s, f, &prog, 0); /* a generation left unfinished resumes where it stopped */
  take_json(s, oj != NULL, json, "out_json");
}

/* ------------------------------------------------------------------------------------------ */
/* Analyses. */
static const char* const analysis_names[] = {"pixels", "mixing", "sensitivity", "curvature",
                                             "recognition", "agreement",
                                             "recognition-over-training", "influence"};
#define NUM_ANALYSES (sizeof analysis_names / sizeof analysis_names[0])
/* Settings that keep each analysis to a fraction of a second on a few dozen 8x8 images. */
static const char* const tiny_options[NUM_ANALYSES] = {
    "{\"bins\": 10, \"real_images\": 20}",
    "{\"ks\": [0, 1], \"runs\": 1, \"steps\": 2, \"test_images\": 10}",
    "{\"runs\": 1, \"epochs\": 1, \"epoch_factors\": [], \"lr_factors\": [0.5], \"batch_sizes\": [0], "
    "\"architectures\": [], \"test_images\": 10}",
    "{\"steps\": [0, 1], \"train_images\": 10, \"batch\": 10, \"max_probes\": 2, "
    "\"spectrum_steps\": [1], \"lanczos_iters\": 2, \"slq_probes\": 1}",
    "{\"models\": [\"model\"], \"train_epochs\": 1, \"train_max_steps\": 1, \"test_images\": 10}",
    "{\"pool_a_size\": 2, \"pool_a_epochs\": 1, \"pool_a_max_steps\": 1, \"pool_b_runs\": 1, "
    "\"pool_b_epochs\": 1, \"pool_b_max_steps\": 1, \"distilled_steps\": 1, \"distilled_runs\": 1, "
    "\"test_images\": 10}",
    "{\"steps\": 2, \"every\": 1, \"test_images\": 10}",
    "{\"steps\": 2, \"loo_images\": 1, \"test_images\": 5, \"cg_iters\": 2, \"feature_steps\": 1, "
    "\"top_k\": 2, \"grid_images\": 2, \"random_draws\": 1}",
};

typedef DdlStatus (*AnalyzeFn)(const DdlBundle*, const DdlDataset*, const DdlDataset*,
                               const DdlDistilledSet* const*, const char* const*, size_t, DdlBudget,
                               const char*, uint64_t, const char*, DdlProgressFn, void*, char**);

/* One analysis call; `which` is the analysis (or -1: unknown name, for ddl_analyze). */
static void analyze(int fn, AnalyzeFn named, int which, const char* name) {
  int bs, trs, tes;
  char* json = SENT;
  struct progress prog;
  void* user = NULL;
  const DdlDistilledSet* sets[4];
  const char* names[4];
  begin(fn);
  const DdlBundle* b = HANDLE(T_BUNDLE, bs);
  const DdlDataset* tr = HANDLE(T_DATASET, trs);
  const DdlDataset* te = HANDLE(T_DATASET, tes);
  size_t num_sets = chance(90) ? (size_t)below(3) : pick_size();
  int sets_ok = 1;
  for (int i = 0; i < 4; i++) {
    int ss = pick_slot(T_DSET);
    sets[i] = handle_at(T_DSET, ss, 0);
    if (sets[i] == NULL && (size_t)i < num_sets) sets_ok = 0;
    names[i] = chance(80) ? PICK(const char*, "toy", "set", "a b") : PICK(const char*, NULL, "", BAD_UTF8);
  }
  const DdlDistilledSet* const* ps = buffer_for(sets, num_sets, 4, num_sets > 0);
  const char* const* pn = chance(50) ? buffer_for(names, num_sets, 4, 0) : NULL;
  if (ps && !sets_ok) must_fail = 1;
  DdlBudget budget = chance(80) ? DDL_BUDGET_SMOKE : pick_enum(3);
  const char* options = chance(75) && which >= 0 ? tiny_options[which]
                                                 : PICK(const char*, NULL, "", "{", "[]", "null",
                                                        "{\"bogus_field\": 1}", BAD_UTF8);
  const char* out_dir = PICK(const char*, NULL, NULL, pathf("%s/analysis-%u", tmp_dir, k3()),
                             pathf("%s/blocker/analysis", tmp_dir), BAD_UTF8);
  char** o = OUT(&json);
  if (fn == ID_ddl_analyze && name == NULL) must_fail = 1;
  /* Bounded: few steps; none with settings that are not the tiny ones or more than 64 images. */
  const struct slot *itr = slot_info(T_DATASET, trs), *ite = slot_info(T_DATASET, tes);
  uint64_t limit = PICK(uint64_t, 0, 1, 2, 4, 1000);
  if (options != tiny_options[which < 0 ? 0 : which] || budget != DDL_BUDGET_SMOKE) limit = 0;
  if (itr->len < 0 || itr->len > 64 || ite->len < 0 || ite->len > 64) limit = 0;
  DdlProgressFn f = pick_progress(&prog, limit, must_fail, &user);
  DdlStatus s;
  if (fn == ID_ddl_analyze)
    s = end(ddl_analyze(name, b, tr, te, ps, pn, num_sets, budget, options, pick_u64(), out_dir, f,
                        user, o));
  else
    s = end(named(b, tr, te, ps, pn, num_sets, budget, options, pick_u64(), out_dir, f, user, o));
  check_progress(s, f, &prog, 0);
  if (s == DDL_STATUS_OK && o && json && json != SENT)
    CHECK(strstr(json, "\"verdict\"") != NULL, "no verdict: %.80s", json);
  take_json(s, o != NULL, json, "out_json");
}

static void act_ddl_analysis_names(void) {
  char* json = SENT;
  begin(ID_ddl_analysis_names);
  char** o = OUT(&json);
  DdlStatus s = end(ddl_analysis_names(o));
  if (s == DDL_STATUS_OK && json && json != SENT)
    for (size_t i = 0; i < NUM_ANALYSES; i++)
      CHECK(strstr(json, analysis_names[i]) != NULL, "%s not listed", analysis_names[i]);
  take_json(s, o != NULL, json, "out_json");
}

static void act_ddl_analyze(void) {
  int which = (int)below(NUM_ANALYSES + 2);
  const char* name;
  if (which < (int)NUM_ANALYSES) {
    name = analysis_names[which];
  } else {
    name = PICK(const char*, "bogus", "", "PIXELS", BAD_UTF8, NULL);
    which = -1;
  }
  analyze(ID_ddl_analyze, NULL, which, name);
}
static void act_ddl_analyze_pixels(void) { analyze(ID_ddl_analyze_pixels, ddl_analyze_pixels, 0, NULL); }
static void act_ddl_analyze_mixing(void) { analyze(ID_ddl_analyze_mixing, ddl_analyze_mixing, 1, NULL); }
static void act_ddl_analyze_sensitivity(void) {
  analyze(ID_ddl_analyze_sensitivity, ddl_analyze_sensitivity, 2, NULL);
}
static void act_ddl_analyze_curvature(void) {
  analyze(ID_ddl_analyze_curvature, ddl_analyze_curvature, 3, NULL);
}
static void act_ddl_analyze_recognition(void) {
  analyze(ID_ddl_analyze_recognition, ddl_analyze_recognition, 4, NULL);
}
static void act_ddl_analyze_agreement(void) {
  analyze(ID_ddl_analyze_agreement, ddl_analyze_agreement, 5, NULL);
}
static void act_ddl_analyze_recognition_over_training(void) {
  analyze(ID_ddl_analyze_recognition_over_training, ddl_analyze_recognition_over_training, 6, NULL);
}
static void act_ddl_analyze_influence(void) {
  analyze(ID_ddl_analyze_influence, ddl_analyze_influence, 7, NULL);
}

/* ------------------------------------------------------------------------------------------ */
#define AS_ACTION(f) act_##f,
static void (*const actions[NUM_FUNCS])(void) = {FUNCTIONS(AS_ACTION)};

/* How often each function is picked, relative to 1: the constructors more, so that the table
 * holds live handles of every type and calls get past their argument checks. */
static unsigned weight(int fn) {
  switch (fn) {
    case ID_ddl_dataset_from_memory: return 6;
    case ID_ddl_bundle_open:
    case ID_ddl_params_init:
    case ID_ddl_distill_config_new: return 4;
    case ID_ddl_distill_config_set_iterations:
    case ID_ddl_train_config_p_dist:
    case ID_ddl_train_config_p_real:
    case ID_ddl_distilled_create:
    case ID_ddl_dataset_class_balanced:
    case ID_ddl_train: return 2;
    default: return 1;
  }
}
static int pick_function(void) {
  static unsigned total_weight = 0;
  if (total_weight == 0)
    for (int i = 0; i < NUM_FUNCS; i++) total_weight += weight(i);
  unsigned r = (unsigned)below(total_weight);
  for (int i = 0; i < NUM_FUNCS; i++) {
    if (r < weight(i)) return i;
    r -= weight(i);
  }
  return NUM_FUNCS - 1;
}

static void write_file(const char* path, const char* content) {
  FILE* f = fopen(path, "wb");
  if (!f) {
    fprintf(stderr, "cannot write %s\n", path);
    exit(2);
  }
  fputs(content, f);
  fclose(f);
}

int main(int argc, char** argv) {
  if (argc < 3 || argc > 5) {
    fprintf(stderr, "usage: %s MODELS_DIR TMP_DIR [SEED [CALLS]]\n", argv[0]);
    return 2;
  }
  snprintf(models_dir, sizeof models_dir, "%s", argv[1]);
  snprintf(tmp_dir, sizeof tmp_dir, "%s", argv[2]);
  if (argc >= 4) seed_arg = strtoull(argv[3], NULL, 10);
  unsigned long total = argc >= 5 ? strtoul(argv[4], NULL, 10) : DEFAULT_CALLS;
  rng_state = seed_arg;
  trace = getenv("C_API_PROPERTY_TRACE") != NULL;
  /* Relative paths (e.g. an empty output folder) land in TMP_DIR, never in the project. */
  if (chdir(tmp_dir) != 0) {
    fprintf(stderr, "cannot enter %s\n", tmp_dir);
    return 2;
  }
  write_file(pathf("%s/blocker", tmp_dir), "");
  write_file(pathf("%s/garbage.safetensors", tmp_dir), "\x08\x00\x00\x00\x00\x00\x00\x00{\"a\":1}x");
  write_file(pathf("%s/garbage.npz", tmp_dir), "PK\x03\x04 not a zip");
  write_file(pathf("%s/garbage.npy", tmp_dir), "\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'}");
  fin = calloc(SCR, sizeof(float));
  fout = calloc(SCR, sizeof(float));
  fout2 = calloc(SCR, sizeof(float));
  for (int t = 0; t < T_COUNT; t++)
    for (int i = 0; i < SLOTS; i++) clear_slot(t, i);

  /* Calls go through every function in a random order, then at random; the first tenth (up to
   * 200) run before ONNX Runtime is set up. */
  unsigned long before_init = total / 10 < 200 ? total / 10 : 200;
  int order[NUM_FUNCS];
  for (int i = 0; i < NUM_FUNCS; i++) order[i] = i;
  for (int i = NUM_FUNCS - 1; i > 0; i--) {
    int j = (int)below((uint64_t)i + 1), t = order[i];
    order[i] = order[j], order[j] = t;
  }
  double t0 = now();
  clock_t c0 = clock();
  for (unsigned long k = 0; k < total; k++) {
    if (k == before_init) {
      DdlStatus s = CALL(ddl_runtime_init, NULL, DDL_PROVIDER_CPU, 1);
      if (s != DDL_STATUS_OK) {
        fprintf(stderr, "ddl_runtime_init: %s: %s\n", ddl_status_name(s), ddl_last_error());
        return 1;
      }
      runtime_ready = 1;
      k++;
      if (k >= total) break;
    }
    int fn = k < NUM_FUNCS ? order[k] : pick_function();
    actions[fn]();
  }
  double elapsed = now() - t0, cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;

  for (int t = 0; t < T_COUNT; t++)
    for (int i = 0; i < SLOTS; i++) clear_slot(t, i);
  free(msg_before);
  free(fin);
  free(fout);
  free(fout2);

  int distinct = 0;
  printf("covered:");
  for (int i = 0; i < NUM_FUNCS; i++)
    if (call_counts[i]) {
      distinct++;
      printf(" %s", func_names[i]);
    }
  printf("\n");
  for (size_t i = 0; skipped[i][0] != NULL; i++) printf("skipped: %s (%s)\n", skipped[i][0], skipped[i][1]);
  printf("not covered:");
  for (int i = 0; i < NUM_FUNCS; i++)
    if (!call_counts[i]) printf(" %s", func_names[i]);
  printf("\nstatuses:");
  for (unsigned s = 0; s < 32; s++)
    if (status_counts[s]) printf(" %s=%lu", ddl_status_name(s), status_counts[s]);
  printf("\nslowest:");
  for (int r = 0; r < 6; r++) {
    int best = -1;
    for (int i = 0; i < NUM_FUNCS; i++)
      if (seconds[i] >= 0 && (best < 0 || seconds[i] > seconds[best])) best = i;
    if (best < 0) break;
    printf(" %s %.2fs/%lu", func_names[best], seconds[best], call_counts[best]);
    seconds[best] = -1;
  }
  printf("\nseed %llu: %.1f s, %.1f s of CPU\n", (unsigned long long)seed_arg, elapsed, cpu);
  if (failures) {
    fprintf(stderr, "%d check(s) failed (seed %llu)\n", failures, (unsigned long long)seed_arg);
    return 1;
  }
  printf("c_api_property: %lu calls, %d distinct functions, %lu non-OK statuses, all checks passed\n",
         calls, distinct, nonok);
  return 0;
}
