/* ddlens from C: load Fashion-MNIST, train a model on a class-balanced subset, evaluate it on
 * test images, and save the trained parameters.
 *
 *   cc -std=c11 -I include examples/c/train_eval.c -L target/release -lddlens \
 *      -Wl,-rpath,$PWD/target/release -o train_eval
 *   ./train_eval [BUNDLE [DATA_DIR [PER_CLASS [EPOCHS [OUT.safetensors]]]]]
 *
 * BUNDLE is a bundle folder or a name from models/ (default mlp-1x28x28); DATA_DIR the
 * Fashion-MNIST folder (default: DDLENS_DATA or /usr/share/datasets/fashion-mnist). */
#include <stdio.h>
#include <stdlib.h>

#include "ddlens.h"

/* Prints the failing call's status and message, then leaves. Real programs would clean up;
 * the operating system does it here. */
static void check(DdlStatus status, const char* what) {
  if (status != DDL_STATUS_OK) {
    fprintf(stderr, "%s failed: %s: %s\n", what, ddl_status_name(status), ddl_last_error());
    exit(1);
  }
}

/* Progress callback: a line every 10 updates. Returning nonzero would cancel training. */
static int progress(void* user_data, uint64_t step, uint64_t total) {
  const char* label = user_data;
  if (step % 10 == 0 || step == total) printf("  %s: step %llu/%llu\n", label,
                                              (unsigned long long)step, (unsigned long long)total);
  return 0;
}

int main(int argc, char** argv) {
  const char* model = argc > 1 ? argv[1] : "mlp-1x28x28";
  const char* data_dir = argc > 2 && argv[2][0] ? argv[2] : NULL;
  size_t per_class = argc > 3 ? strtoul(argv[3], NULL, 10) : 100;
  uint64_t epochs = argc > 4 ? strtoull(argv[4], NULL, 10) : 3;
  const char* out_path = argc > 5 ? argv[5] : NULL;

  printf("ddlens %s (header %s)\n", ddl_version(), DDL_VERSION_STRING);
  /* One ONNX Runtime per process: search for the library, CUDA if it works, default threads. */
  check(ddl_runtime_init(NULL, DDL_PROVIDER_AUTO, 0), "ddl_runtime_init");
  char* json = NULL;
  check(ddl_runtime_describe(&json), "ddl_runtime_describe");
  printf("runtime: %s\n", json);
  ddl_string_free(json);

  DdlBundle* bundle = NULL;
  check(ddl_bundle_open(model, &bundle), "ddl_bundle_open");
  size_t num_params = 0;
  check(ddl_bundle_num_parameters(bundle, &num_params), "ddl_bundle_num_parameters");
  printf("model %s: %zu parameters\n", model, num_params);

  DdlDataset *train_all = NULL, *test_all = NULL;
  check(ddl_dataset_load("fashion-mnist", data_dir, &train_all, &test_all), "ddl_dataset_load");
  DdlDataset *train = NULL, *test = NULL;
  check(ddl_dataset_class_balanced(train_all, per_class, 0, &train), "class_balanced (train)");
  check(ddl_dataset_class_balanced(test_all, 100, 0, &test), "class_balanced (test)");
  ddl_dataset_free(train_all);
  ddl_dataset_free(test_all);
  size_t n_train = 0, n_test = 0;
  check(ddl_dataset_len(train, &n_train), "ddl_dataset_len");
  check(ddl_dataset_len(test, &n_test), "ddl_dataset_len");

  /* P_real-style SGD: minibatch 64, lr 0.05, momentum 0.9. */
  DdlTrainConfig* config = NULL;
  check(ddl_train_config_p_real(epochs, 0, &config), "ddl_train_config_p_real");
  check(ddl_train_config_set_batch_size(config, 64), "set_batch_size");
  check(ddl_train_config_set_lr(config, 0.05f), "set_lr");

  DdlParams* init = NULL;
  check(ddl_params_init(bundle, 0, &init), "ddl_params_init");
  double acc0 = 0;
  check(ddl_evaluate(bundle, init, test, &acc0, NULL, NULL), "ddl_evaluate (init)");

  printf("training on %zu images for %llu epochs\n", n_train, (unsigned long long)epochs);
  DdlParams* trained = NULL;
  char* report = NULL;
  check(ddl_train(bundle, init, train, config, progress, "train", &trained, &report), "ddl_train");
  ddl_string_free(report);

  double acc = 0, loss = 0;
  check(ddl_evaluate(bundle, trained, test, &acc, &loss, NULL), "ddl_evaluate");
  printf("test accuracy on %zu images: %.4f (untrained %.4f), loss %.4f\n", n_test, acc, acc0,
         loss);
  if (out_path != NULL) {
    check(ddl_params_save(bundle, trained, out_path), "ddl_params_save");
    printf("wrote %s\n", out_path);
  }

  ddl_params_free(trained);
  ddl_params_free(init);
  ddl_train_config_free(config);
  ddl_dataset_free(train);
  ddl_dataset_free(test);
  ddl_bundle_free(bundle);
  return 0;
}
