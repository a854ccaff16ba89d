/* security cases: one heap error per run, named on the command line (`cases NAME`; `cases
 * --list` prints the names). Each case makes its error, then churns the heap of that size and
 * checks that the blocks it gets stay distinct and intact. Exit codes the runner reads: 0 ran
 * to the end (the error went unnoticed, or the case is benign and behaved), 3 the case saw its
 * error's effect (a secret still readable, a wrong result), 4 the heap handed out damaged or
 * overlapping blocks, 6 the case's own bad write faulted (a guard page, or nothing mapped
 * there), 77 the call does not exist in this C library. Any other signal is the allocator's
 * verdict, or a crash inside it. Built with -fno-builtin so every bad write and
 * call stays in the binary. Uses only the libc interface, so it runs under any allocator. */
#include <alloca.h>
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <signal.h>
#include <unistd.h>

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)

/* Keeps the compiler from reasoning about pointers and sizes. */
static void *volatile sink;
static void *opaque(void *p) {
    sink = p;
    return sink;
}
static size_t opaque_n(size_t n) {
    volatile size_t v = n;
    return v;
}

/* The bytes the case is writing out of bounds, while it writes them: a fault there stopped
 * the bad write itself (exit 6), which tells a guard page or unmapped memory from a crash
 * inside the allocator later on, which keeps the signal. */
static volatile uintptr_t wild_lo, wild_hi;

static void wild_begin(const void *p, size_t n) {
    wild_lo = (uintptr_t)p;
    wild_hi = (uintptr_t)p + n;
}
static void wild_end(void) { wild_lo = wild_hi = 0; }

static void on_fault(int sig, siginfo_t *si, void *ctx) {
    (void)ctx;
    uintptr_t a = (uintptr_t)si->si_addr;
    if (a >= wild_lo && a < wild_hi) _exit(6);
    signal(sig, SIG_DFL); /* the faulting instruction runs again and the signal kills */
}

static void catch_faults(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
}

/* Allocate and free blocks of size n, each filled with its own pattern and checked, so a
 * damaged free list or a block handed out twice shows (exit 4) or is caught by the allocator. */
static void churn(size_t n) {
    enum { K = 64 };
    static unsigned char *blk[K];
    for (int round = 0; round < 8; round++) {
        for (int i = 0; i < K; i++) {
            blk[i] = malloc(n);
            if (!blk[i]) _exit(5);
            memset(blk[i], (unsigned char)(i + 1), n < 256 ? n : 256);
        }
        for (int i = 0; i < K; i++)
            for (size_t j = 0; j < (n < 256 ? n : 256); j++)
                if (blk[i][j] != (unsigned char)(i + 1)) {
                    fprintf(stderr, "cases: block %d of %zu bytes damaged at %zu\n", i, n, j);
                    _exit(4);
                }
        for (int i = 0; i < K; i++) free(blk[i]);
    }
}

/* ---- double free ---- */
static int df_immediate(void) {
    char *p = malloc(48);
    free(p);
    free(opaque(p));
    churn(48);
    return 0;
}

static int df_delayed(void) {
    char *p = malloc(48);
    free(p);
    for (int i = 0; i < 100; i++) free(malloc(16 + (size_t)(i % 8) * 100));
    free(opaque(p));
    churn(48);
    return 0;
}

static int df_interleaved(void) {
    char *a = malloc(48), *b = malloc(48);
    free(a);
    free(b);
    free(opaque(a));
    churn(48);
    return 0;
}

/* The block is handed out again before the second free: that free hits the new owner. */
static int df_after_reuse(void) {
    char *p = malloc(48);
    free(p);
    char *q = malloc(48);
    free(opaque(p));
    churn(48);
    free(q);
    return 0;
}

static void *free_in_thread(void *p) {
    free(p);
    return NULL;
}

/* A live neighbour keeps the page in use, so the block cannot be handed out again (to
 * pthread_create, say) between the two frees: that would be a double free after reuse. */
static int df_thread(void) {
    char *keep = malloc(48), *p = malloc(48);
    free(p);
    pthread_t t;
    if (pthread_create(&t, NULL, free_in_thread, opaque(p)) != 0) return 5;
    pthread_join(t, NULL);
    churn(48);
    free(keep);
    return 0;
}

