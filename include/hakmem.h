/* hakmem: public prefixed API.
 * These functions work whether or not the malloc override is active; a pointer from
 * hk_malloc may be released with free() only when libhakmem provides free() too. */
#ifndef HAKMEM_H
#define HAKMEM_H

#include <stddef.h>
#include <stdio.h>

/* The one place the version is set: the Makefile reads these three lines for the library's
 * soname, hakmem.pc, the CMake package and `hakmem --version`. */
#define HAKMEM_VERSION_MAJOR 0
#define HAKMEM_VERSION_MINOR 1
#define HAKMEM_VERSION_PATCH 0
#define HAKMEM_VERSION                                                                             \
    (HAKMEM_VERSION_MAJOR * 10000 + HAKMEM_VERSION_MINOR * 100 + HAKMEM_VERSION_PATCH)

#ifdef __cplusplus
extern "C" {
#endif

void *hk_malloc(size_t size);
void *hk_calloc(size_t count, size_t size);
void *hk_realloc(void *ptr, size_t size);
void hk_free(void *ptr);
/* C23 free_sized: size must be the size requested (or anything up to the usable size). */
void hk_free_sized(void *ptr, size_t size);
void *hk_aligned_alloc(size_t alignment, size_t size);
int hk_posix_memalign(void **out, size_t alignment, size_t size);
/* Bytes usable in the block (>= the request); 0 for NULL or a pointer that is not ours. */
size_t hk_usable_size(const void *ptr);
/* Return free memory of the calling thread's heap and the caches to the OS. Returns 1 if any
 * memory was released. */
int hk_trim(void);
/* Print statistics (per size class with HAKMEM_BUILD_STATS, memory always); NULL: stderr. */
void hk_stats_print(FILE *out);
/* The same figures as one JSON object (memory in bytes), followed by a newline. */
void hk_stats_print_json(FILE *out);
/* 1 when ptr lies in memory hakmem manages (any block, live or free). */
int hk_owns(const void *ptr);

#ifdef __cplusplus
}
#endif
#endif
