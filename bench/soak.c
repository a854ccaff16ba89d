/* soak: a long run whose working set rises and falls in phases (lo, hi, lo, hi, ...), churning
 * random blocks all the while (mostly 16 B-2 KiB, a few 64-256 KiB). Samples RSS each second,
 * or once per phase with --quick, and reports the drift between equal phases: an allocator
 * that does not give memory back, or fragments, shows a rising RSS at the same working set. */
#include "bench_common.h"

typedef struct {
    uint64_t phases, seed, phase_ops;
    size_t lo, hi, min, max, large_ppm;
    double phase_seconds;
} cfg;

static size_t pick_size(const cfg *c, uint64_t r) {
    /* large_ppm in a million blocks are large, so the big-block path is churned as well. */
    if (bc_below(r, 1000000) < c->large_ppm) return bc_range(r >> 7, 64 << 10, 256 << 10);
    return bc_range((r << 32) | (r >> 32), c->min, c->max);
}

int main(int argc, char **argv) {
    cfg c = {.phases = 8,
             .seed = 1,
             .phase_ops = 400000,
             .lo = 2000,
             .hi = 100000,
             .min = 16,
             .max = 2048,
             .large_ppm = 500,
             .phase_seconds = 5};
    int quick = 0;
    const bc_opt opts[] = {
        {"phases", BC_U64, &c.phases, "phases, alternating lo and hi working set"},
        {"phase-seconds", BC_DBL, &c.phase_seconds, "length of a phase (RSS sampled each second)"},
        {"quick", BC_FLAG, &quick, "phases of --phase-ops steps, RSS sampled per phase"},
        {"phase-ops", BC_U64, &c.phase_ops, "steps per phase in --quick mode"},
        {"lo", BC_SIZE, &c.lo, "working set (blocks) of even phases"},
        {"hi", BC_SIZE, &c.hi, "working set (blocks) of odd phases"},
        {"min", BC_SIZE, &c.min, "smallest small block"},
        {"max", BC_SIZE, &c.max, "largest small block"},
        {"large-ppm", BC_SIZE, &c.large_ppm, "large (64-256 KiB) blocks per million"},
        {"seed", BC_U64, &c.seed, "PRNG seed"},
    };
    bc_workload = "soak";
    bc_parse(argc, argv, "Phased working set; RSS per phase and drift between equal phases.", opts,
             sizeof opts / sizeof opts[0]);
    if (c.phases < 1 || c.lo < 1 || c.hi < c.lo || c.min < 1 || c.max < c.min ||
        c.phase_seconds <= 0) {
        fprintf(stderr, "soak: need phases >= 1, 1 <= lo <= hi, 1 <= min <= max\n");
        return 2;
    }
    bc_slot *s = bc_malloc(c.hi * sizeof *s);
    bc_rng rng;
    bc_rng_init(&rng, c.seed, 0);
    size_t live = 0;
    long *rss = bc_malloc(c.phases * sizeof *rss);
    uint64_t ops = 0, step = 0;
    double t0 = bc_now(), next_sample = t0 + 1;
    for (uint64_t ph = 0; ph < c.phases; ph++) {
        size_t target = ph % 2 ? c.hi : c.lo;
        /* Move to the phase's working set: grow by allocating, shrink by freeing the top. */
        while (live < target) {
            uint64_t r = bc_next(&rng);
            size_t sz = pick_size(&c, r);
            s[live] = (bc_slot){bc_malloc(sz), (uint32_t)sz, r ^ step++};
            bc_mark(s[live].p, sz, s[live].tag);
            live++, ops++;
        }
        while (live > target) {
            live--;
            bc_verify(s[live].p, s[live].size, s[live].tag, "soak shrink");
            free(s[live].p);
            ops++;
        }
        double ph_start = bc_now();
        long peak = 0;
        for (uint64_t done = 0;;) {
            for (int k = 0; k < 4096; k++, done++) {
                uint64_t r = bc_next(&rng);
                bc_slot *sl = &s[bc_below(r, live)];
                bc_verify(sl->p, sl->size, sl->tag, "soak churn");
                free(sl->p);
                size_t sz = pick_size(&c, r * 0x9E3779B97F4A7C15ull);
                *sl = (bc_slot){bc_malloc(sz), (uint32_t)sz, r ^ step++};
                bc_mark(sl->p, sz, sl->tag);
            }
            ops += 4096;
            if (quick) {
                if (done >= c.phase_ops) break;
                continue;
            }
            double now = bc_now();
            if (now >= next_sample) {
                long kb = bc_rss_kb();
                if (kb > peak) peak = kb;
                printf("sample t=%.1f phase=%llu ws=%zu rss_kb=%ld\n", now - t0,
                       (unsigned long long)ph, live, kb);
                fflush(stdout);
                next_sample += 1;
            }
            if (now - ph_start >= c.phase_seconds) break;
        }
        rss[ph] = bc_rss_kb();
        if (rss[ph] > peak) peak = rss[ph];
        printf("phase n=%llu ws=%zu seconds=%.2f rss_kb=%ld peak_rss_kb=%ld\n",
               (unsigned long long)ph, live, bc_now() - ph_start, rss[ph], peak);
        fflush(stdout);
    }
    double t1 = bc_now();
    while (live > 0) {
        live--;
        bc_verify(s[live].p, s[live].size, s[live].tag, "soak drain");
        free(s[live].p);
    }
    /* Drift: end-of-phase RSS of the last phase of each kind against the first one. The first
     * lo phase is a cold start, so lo drift compares phase 2 (second lo) with the last lo. */
    char params[256];
    int last_lo = (int)((c.phases - 1) / 2 * 2),
        last_hi = c.phases >= 2 ? (int)((c.phases - 2) / 2 * 2 + 1) : -1;
    double lo_drift = 0, hi_drift = 0;
    if (c.phases >= 5 && rss[2] > 0)
        lo_drift = 100.0 * (double)(rss[last_lo] - rss[2]) / (double)rss[2];
    if (last_hi >= 3 && rss[1] > 0)
        hi_drift = 100.0 * (double)(rss[last_hi] - rss[1]) / (double)rss[1];
    snprintf(params, sizeof params,
             "phases=%llu lo=%zu hi=%zu rss_lo_kb=%ld rss_hi_kb=%ld drift_lo_pct=%.1f "
             "drift_hi_pct=%.1f",
             (unsigned long long)c.phases, c.lo, c.hi, rss[last_lo],
             last_hi >= 0 ? rss[last_hi] : 0, lo_drift, hi_drift);
    free(s);
    free(rss);
    bc_result(params, ops, t1 - t0);
    return 0;
}
