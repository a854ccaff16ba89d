/* A shared library whose constructor makes one allocation call, named by HKT_FIRST_CALL
 * ("KIND:SIZE"). tests/alloc_first_call.c is linked with it: the loader runs this constructor
 * before a preloaded allocator's own (libraries a program needs are initialised before the
 * ones preloaded beside them), so the call reaches the allocator before its process init, as
 * a C++ runtime's first allocation (libstdc++'s exception pool, 72704 bytes) does. It allocates
 * nothing when the variable is unset. */
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void *first_call_block;     /* what the call returned */
size_t first_call_size;     /* the bytes asked for */
size_t first_call_align;    /* the alignment asked for, 0 for none */
int first_call_zeroed = -1; /* calloc: 1 when every byte was 0 */
int first_call_ran;         /* the constructor saw HKT_FIRST_CALL */

__attribute__((constructor)) static void first_call(void) {
    const char *spec = getenv("HKT_FIRST_CALL"), *colon = spec ? strchr(spec, ':') : NULL;
    if (colon == NULL) return;
    size_t kind_len = (size_t)(colon - spec), n = strtoull(colon + 1, NULL, 0);
    first_call_ran = 1;
    first_call_size = n;
    void *p = NULL;
#define KIND(name) (kind_len == strlen(name) && memcmp(spec, name, kind_len) == 0)
    if (KIND("malloc")) p = malloc(n);
    else if (KIND("calloc")) {
        p = calloc(1, n);
        if (p) {
            first_call_zeroed = 1;
            for (size_t i = 0; i < n; i++)
                if (((unsigned char *)p)[i]) first_call_zeroed = 0;
        }
    } else if (KIND("realloc")) p = realloc(NULL, n);
    else if (KIND("posix_memalign")) {
        first_call_align = 64;
        if (posix_memalign(&p, 64, n) != 0) p = NULL;
    } else if (KIND("aligned_alloc")) {
        first_call_align = 4096;
        p = aligned_alloc(4096, (n + 4095) & ~(size_t)4095);
    } else if (KIND("memalign")) {
        first_call_align = 1 << 16;
        p = memalign(1 << 16, n);
    } else if (KIND("free_then_malloc")) { /* free(NULL) as the very first call */
        free(NULL);
        p = malloc(n);
    }
#undef KIND
    if (p) memset(p, 0xA5, n); /* the whole block is the program's to write */
    first_call_block = p;
}
