/* fuzz.h: what every fuzz target provides: the libFuzzer entry point and
 * a generator of valid seed inputs (used to start campaigns and by the
 * replay driver that runs in the ordinary test suite). */
#ifndef VT_TESTS_FUZZ_H
#define VT_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

/* Receives one seed; returns 0 to continue. */
typedef int (*vt_fuzz_emit_fn)(void *ud, const uint8_t *data, size_t len);
int vt_fuzz_seeds(vt_fuzz_emit_fn emit, void *ud);

#endif
