# hakmem_spsc: the header-only channel's tests (build/spsc/) and benchmark (build/bench/).
# Nothing here links the allocator: the channel must build and pass while src/ is in flux.
# `make spsc-tests` builds the test programs, `make spsc-check` also runs them, `make spsc-bench`
# builds the comparison against boost::lockfree::spsc_queue.

SPSC_HDR      := include/hakmem_spsc.h tests/spsc_test.h
SPSC_DIR      := $(BUILD)/spsc
SPSC_CFLAGS   := $(CFLAGS_BASE) -Werror
SPSC_CXXFLAGS := -std=c++17 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude
SPSC_TSAN     := -O1 -g -fsanitize=thread
SPSC_THREADED := stress disconnect block

SPSC_BINS := $(SPSC_DIR)/spsc_basic $(SPSC_DIR)/spsc_stress $(SPSC_DIR)/spsc_disconnect \
             $(SPSC_DIR)/spsc_block $(SPSC_DIR)/spsc_block_spin1 \
             $(SPSC_DIR)/spsc_block_fenced $(SPSC_DIR)/spsc_cxx_gcc \
             $(patsubst %,$(SPSC_DIR)/tsan/spsc_%,$(SPSC_THREADED))

# The header must be warning-free under both compilers in both languages; build the clang
# variants wherever clang is installed.
ifneq ($(shell command -v clang 2>/dev/null),)
SPSC_BINS += $(SPSC_DIR)/spsc_basic_clang $(SPSC_DIR)/spsc_stress_clang
endif
ifneq ($(shell command -v clang++ 2>/dev/null),)
SPSC_BINS += $(SPSC_DIR)/spsc_cxx_clang
endif

TEST_BINS += $(SPSC_BINS)

.PHONY: spsc-tests spsc-check spsc-bench
spsc-tests: $(SPSC_BINS)
spsc-check: spsc-tests
	@HK_TEST_FILTER='^spsc' bash tests/run_all.sh

$(SPSC_DIR) $(SPSC_DIR)/tsan $(BUILD)/bench:
	mkdir -p $@

$(SPSC_DIR)/spsc_%: tests/spsc_%.c $(SPSC_HDR) | $(SPSC_DIR)
	$(CC) $(SPSC_CFLAGS) $< -o $@ -lpthread

$(SPSC_DIR)/spsc_%_clang: tests/spsc_%.c $(SPSC_HDR) | $(SPSC_DIR)
	clang $(SPSC_CFLAGS) $< -o $@ -lpthread

# recv that gives up spinning at once: nearly every wait goes through the futex handshake.
$(SPSC_DIR)/spsc_block_spin1: tests/spsc_block.c $(SPSC_HDR) | $(SPSC_DIR)
	$(CC) $(SPSC_CFLAGS) -DHK_SPSC_SPIN=1 $< -o $@ -lpthread

# The same without membarrier: the seq_cst fallback of the sleep handshake.
$(SPSC_DIR)/spsc_block_fenced: tests/spsc_block.c $(SPSC_HDR) | $(SPSC_DIR)
	$(CC) $(SPSC_CFLAGS) -DHK_SPSC_SPIN=1 -DHK_SPSC_NO_MEMBARRIER $< -o $@ -lpthread

$(SPSC_DIR)/spsc_cxx_gcc: tests/spsc_cxx.cpp $(SPSC_HDR) | $(SPSC_DIR)
	g++ $(SPSC_CXXFLAGS) $< -o $@ -lpthread

$(SPSC_DIR)/spsc_cxx_clang: tests/spsc_cxx.cpp $(SPSC_HDR) | $(SPSC_DIR)
	clang++ $(SPSC_CXXFLAGS) $< -o $@ -lpthread

# gcc's ThreadSanitizer: the threaded tests again, with every report fatal at run time.
$(SPSC_DIR)/tsan/spsc_%: tests/spsc_%.c $(SPSC_HDR) | $(SPSC_DIR)/tsan
	gcc $(SPSC_CFLAGS) $(SPSC_TSAN) $< -o $@ -lpthread

SPSC_BENCH_FLAGS := -std=c++17 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude -DNDEBUG
spsc-bench: $(BUILD)/bench/spsc_bench
$(BUILD)/bench/spsc_bench: bench/spsc_bench.cpp $(SPSC_HDR) | $(BUILD)/bench
	$(CXX) $(SPSC_BENCH_FLAGS) $< -o $@ -lpthread
