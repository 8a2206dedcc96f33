/* Compiles the public C header as C (not C++) and runs a tiny program against the library. */
#include "akv/akv.h"

#include <stdio.h>

int main(int argc, char** argv) {
  akv_engine* e = NULL;
  akv_status st = akv_engine_load_on(argc > 1 ? argv[1] : "/nonexistent.gguf", 1, "cpu", &e);
  if (argc > 1 && st != AKV_OK) {
    fprintf(stderr, "load failed: %s\n", akv_last_error());
    return 1;
  }
  if (argc <= 1) return st == AKV_NOT_FOUND ? 0 : 1;
  akv_engine_free(e);
  return 0;
}