static int df_sized(size_t n) {
    char *p = malloc(n);
    p[0] = 1;
    free(p);
    free(opaque(p));
    churn(n);
    return 0;
}
static int df_medium(void) { return df_sized(16 * KiB); }
static int df_large(void) { return df_sized(300 * KiB); }
static int df_huge(void) { return df_sized(8 * MiB); }

/* ---- invalid free ---- */
static char static_area[256] __attribute__((aligned(64)));

static int if_stack(void) {
    long local[8] = {1};
    free(opaque(local));
    churn(64);
    return local[0] == 1 ? 0 : 3;
}

static int if_alloca(void) {
    char *p = alloca(opaque_n(64));
    p[0] = 1;
    free(opaque(p));
    churn(64);
    return 0;
}

static int if_static(void) {
    free(opaque(static_area + 64));
    churn(64);
    return 0;
}

static int if_mmap(void) {
    char *m = mmap(NULL, 1 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return 5;
    free(opaque(m + 4096));
    churn(64);
    return 0;
}

/* Just past the end of a block (where its neighbour may start) and just before its start. */
static int if_past_end(void) {
    char *a = malloc(48), *b = malloc(48);
    free(opaque(a + 48));
    churn(48);
    free(a);
    (void)b;
    return 0;
}

/* Free `off` bytes into a fresh block of n bytes, then churn blocks of churn_n bytes. */
static int free_inside(size_t n, size_t off, size_t churn_n) {
    char *p = malloc(n);
    free(opaque(p + off));
    churn(churn_n);
    return 0;
}

/* Blocks a malloc never handed out: the next block of a fresh page (already on its free
 * list, or not yet carved) and one 8 KiB further on, freed by this thread or by another. */
static int if_never_handed(void) { return free_inside(16, 16, 16); }

static int if_never_carved(void) { return free_inside(16, 8 * KiB, 16); }

static int if_never_handed_thread(void) {
    char *p = malloc(16);
    pthread_t t;
    if (pthread_create(&t, NULL, free_in_thread, opaque(p + 16)) != 0) return 5;
    pthread_join(t, NULL);
    churn(16);
    return 0;
}

static int if_before_start(void) {
    char *a = malloc(48), *b = malloc(48);
    free(opaque(b - 16));
    churn(48);
    free(a);
    return 0;
}

static int if_interior(void) { return free_inside(64, 16, 64); }

static int if_unaligned(void) { return free_inside(64, 1, 64); }

static int if_offsets(void) {
    char *p = malloc(256);
    for (size_t off = 8; off < 256; off += 24) free(opaque(p + off));
    churn(256);
    return 0;
}

static int if_huge_interior(void) { return free_inside(8 * MiB, 4096, 64); }

static int if_realloc_stack(void) {
    long local[8] = {1};
    void *q = realloc(opaque(local), 128);
    (void)q;
    churn(64);
    return 0;
}

static int if_realloc_interior(void) {
    char *p = malloc(64);
    void *q = realloc(opaque(p + 16), 128);
    (void)q;
    churn(64);
    return 0;
}

static int if_realloc_freed(void) {
    char *p = malloc(64);
    free(p);
    void *q = realloc(opaque(p), 128);
    (void)q;
    churn(64);
    return 0;
}

static int if_free_sized(void) {
    void (*fs)(void *, size_t) = (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "free_sized");
    if (!fs) return 77;
    char *p = malloc(64);
    fs(opaque(p + 16), 48);
    churn(64);
    return 0;
}

static int if_free_aligned_sized(void) {
    void (*fas)(void *, size_t, size_t) =
        (void (*)(void *, size_t, size_t))dlsym(RTLD_DEFAULT, "free_aligned_sized");
    if (!fas) return 77;
    char *p = aligned_alloc(64, 128);
    fas(p, 64, 128);
    fas(opaque(p), 64, 128);
    churn(128);
    return 0;
}

/* ---- overflow and underflow: ov_{over,under}_{1,32,1m}_{write,memcpy}_{small,medium,large} */
static int overflow_case(const char *name) {
    char dir[8], amount[8], how[8], tier[8];
    if (sscanf(name, "ov_%7[a-z]_%7[0-9m]_%7[a-z]_%7[a-z0-9]", dir, amount, how, tier) != 4)
        return -1;
    size_t n = strcmp(tier, "small") == 0    ? 48
               : strcmp(tier, "4k") == 0     ? 4 * KiB
               : strcmp(tier, "medium") == 0 ? 16 * KiB
               : strcmp(tier, "large") == 0  ? 300 * KiB
                                             : 0;
    size_t by = strcmp(amount, "1") == 0 ? 1 : strcmp(amount, "32") == 0 ? 32 : MiB;
    int over = strcmp(dir, "over") == 0, memcpy_it = strcmp(how, "memcpy") == 0;
    if (n == 0 || (!over && strcmp(dir, "under") != 0) || (!memcpy_it && strcmp(how, "write")))
        return -1;
    static char src[MiB];
    memset(src, 'A', sizeof src);
    /* The victim p: the last of 17 blocks, or for an underflow of up to 32 bytes the one with
     * another of them nearest below it, so the bytes written land in a live neighbour whatever order the
     * allocator hands blocks out in (a block with nothing of its own before it is
     * uf_first_block's case). */
    enum { N = 17 };
    char *blk[N], *keep[N - 1];
    for (int i = 0; i < N; i++) blk[i] = malloc(n);
    int v = N - 1;
    uintptr_t nearest = UINTPTR_MAX;
    for (int i = 0; i < N && !over && by <= 32; i++)
        for (int j = 0; j < N; j++) {
            uintptr_t gap = (uintptr_t)blk[i] - (uintptr_t)blk[j];
            if (j != i && gap < nearest) nearest = gap, v = i;
        }
    char *p = blk[v];
    for (int i = 0, k = 0; i < N; i++)
        if (i != v) keep[k++] = blk[i];
    for (int i = 0; i < N - 1; i++) memset(keep[i], 'k', n);
    char *at = over ? p + n : p - by;
    /* The bytes written must differ from those there: a byte that already held 'A' (one
     * chance in 256 for a byte of a sealed trailer) would make a write no one could see, and
     * the case's outcome a matter of luck. Reading them is part of the bad access (a guard
     * page faults on it as on the write). */
    char fill[32];
    wild_begin(at, by);
    if (by <= sizeof fill)
        for (size_t i = 0; i < by; i++) fill[i] = ((volatile char *)at)[i] == 'A' ? 'B' : 'A';
    const char *from = by <= sizeof fill ? fill : src;
    if (memcpy_it) memcpy(opaque(at), from, by);
    else
        for (size_t i = 0; i < by; i++) ((volatile char *)at)[i] = from[i];
    wild_end();
    free(p);
    for (int i = 0; i < N - 1; i++) free(keep[i]);
    churn(n);
    return 0;
}

/* An underflow of a block that starts its page: nothing of a neighbour lies before it. In
 * hakmem a page of 16 KiB blocks starts on a 64 KiB boundary with its first block 64 bytes
 * in; 300 blocks fill more than a page, so one of them is such a block with no other within
 * 32 KiB below it. 77 (n/a) where there is none (another allocator). */
static int uf_first_block(void) {
    enum { N = 300 };
    static char *held[N];
    char *p = NULL;
    for (int i = 0; i < N; i++) {
        if (!(held[i] = malloc(16 * KiB))) return 5;
        memset(held[i], 'k', 16 * KiB);
    }
    for (int i = 0; i < N; i++) {
        uintptr_t b = (uintptr_t)held[i];
        int alone = (b & (64 * KiB - 1)) == 64;
        for (int j = 0; j < N && alone; j++)
            alone = !((uintptr_t)held[j] < b && b - (uintptr_t)held[j] < 32 * KiB);
        if (alone && (!p || held[i] < p)) p = held[i];
    }
    if (!p) return 77;
    ((volatile char *)opaque(p))[-1] = 'A';
    for (int i = 0; i < N; i++) free(held[i]);
    churn(16 * KiB);
    return 0;
}

/* ---- guard pages: a linear write of 64 KiB from a block's end up, or of 8 KiB from its
 * start down, the block never freed, so only a fault at the write itself can catch it ---- */
static int guard_case(size_t n, int over) {
    char *p = malloc(n);
    if (!p) return 5;
    memset(p, 'k', n);
    volatile char *v = (volatile char *)opaque(p);
    if (over) wild_begin(p + n, 64 * KiB);
    else wild_begin(p - 8 * KiB, 8 * KiB);
    for (size_t i = 0; i < (over ? 64 : 8) * KiB; i++) {
        if (over) v[n + i] = 'A';
        else v[-1 - (ptrdiff_t)i] = 'A';
    }
    return 0;
}
static int gp_large_over(void) { return guard_case(300 * KiB, 1); }
static int gp_large_under(void) { return guard_case(300 * KiB, 0); }
static int gp_huge_over(void) { return guard_case(8 * MiB, 1); }
static int gp_huge_under(void) { return guard_case(8 * MiB, 0); }

/* A wild write of zeroes 1 MiB below the first 4 KiB block (the first block of its size, as a
 * program's first stdio buffer is), then more blocks of that size. In hakmem's hardened build
 * that address lies in the block's segment header, over its page's descriptor; in the
 * default build below the segment, where nothing is mapped. */
static int meta_zero(void) {
    static char zeros[4 * KiB];
    char *p = malloc(4 * KiB);
    if (!p) return 5;
    char *at = p - MiB;
    wild_begin(at, sizeof zeros);
    memcpy(opaque(at), zeros, sizeof zeros);
    wild_end();
    churn(4 * KiB);
    free(p);
    return 0;
}

/* ---- write after free ---- */
static int uaf_write(void) {
    char *p = malloc(48);
    free(p);
    memset(opaque(p), 'A', 48);
    churn(48);
    return 0;
}

/* A write past the link words, then the block comes back from malloc. */
static int uaf_write_reuse(void) {
    char *p = malloc(48);
    free(p);
    ((volatile char *)p)[24] = 'A';
    char *q = malloc(48);
    churn(48);
    free(q);
    return 0;
}

/* A write past the link words of a freed 4 KiB block, and no call after it: only a check
 * at exit can see it. */
static int uaf_write_exit(void) {
    char *p = malloc(4 * KiB);
    free(p);
    ((volatile char *)opaque(p))[100] = 'A';
    return 0;
}

static int uaf_zero(void) {
    char *p = malloc(48);
    free(p);
    memset(opaque(p), 0, 48);
    churn(48);
    return 0;
}

/* A write after free that forges a freed block's link to another block start of the same
 * page: a live 1000-byte block the program holds (zero past its first words, its second word
 * copied from the freed block, so a free mark kept there matches). Exit 4 if malloc then
 * hands out the live block. 1000 bytes, so the fill a delaying allocator checks on reuse
 * (the first 256 bytes) does not reach the live block's end. */
static int uaf_forge_link(void) {
    enum { N = 1000, TRIES = 256 };
    char *live = calloc(1, N), *v = malloc(N);
    free(v);
    for (int i = 0; i < 100; i++) free(malloc(4000)); /* past any quarantine: v is on a list */
    memcpy(live + 8, opaque(v) + 8, 8);
    memcpy(opaque(v), &live, sizeof live);
    static char *got[TRIES];
    for (int i = 0; i < TRIES; i++) {
        got[i] = malloc(N);
        if (got[i] == live) return 4;
    }
    memset(live + 8, 0, 8);
    for (int i = 0; i < TRIES; i++) free(got[i]);
    free(live);
    churn(N);
    return 0;
}

/* What a freed block still holds: exit 3 if the secret written before free can be read. */
static int uaf_read_secret(void) {
    char *p = malloc(64);
    memset(p, 'S', 64);
    free(p);
    const volatile char *r = opaque(p);
    int kept = 0;
    for (int i = 16; i < 64; i++) kept += r[i] == 'S';
    return kept > 0 ? 3 : 0;
}

/* What a read a few bytes around a fresh 8-byte block (a heap disclosure bug) gives away: a
 * heap address in its words (exit 3), or the key of the free-list links, tried on a block
 * that has gone through the free path onto a free list (any quarantine flushed by other
 * frees): decoded with it as next ^ key ^ address, the link must not name NULL or a block
 * nearby (exit 3). Under an allocator without such a key the guess decodes to noise. */
static int leak_fresh_words(void) {
    enum { N = 200 };
    static uintptr_t *blk[N];
    uintptr_t *p = malloc(8);
    uintptr_t w0 = ((volatile uintptr_t *)opaque(p))[0], w1 = ((volatile uintptr_t *)opaque(p))[1];
    uintptr_t a = (uintptr_t)p;
    if (w0 != 0 && (w0 > a ? w0 - a : a - w0) < 4 * MiB) return 3;
    uintptr_t key = w1 ^ 8 ^ a;
    for (int i = 0; i < N; i++) blk[i] = malloc(8);
    uintptr_t q = (uintptr_t)blk[0];
    for (int i = 0; i < N; i++) free(blk[i]);
    uintptr_t link = ((volatile uintptr_t *)opaque((void *)q))[0];
    uintptr_t next = link ^ key ^ q;
    if (link != 0 && (next == 0 || (next > q ? next - q : q - next) < 4 * MiB)) return 3;
    free(p);
    return 0;
}

/* ---- impossible requests: NULL with ENOMEM (EINVAL for posix_memalign's return) ---- */
static int impossible(void) {
    int bad = 0;
    size_t sizes[] = {SIZE_MAX, SIZE_MAX - 4096, (size_t)PTRDIFF_MAX + 1, (size_t)1 << 60};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        errno = 0;
        void *p = malloc(opaque_n(sizes[i]));
        if (p || errno != ENOMEM) bad = 1;
        errno = 0;
        p = calloc(opaque_n(sizes[i]), 16);
        if (p || errno != ENOMEM) bad = 1;
        char *q = malloc(64);
        errno = 0;
        p = realloc(q, opaque_n(sizes[i]));
        if (p || errno != ENOMEM) bad = 1;
        free(q);
        errno = 0;
        p = aligned_alloc(4096, opaque_n(sizes[i]) & ~(size_t)4095);
        if (p || errno != ENOMEM) bad = 1;
        void *out = NULL;
        if (posix_memalign(&out, 64, opaque_n(sizes[i])) != ENOMEM) bad = 1;
    }
    churn(64);
    return bad ? 3 : 0;
}

