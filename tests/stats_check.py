#!/usr/bin/env python3
"""Checks hakmem's statistics reports (tests/stats_report.c): the JSON report parses and holds
what the program allocated, the readable report shows the same figures, and the report at exit
goes where HAKMEM_STATS and HAKMEM_STATS_FILE say (%p: the pid, one file per process).
With --counts, the statistics build's per-class counts (tests/stats_counts.c): the difference
between its two reports is exactly what it allocated and freed.
usage: stats_check.py BUILD/tests/stats_report | --counts BUILD/tests/stats_counts"""
import json
import os
import re
import subprocess
import sys
import tempfile

failures = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        failures.append(what)


def check_counts(prog):
    e = {k: v for k, v in os.environ.items() if not k.startswith("HAKMEM_")}
    e["HAKMEM_BACKGROUND"] = "0"  # no purger thread starting (and allocating) in between
    r = subprocess.run([prog], env=e, capture_output=True, text=True, timeout=60)
    reports = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    expect = {m[0]: tuple(map(int, m[1:])) for m in
              re.findall(r"^expect (\w+) allocs=(\d+) frees=(\d+) remote=(\d+)$", r.stdout, re.M)}
    check(r.returncode == 0 and len(reports) == 2 and len(expect) == 4,
          f"stats_counts ran (exit {r.returncode}), two reports and four expectations")
    if len(reports) != 2 or len(expect) != 4:
        print(r.stdout[-2000:], r.stderr[-2000:])
        return
    check(all(rep["class_counts"] for rep in reports), "the statistics build counts per class")

    def rows(rep):
        return {c["block"]: (c.get("allocs", 0), c.get("frees", 0), c.get("remote_frees", 0))
                for c in rep["classes"]}
    before, after = rows(reports[0]), rows(reports[1])
    diff = {b: tuple(a - before.get(b, (0, 0, 0))[i] for i, a in enumerate(v))
            for b, v in after.items()}
    got = {"total": tuple(sum(d[i] for d in diff.values()) for i in range(3))}
    for b in ("48", "large", "huge"):
        got[b] = diff.get(b, (0, 0, 0))
    for name, want in expect.items():
        check(got[name] == want, f"{name}: allocs, frees, cross-thread frees {got[name]}, "
              f"expected {want}")


if sys.argv[1] == "--counts":
    check_counts(sys.argv[2])
    print(f"{len(failures)} failed")
    sys.exit(1 if failures else 0)
prog = sys.argv[1]


def run(args, **env):
    e = {k: v for k, v in os.environ.items() if not k.startswith("HAKMEM_")}
    e.update(env)
    return subprocess.run([prog] + args, env=e, capture_output=True, text=True, timeout=60)


def check_figures(rep, where):
    check(rep["huge_blocks"] >= 1 and rep["mapped_bytes"] >= 8 << 20,
          f"{where}: the 8 MiB block is counted (huge_blocks {rep['huge_blocks']}, "
          f"mapped {rep['mapped_bytes']} bytes)")
    check(rep["segments_peak"] >= rep["segments"] >= 1 and
          rep["mapped_peak_bytes"] >= rep["mapped_bytes"] and
          rep["committed_peak_bytes"] >= rep["committed_bytes"] > 0,
          f"{where}: peaks at least the current values")
    by_block = {c["block"]: c for c in rep["classes"]}
    check("48" in by_block and by_block["48"]["pages"] >= 1 and by_block["48"]["block_size"] == 48,
          f"{where}: the 48-byte class has a page")
    check("huge" in by_block and by_block["huge"]["pages"] == rep["huge_blocks"],
          f"{where}: the huge row counts the huge blocks")
    check("large" in by_block, f"{where}: the 512 KiB block shows as large")
    opts = rep["options"]
    check(opts.get("HAKMEM_PURGE_DELAY_MS") == 100 and "HAKMEM_STATS_FILE" in opts,
          f"{where}: options listed with their values")
    return by_block


# 1. Both reports from the API, on the same counters.
r = run([])
check(r.returncode == 0, f"stats_report exits 0 (got {r.returncode}: {r.stderr.strip()[-200:]})")
lines = r.stdout.splitlines()
try:
    rep = json.loads(lines[0])
