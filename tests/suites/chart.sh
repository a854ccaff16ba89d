# The benchmark chart (scripts/bench.py's SVG writer, no plotting program): written from made-up
# data and read back with xml.etree (tests/chart_check.py). The seed is in the log for replay.
# Sourced by tests/run_all.sh.
hk_python=python3
[ -x /usr/bin/python3 ] && hk_python=/usr/bin/python3 # not a version-manager shim
t bench/chart_svg "$hk_python" tests/chart_check.py
