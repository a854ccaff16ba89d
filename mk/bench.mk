# Benchmarks: the allocator workloads in bench/ (build/bench/*), peak_rss (the runner's
# launcher that measures a child's peak RSS), the runner (`make bench`,
# `make run`). Workloads are plain malloc/free programs and must never link hakmem: the runner
# swaps allocators in with LD_PRELOAD. QUICK=1 selects the short mode; BENCH_ARGS passes flags.
BENCH_PROGS := random_mixed patterns larson prodcons thread_churn thread_scaling large big_buffers realloc_growth soak idle_rss
BENCH_BINS  := $(addprefix $(BUILD)/bench/,$(BENCH_PROGS) peak_rss)
BENCH_FLAGS := $(if $(filter 1,$(QUICK)),--quick) $(BENCH_ARGS)
TEST_BINS   += $(BENCH_BINS)

.PHONY: bench-progs
bench-progs: $(BENCH_BINS)

# Static pattern so this rule covers only our programs, not others' binaries in build/bench/.
$(BENCH_BINS): $(BUILD)/bench/%: bench/%.c bench/bench_common.h $(wildcard include/hakmem_spsc.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) -o $@ $< -lpthread

bench: all bench-progs
	python3 scripts/bench.py $(BENCH_FLAGS)
	python3 scripts/redis_bench.py

# redis-server's RSS after FLUSHALL and SET throughput, its own jemalloc against each preload
# (skips where redis is not installed).
.PHONY: redis-bench
redis-bench: all
	python3 scripts/redis_bench.py $(BENCH_ARGS)

# The quick mode; its first table row is the headline workload, hakmem beside the system
# allocator.
run: all bench-progs
	python3 scripts/bench.py --quick $(BENCH_ARGS)
