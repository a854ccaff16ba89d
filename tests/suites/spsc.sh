# hakmem_spsc suite: the header-only channel (include/hakmem_spsc.h); built by mk/spsc.mk.
# Sourced by tests/run_all.sh. Threaded tests run again under gcc's ThreadSanitizer, where
# any report fails the test (halt_on_error); setarch -R keeps TSan's fixed mappings usable
# on kernels with high-entropy ASLR.
SPSC_BIN=build/spsc
SPSC_TSAN_RUN=(env TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" setarch "$(uname -m)" -R)

t spsc/basic               $SPSC_BIN/spsc_basic
t spsc/stress              $SPSC_BIN/spsc_stress
t spsc/disconnect          $SPSC_BIN/spsc_disconnect
t spsc/block               $SPSC_BIN/spsc_block
t spsc/block_spin1         $SPSC_BIN/spsc_block_spin1
t spsc/block_fenced        $SPSC_BIN/spsc_block_fenced
t spsc/cxx17_gcc           $SPSC_BIN/spsc_cxx_gcc
[ -x $SPSC_BIN/spsc_cxx_clang ]   && t spsc/cxx17_clang  $SPSC_BIN/spsc_cxx_clang
[ -x $SPSC_BIN/spsc_basic_clang ] && t spsc/basic_clang  $SPSC_BIN/spsc_basic_clang
[ -x $SPSC_BIN/spsc_stress_clang ] && t spsc/stress_clang $SPSC_BIN/spsc_stress_clang --items 30000
t spsc/tsan_stress         "${SPSC_TSAN_RUN[@]}" $SPSC_BIN/tsan/spsc_stress --items 20000
t spsc/tsan_disconnect     "${SPSC_TSAN_RUN[@]}" $SPSC_BIN/tsan/spsc_disconnect
t spsc/tsan_block          "${SPSC_TSAN_RUN[@]}" $SPSC_BIN/tsan/spsc_block 10000
t_slow spsc/stress_long    $SPSC_BIN/spsc_stress --items 1000000
t_slow spsc/tsan_stress_long "${SPSC_TSAN_RUN[@]}" $SPSC_BIN/tsan/spsc_stress --items 200000
