# Statistics reports: hk_stats_print and hk_stats_print_json agree and hold what was allocated;
# HAKMEM_STATS=1|json and HAKMEM_STATS_FILE (with %p) at exit. Sourced by tests/run_all.sh.
hk_python=python3
[ -x /usr/bin/python3 ] && hk_python=/usr/bin/python3 # not a version-manager shim
t stats/report "$hk_python" tests/stats_check.py build/tests/stats_report
# The statistics build (make stats-lib) counts every allocation and free path once.
t stats/counts "$hk_python" tests/stats_check.py --counts build/tests/stats_counts
