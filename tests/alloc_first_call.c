/* The allocator's first call comes before its process init: from the constructor of a library
 * the program needs (tests/first_call_lib.c), as a C++ runtime's does under LD_PRELOAD. Every
 * kind of call, at sizes on both sides of the direct table's end (8 KiB), the medium classes'
 * (128 KiB) and the large tier's (32 MiB), must return a usable block that hakmem owns, and
 * the heap must work afterwards. Run without HKT_FIRST_CALL, the program runs itself once per
 * case (a fresh process each: only a process's first call is the case) and fails if any
 * child fails. Preload build only: the linked hk_ build's calls cannot come first. */
#include "alloc_test.h"

#define NAME "alloc_first_call"

extern void *first_call_block;
extern size_t first_call_size, first_call_align;
extern int first_call_zeroed, first_call_ran;

static const char *const kinds[] = {"malloc",        "calloc",   "realloc", "posix_memalign",
                                    "aligned_alloc", "memalign", "free_then_malloc"};
static const size_t sizes[] = {16,     8192,        8193,        72704,
                               131072, 131073,      2 << 20,     (32 << 20) + 1};

/* One case, in this process: the constructor made the call; check what it returned. */
static int check_case(void) {
    hkt_init(NAME);
    void *p = first_call_block;
    size_t n = first_call_size;
    REQUIRE(first_call_ran, "the library's constructor did not see HKT_FIRST_CALL");
    REQUIRE(p != NULL, "the first call (%s) returned NULL", getenv("HKT_FIRST_CALL"));
    if (!hkt_system) CHECK(hkt_owns(p) == 1, "the first block %p is not hakmem's", p);
    CHECK(((uintptr_t)p & 15) == 0, "first block %p not 16-byte aligned", p);
    if (first_call_align)
        CHECK(((uintptr_t)p & (first_call_align - 1)) == 0, "first block %p not %zu-aligned", p,
              first_call_align);
    if (first_call_zeroed >= 0) CHECK(first_call_zeroed == 1, "calloc's first block not zeroed");
    CHECK(hkt_usable_size(p) >= n, "usable %zu < %zu", hkt_usable_size(p), n);
    size_t bad = (size_t)-1;
    for (size_t i = 0; i < n && bad == (size_t)-1; i++)
        if (((unsigned char *)p)[i] != 0xA5) bad = i;
    CHECK(bad == (size_t)-1, "first block's byte %zu changed after the constructor", bad);
    /* The block moves through the tiers and keeps its content. */
    size_t keep = n < 4096 ? n : 4096;
    unsigned char *q = realloc(p, 3 * n + 100000);
    REQUIRE(q != NULL, "realloc of the first block failed");
    for (size_t i = 0; i < keep; i++)
        if (q[i] != 0xA5) {
            CHECK(0, "byte %zu lost by realloc", i);
            break;
        }
    q = realloc(q, 24);
    REQUIRE(q != NULL, "realloc to 24 bytes failed");
    CHECK(q[0] == 0xA5 && q[(n < 24 ? n : 24) - 1] == 0xA5, "realloc to 24 bytes lost the content");
    free(q);
    /* The heap after it: every tier, filled, checked and freed. */
    void *blocks[32];
    for (int i = 0; i < 32; i++) {
        size_t s = (size_t)16 << (i % 22);
        blocks[i] = malloc(s);
        REQUIRE(blocks[i] != NULL, "malloc(%zu) after the first call failed", s);
        hkt_fill(blocks[i], s, (uint64_t)i);
    }
    for (int i = 0; i < 32; i++) {
        size_t s = (size_t)16 << (i % 22);
        CHECK(hkt_verify(blocks[i], s, (uint64_t)i) == (size_t)-1, "block %d (%zu B) changed",
              i, s);
        free(blocks[i]);
    }
    return hkt_finish(NAME);
}

/* Runs every case as a child process of this program; returns the number that failed. */
static int run_cases(void) {
    int failed = 0, total = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            char spec[64];
            snprintf(spec, sizeof spec, "%s:%zu", kinds[k], sizes[s]);
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0) {
                setenv("HKT_FIRST_CALL", spec, 1);
                execl("/proc/self/exe", NAME, (char *)NULL);
                _exit(127);
            }
            int status = 0;
            waitpid(pid, &status, 0);
            int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
            if (!ok)
                printf("FAIL %s: first call %s: %s %d\n", NAME, spec,
                       WIFSIGNALED(status) ? "killed by signal" : "exit status",
                       WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
            failed += !ok;
            total++;
        }
    printf("%s: %d cases, %d failed -> %s\n", NAME, total, failed, failed ? "FAIL" : "ok");
    return failed;
}

int main(void) {
    if (getenv("HKT_FIRST_CALL")) return check_case();
    return run_cases() ? 1 : 0;
}
