# hakmem build. `make` builds the allocator; `make test` runs every test suite;
# `make run` runs the headline workload side by side; `make bench` runs the full suite;
# `make install` / `make uninstall` (PREFIX, DESTDIR, ...) install it (mk/install.mk).
# Each area keeps its rules in mk/<area>.mk so the top level stays short.

CC      ?= cc
CXX     ?= c++
WERROR  ?=
CFLAGS_BASE := -std=c11 -O2 -g -Wall -Wextra $(WERROR) -fPIC -D_GNU_SOURCE -Iinclude
BUILD   := build

.PHONY: all test run bench clean format
all: $(BUILD)/libhakmem.so $(BUILD)/libhakmem.a

include mk/lib.mk
-include mk/tests.mk
-include mk/spsc.mk
-include mk/bench.mk
-include mk/install.mk

# Every test suite registers its programs in tests/suites/*.sh; the runner prints the summary.
test: all $(TEST_BINS)
	@bash tests/run_all.sh

clean:
	rm -rf $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h' '*.cpp')
