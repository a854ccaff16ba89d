/* realloc_growth: objects grown by appending, as string builders and vectors do: strings by
 * +1..16 bytes per realloc, arrays by +16 elements and by doubling. Objects grow round-robin
 * so neighbours get in each other's way; contents are checked after every round. One op =
 * one realloc call. */
#include "bench_common.h"

/* Content of byte/element i of object o: cheap to recompute, differs between objects. */
static inline unsigned char str_char(uint64_t key, size_t i) {
    return (unsigned char)('a' + (unsigned)((bc_splitmix(key + i / 8) >> ((i % 8) * 8)) % 26));
}
static inline uint32_t elem(uint64_t key, size_t i) {
    return (uint32_t)(key * 2654435761u + i);
}

typedef struct {
    void *p;
    size_t len, cap;
} obj;

static void *grow(void *p, size_t bytes, uint64_t *ops) {
    void *q = realloc(p, bytes);
    if (!q) bc_fail("realloc(%zu) returned NULL", bytes);
    ++*ops;
    return q;
}

int main(int argc, char **argv) {
    size_t objects = 64, max_len = 16384;
    uint64_t rounds = 10, seed = 1;
    const bc_opt opts[] = {
        {"objects", BC_SIZE, &objects, "objects of each kind grown side by side"},
        {"max-len", BC_SIZE, &max_len, "final string length in bytes / array length in elements"},
        {"rounds", BC_U64, &rounds, "times every object is built from empty and freed"},
        {"seed", BC_U64, &seed, "PRNG seed"},
    };
    bc_workload = "realloc_growth";
    bc_parse(argc, argv, "Strings and arrays grown by realloc, contents verified.", opts,
             sizeof opts / sizeof opts[0]);
    if (objects < 1 || max_len < 1) {
        fprintf(stderr, "realloc_growth: objects and max-len must be >= 1\n");
        return 2;
    }
    bc_rng rng;
    bc_rng_init(&rng, seed, 0);
    obj *str = bc_malloc(objects * sizeof *str), *step = bc_malloc(objects * sizeof *step),
        *dbl = bc_malloc(objects * sizeof *dbl);
    uint64_t ops = 0;
    double t0 = bc_now();
    for (uint64_t r = 0; r < rounds; r++) {
        uint64_t key0 = bc_splitmix(seed ^ (r << 20));
        memset(str, 0, objects * sizeof *str);
        memset(step, 0, objects * sizeof *step);
        memset(dbl, 0, objects * sizeof *dbl);
        for (int busy = 1; busy;) {
            busy = 0;
            for (size_t o = 0; o < objects; o++) {
                uint64_t key = key0 + o;
                /* String: exact-fit realloc to len + n + 1 for every append, NUL kept. */
                if (str[o].len < max_len) {
                    size_t n = 1 + (size_t)bc_below(bc_next(&rng), 16);
                    if (n > max_len - str[o].len) n = max_len - str[o].len;
                    unsigned char *s = str[o].p = grow(str[o].p, str[o].len + n + 1, &ops);
                    for (size_t i = 0; i < n; i++)
                        s[str[o].len + i] = str_char(key, str[o].len + i);
                    str[o].len += n;
                    s[str[o].len] = 0;
                    busy = 1;
                }
                /* Array grown by a fixed +16 elements. */
                if (step[o].len < max_len / 4) {
                    if (step[o].len == step[o].cap) {
                        step[o].cap += 16;
                        step[o].p = grow(step[o].p, step[o].cap * sizeof(uint32_t), &ops);
                    }
                    uint32_t *a = step[o].p;
                    for (int k = 0; k < 4 && step[o].len < step[o].cap; k++, step[o].len++)
                        a[step[o].len] = elem(key, step[o].len);
                    busy = 1;
                }
                /* Array grown by doubling. */
                if (dbl[o].len < max_len / 4) {
                    if (dbl[o].len == dbl[o].cap) {
                        dbl[o].cap = dbl[o].cap ? dbl[o].cap * 2 : 4;
                        dbl[o].p = grow(dbl[o].p, dbl[o].cap * sizeof(uint32_t), &ops);
                    }
                    uint32_t *a = dbl[o].p;
                    for (int k = 0; k < 4 && dbl[o].len < dbl[o].cap; k++, dbl[o].len++)
                        a[dbl[o].len] = elem(~key, dbl[o].len);
                    busy = 1;
                }
            }
        }
        for (size_t o = 0; o < objects; o++) {
            uint64_t key = key0 + o;
            const unsigned char *s = str[o].p;
            const uint32_t *a = step[o].p, *d = dbl[o].p;
            for (size_t i = 0; i < str[o].len; i++)
                if (s[i] != str_char(key, i))
                    bc_fail("string %zu: byte %zu changed by realloc", o, i);
            if (s[str[o].len] != 0) bc_fail("string %zu: terminator lost", o);
            for (size_t i = 0; i < step[o].len; i++)
                if (a[i] != elem(key, i)) bc_fail("+16 array %zu: element %zu changed", o, i);
            for (size_t i = 0; i < dbl[o].len; i++)
                if (d[i] != elem(~key, i)) bc_fail("doubling array %zu: element %zu changed", o, i);
            free(str[o].p);
            free(step[o].p);
            free(dbl[o].p);
        }
    }
    double t1 = bc_now();
    free(str);
    free(step);
    free(dbl);
    char params[96];
    snprintf(params, sizeof params, "objects=%zu max_len=%zu", objects, max_len);
    bc_result(params, ops, t1 - t0);
    return 0;
}
