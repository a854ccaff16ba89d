/* Shared check harness of the spsc_* tests: a CHECK that counts failures instead of stopping,
 * so one run reports every broken property, and item <-> integer conversions. */
#ifndef HK_SPSC_TEST_H
#define HK_SPSC_TEST_H

#include <stdint.h>
#include <stdio.h>

static int failures;
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

#define P(x) ((void *)(uintptr_t)(x))
#define U(p) ((uintptr_t)(p))

#endif
