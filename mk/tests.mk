# Allocator test programs (tests/alloc_*.c), each in three builds:
#   build/tests/alloc_X      against libc, run with LD_PRELOAD=build/libhakmem.so
#   build/tests/alloc_X.hk   hk_ API, linked with build/libhakmem.a
#   build/tsan/alloc_X       hk_ API + allocator sources (all but src/override.c) under TSan
# -fno-builtin keeps gcc from folding calls it thinks it understands (calloc'd memory read as 0,
# malloc/free pairs removed), which would hide exactly what the tests look at.
ALLOC_TESTS      := conformance stress crossthread churn fork large hover medium_turns double_free free_race libc idle handoff tiers purge realloc links orphan huge_rss oversize workloads last_thread append align_limits aslimit window spread thp purger_start
ALLOC_TSAN_TESTS := crossthread churn handoff orphan
ALLOC_TEST_CFLAGS := -std=c11 -O1 -g -Wall -Wextra $(WERROR) -D_GNU_SOURCE -Iinclude -fno-builtin
ALLOC_TEST_HDRS  := tests/alloc_test.h include/hakmem.h

ALLOC_PRELOAD_BINS := $(ALLOC_TESTS:%=$(BUILD)/tests/alloc_%)
ALLOC_HK_BINS      := $(ALLOC_TESTS:%=$(BUILD)/tests/alloc_%.hk)
ALLOC_TSAN_BINS    := $(ALLOC_TSAN_TESTS:%=$(BUILD)/tsan/alloc_%)
TEST_BINS += $(ALLOC_PRELOAD_BINS) $(ALLOC_HK_BINS) $(ALLOC_TSAN_BINS)

$(ALLOC_PRELOAD_BINS): $(BUILD)/tests/alloc_%: tests/alloc_%.c $(ALLOC_TEST_HDRS)
	@mkdir -p $(@D)
	$(CC) $(ALLOC_TEST_CFLAGS) $< -o $@ -lpthread -ldl

$(ALLOC_HK_BINS): $(BUILD)/tests/alloc_%.hk: tests/alloc_%.c $(ALLOC_TEST_HDRS) $(BUILD)/libhakmem.a
	@mkdir -p $(@D)
	$(CC) $(ALLOC_TEST_CFLAGS) -DHK_TEST_PREFIXED $< -o $@ $(BUILD)/libhakmem.a -lpthread -ldl

# TSan needs the allocator itself instrumented (its atomics are what order cross-thread frees),
# so its sources are compiled here again; src/override.c is left out so that TSan's own malloc
# interceptors stay in charge of libc's allocations. Warnings in src/ are the main build's to
# report, so none are asked for here. (alloc_fork is not run under TSan: TSan does not support
# starting threads in the child of a multi-threaded fork.)
ALLOC_TSAN_SRCS := $(filter-out src/override.c,$(wildcard src/*.c))
ALLOC_TSAN_OBJS := $(ALLOC_TSAN_SRCS:src/%.c=$(BUILD)/tsan/obj/%.o)
ALLOC_TSAN_FLAGS := -fsanitize=thread -Iinclude -D_GNU_SOURCE -std=c11 -O1 -g \
                    -ftls-model=initial-exec

$(BUILD)/tsan/obj/%.o: src/%.c $(LIB_HDRS)
	@mkdir -p $(@D)
	$(CC) $(ALLOC_TSAN_FLAGS) -c $< -o $@

$(ALLOC_TSAN_BINS): $(BUILD)/tsan/alloc_%: tests/alloc_%.c $(ALLOC_TEST_HDRS) $(ALLOC_TSAN_OBJS)
	@mkdir -p $(@D)
	$(CC) $(ALLOC_TEST_CFLAGS) $(ALLOC_TSAN_FLAGS) -DHK_TEST_PREFIXED $< $(ALLOC_TSAN_OBJS) \
	    -o $@ -lpthread -ldl

# The allocator's first call made by a library's constructor, before hakmem's process init
# (tests/alloc_first_call.c, linked with tests/first_call_lib.c): preload build only.
FIRST_CALL_LIB := $(BUILD)/tests/libfirst_call.so
FIRST_CALL_BIN := $(BUILD)/tests/alloc_first_call
TEST_BINS += $(FIRST_CALL_BIN)
$(FIRST_CALL_LIB): tests/first_call_lib.c
	@mkdir -p $(@D)
	$(CC) $(ALLOC_TEST_CFLAGS) -fPIC -shared $< -o $@
$(FIRST_CALL_BIN): tests/alloc_first_call.c $(ALLOC_TEST_HDRS) $(FIRST_CALL_LIB)
	$(CC) $(ALLOC_TEST_CFLAGS) $< -o $@ -L$(BUILD)/tests -lfirst_call -Wl,-rpath,'$$ORIGIN' \
	    -lpthread -ldl

# A C++ program for the real-program suite (tests/suites/programs.sh): its runtime allocates
# before the preloaded allocator's init.
CXX_PROGRAM_BIN := $(BUILD)/tests/workload_cxx
TEST_BINS += $(CXX_PROGRAM_BIN)
$(CXX_PROGRAM_BIN): tests/programs/workload.cpp
	@mkdir -p $(@D)
	$(CXX) -std=c++17 -O2 -g -Wall -Wextra $(WERROR) $< -o $@ -lpthread

.PHONY: alloc-tests
alloc-tests: $(ALLOC_PRELOAD_BINS)

# The statistics reports (tests/stats_report.c, checked by tests/stats_check.py), hk_ API.
STATS_TEST_BIN := $(BUILD)/tests/stats_report
TEST_BINS += $(STATS_TEST_BIN)
$(STATS_TEST_BIN): tests/stats_report.c include/hakmem.h $(BUILD)/libhakmem.a
	@mkdir -p $(@D)
	$(CC) $(ALLOC_TEST_CFLAGS) $< -o $@ $(BUILD)/libhakmem.a -lpthread

# The statistics build's per-class counts (tests/stats_counts.c, checked by
# tests/stats_check.py --counts), hk_ API, linked with the statistics build's archive.
STATS_COUNTS_BIN := $(BUILD)/tests/stats_counts
TEST_BINS += $(STATS_COUNTS_BIN)
$(BUILD)/stats/libhakmem.a: $(LIB_SRCS) $(LIB_HDRS)
	$(MAKE) HAKMEM_BUILD_STATS=1 BUILD=$(BUILD)/stats $@
$(STATS_COUNTS_BIN): tests/stats_counts.c include/hakmem.h $(BUILD)/stats/libhakmem.a
	@mkdir -p $(@D)
	$(CC) $(ALLOC_TEST_CFLAGS) $< -o $@ $(BUILD)/stats/libhakmem.a -lpthread

# Security suite (tests/security/): one program whose cases each make one heap error, run by
# tests/security/run.py under the default build, the hardened build and glibc.
SECURITY_BIN := $(BUILD)/tests/security_cases
TEST_BINS += $(SECURITY_BIN) hardened

$(SECURITY_BIN): tests/security/cases.c
	@mkdir -p $(@D)
	$(CC) $(ALLOC_TEST_CFLAGS) $< -o $@ -lpthread -ldl

# The hardened build's guard pages in the statistics (tests/harden_guards.c), run under either build.
GUARDS_BIN := $(BUILD)/tests/harden_guards
TEST_BINS += $(GUARDS_BIN)
$(GUARDS_BIN): tests/harden_guards.c
	@mkdir -p $(@D)
	$(CC) $(ALLOC_TEST_CFLAGS) $< -o $@ -ldl