static const struct {
    const char *name;
    int (*fn)(void);
} cases[] = {
    {"df_immediate", df_immediate},
    {"df_delayed", df_delayed},
    {"df_interleaved", df_interleaved},
    {"df_after_reuse", df_after_reuse},
    {"df_thread", df_thread},
    {"df_medium", df_medium},
    {"df_large", df_large},
    {"df_huge", df_huge},
    {"if_stack", if_stack},
    {"if_alloca", if_alloca},
    {"if_static", if_static},
    {"if_mmap", if_mmap},
    {"if_past_end", if_past_end},
    {"if_never_handed", if_never_handed},
    {"if_never_carved", if_never_carved},
    {"if_never_handed_thread", if_never_handed_thread},
    {"if_before_start", if_before_start},
    {"if_interior", if_interior},
    {"if_unaligned", if_unaligned},
    {"if_offsets", if_offsets},
    {"if_huge_interior", if_huge_interior},
    {"if_realloc_stack", if_realloc_stack},
    {"if_realloc_interior", if_realloc_interior},
    {"if_realloc_freed", if_realloc_freed},
    {"if_free_sized", if_free_sized},
    {"if_free_aligned_sized", if_free_aligned_sized},
    {"uf_first_block", uf_first_block},
    {"gp_large_over", gp_large_over},
    {"gp_large_under", gp_large_under},
    {"gp_huge_over", gp_huge_over},
    {"gp_huge_under", gp_huge_under},
    {"meta_zero", meta_zero},
    {"uaf_write", uaf_write},
    {"uaf_write_reuse", uaf_write_reuse},
    {"uaf_write_exit", uaf_write_exit},
    {"uaf_zero", uaf_zero},
    {"uaf_forge_link", uaf_forge_link},
    {"uaf_read_secret", uaf_read_secret},
    {"leak_fresh_words", leak_fresh_words},
    {"impossible", impossible},
};
#define NCASES (sizeof cases / sizeof cases[0])

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: cases NAME | --list\n");
        return 2;
    }
    if (strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < NCASES; i++) printf("%s\n", cases[i].name);
        static const char *const dirs[] = {"over", "under"}, *const amounts[] = {"1", "32", "1m"},
                                 *const hows[] = {"write", "memcpy"},
                                 *const tiers[] = {"small", "4k", "medium", "large"};
        for (int t = 0; t < 4; t++)
            for (int d = 0; d < 2; d++)
                for (int a = 0; a < 3; a++)
                    for (int h = 0; h < 2; h++)
                        printf("ov_%s_%s_%s_%s\n", dirs[d], amounts[a], hows[h], tiers[t]);
        return 0;
    }
    catch_faults();
    for (size_t i = 0; i < NCASES; i++)
        if (strcmp(argv[1], cases[i].name) == 0) return cases[i].fn();
    int rc = overflow_case(argv[1]);
    if (rc >= 0) return rc;
    fprintf(stderr, "cases: no case named %s\n", argv[1]);
    return 2;
}