except (ValueError, IndexError) as e:
    check(False, f"hk_stats_print_json writes one JSON object on one line ({e})")
    sys.exit(1)
check(rep["version"].count(".") == 2 and rep["pid"] > 0, "version and pid present")
by_block = check_figures(rep, "hk_stats_print_json")
text = "\n".join(lines[1:])
m = re.search(r"segments\s+(\d+) \(peak (\d+)\), huge blocks (\d+)", text)
check(m is not None and tuple(map(int, m.groups())) ==
      (rep["segments"], rep["segments_peak"], rep["huge_blocks"]),
      "readable report: the same segment and huge block counts")
m = re.search(r"mapped\s+([\d.]+) MiB \(peak ([\d.]+) MiB\)", text)
check(m is not None and m.group(1) == f"{rep['mapped_bytes'] / 2**20:.1f}" and
      m.group(2) == f"{rep['mapped_peak_bytes'] / 2**20:.1f}",
      "readable report: the same mapped memory")
rows = dict(re.findall(r"^\s+\d+\s+(\w+)\s+(\d+)", text, re.M))
check(rows and all(int(rows.get(b, -1)) == c["pages"] for b, c in by_block.items()),
      f"readable report: the same pages per class ({len(rows)} rows)")
check(re.search(r"HAKMEM_STATS_FILE\s+-\s", text) is not None,
      "readable report lists HAKMEM_STATS_FILE as unset")

with tempfile.TemporaryDirectory() as d:
    # 2. The report at exit, as JSON, into a file named after the pid; a quote in the path
    # must come back intact from the JSON string.
    pattern = os.path.join(d, 'exit "%p".json')
    r = run(["--exit"], HAKMEM_STATS="json", HAKMEM_STATS_FILE=pattern)
    pid = r.stdout.split()[-1] if r.stdout else "?"
    path = pattern.replace("%p", pid)
    check(r.returncode == 0 and r.stderr == "" and os.path.exists(path),
          f"HAKMEM_STATS=json HAKMEM_STATS_FILE=...%p...: {os.path.basename(path)} written, "
          f"nothing on stderr")
    if os.path.exists(path):
        with open(path) as f:
            rep = json.load(f)
        check(str(rep["pid"]) == pid, "the file's report is from that process")
        check(rep["options"]["HAKMEM_STATS"] == "json" and
              rep["options"]["HAKMEM_STATS_FILE"] == pattern,
              "options in the report: HAKMEM_STATS json, the file pattern as given")
        check_figures(rep, "report at exit")
    # 3. A forked child that exits writes its own file.
    pattern = os.path.join(d, "fork.%p.txt")
    r = run(["--fork"], HAKMEM_STATS="1", HAKMEM_STATS_FILE=pattern)
    pids = re.findall(r"pid (\d+)", r.stdout)
    files = sorted(os.listdir(d))
    want = sorted(f"fork.{p}.txt" for p in pids)
    check(r.returncode == 0 and len(pids) == 2 and all(f in files for f in want),
          f"fork: one readable report per process ({', '.join(want)})")
    for f in want:
        if os.path.exists(os.path.join(d, f)):
            with open(os.path.join(d, f)) as fh:
                check(fh.read().startswith("hakmem statistics\n"), f"{f} holds the readable report")
    # 4. A file that cannot be opened: a message, and the report on stderr.
    r = run(["--exit"], HAKMEM_STATS="1", HAKMEM_STATS_FILE=os.path.join(d, "no/such/dir/x"))
    check(r.returncode == 0 and "cannot open HAKMEM_STATS_FILE" in r.stderr and
          "hakmem statistics" in r.stderr, "unopenable file: reported, and the report on stderr")
    # 5. Without HAKMEM_STATS nothing is written, even with a file named.
    r = run(["--exit"], HAKMEM_STATS_FILE=os.path.join(d, "unused"))
    check(r.stderr == "" and not os.path.exists(os.path.join(d, "unused")),
          "HAKMEM_STATS unset: no report")
    # 6. An invalid value is refused with a message and the default kept.
    r = run(["--exit"], HAKMEM_STATS="yaml")
    check("ignoring HAKMEM_STATS=yaml" in r.stderr and "hakmem statistics" not in r.stderr,
          "HAKMEM_STATS=yaml: refused, no report")

print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)
