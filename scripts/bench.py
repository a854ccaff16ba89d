#!/usr/bin/env python3
"""bench.py: runs the bench/ workloads under hakmem and peer allocators (LD_PRELOAD) and reports
median throughput, CV, ratio to hakmem, peak RSS and, with --callgrind, instructions per op.
Standard library only; it never builds the allocator and never asserts on timing.

Writes <out>/bench.csv (per workload and allocator), <out>/bench_runs.csv (every run),
<out>/bench.md (the Markdown printed at the end) and <out>/bench.svg (the chart, drawn here).
"""
import argparse
import csv
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
LIBDIR = "/usr/lib/x86_64-linux-gnu"

# name, library to preload (None: the system allocator), Debian package that provides it.
ALLOCATORS = [
    ("hakmem", os.path.join(ROOT, "build/libhakmem.so"), None),
    ("system", None, None),
    ("mimalloc", f"{LIBDIR}/libmimalloc.so.2", "libmimalloc2.0"),
    ("jemalloc", f"{LIBDIR}/libjemalloc.so.2", "libjemalloc2"),
    ("tcmalloc", f"{LIBDIR}/libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
]


class Workload:
    def __init__(self, name, prog, full, quick, cg, about, max_reps=None):
        self.name, self.prog, self.about = name, prog, about
        self.full, self.quick, self.cg = full.split(), quick.split(), cg.split()
        self.max_reps = max_reps  # long runs (soak) get fewer repetitions


# The first entry is the headline workload (DESIGN.md: random mixed 16-1024 B, ws 400).
# Arguments: full mode, quick mode, callgrind (small: valgrind runs ~50x slower). The last
# callgrind argument is a work count: it is run at N and 2N and the difference is divided by
# the difference in ops, so start-up, fill and drain cancel out of instructions per op.
WORKLOADS = [
    Workload("random_mixed", "random_mixed", "--iters 20000000", "--iters 8000000",
             "--iters 200000", "16-1024 B, ws 400"),
    Workload("random_mixed_small", "random_mixed", "--min 16 --max 128 --iters 20000000",
             "--min 16 --max 128 --iters 8000000", "--min 16 --max 128 --iters 200000",
             "16-128 B, ws 400"),
    Workload("random_mixed_medium", "random_mixed", "--min 1024 --max 8192 --iters 10000000",
             "--min 1024 --max 8192 --iters 3000000", "--min 1024 --max 8192 --iters 100000",
             "1-8 KiB, ws 400"),
    Workload("random_mixed_medium_large", "random_mixed", "--min 8192 --max 65536 --iters 4000000",
             "--min 8192 --max 65536 --iters 1000000", "--min 8192 --max 65536 --iters 50000",
             "8-64 KiB, ws 400"),
    Workload("random_mixed_ws100k", "random_mixed", "--ws 100000 --iters 10000000",
             "--ws 100000 --iters 3000000", "--ws 100000 --iters 200000",
             "16-1024 B, ws 100000"),
    Workload("patterns", "patterns", "--rounds 200", "--rounds 80", "--rounds 3",
             "LIFO/FIFO/random free, 16-1024 B"),
    Workload("patterns_medium", "patterns", "--rounds 40 --sizes 2048,4096,8192,16384,32768",
             "--rounds 16 --sizes 2048,4096,8192,16384,32768",
             "--sizes 2048,4096,8192,16384,32768 --rounds 1",
             "LIFO/FIFO/random free, 2-32 KiB"),
    Workload("larson", "larson", "--threads 2 --steps 500000", "--threads 2 --steps 200000",
             "--threads 2 --gens 4 --steps 10000", "cross-thread server sim, 2 threads"),
    Workload("prodcons", "prodcons", "--pairs 1 --items 2000000", "--pairs 1 --items 800000",
             "--pairs 1 --items 20000", "producer->consumer frees via hk_spsc, 16-512 B"),
    Workload("prodcons_2", "prodcons", "--pairs 2 --items 1000000", "--pairs 2 --items 400000",
             "--pairs 2 --items 10000", "2 producer/consumer pairs, 16-512 B"),
    Workload("prodcons_4k", "prodcons", "--pairs 1 --max 4096 --items 2000000",
             "--pairs 1 --max 4096 --items 800000", "--pairs 1 --max 4096 --items 20000",
             "producer->consumer, 16-4096 B"),
    Workload("prodcons_2_4k", "prodcons", "--pairs 2 --max 4096 --items 1000000",
             "--pairs 2 --max 4096 --items 400000", "--pairs 2 --max 4096 --items 10000",
             "2 producer/consumer pairs, 16-4096 B"),
    Workload("thread_churn", "thread_churn", "--threads 4 --gens 2000", "--threads 4 --gens 600",
             "--threads 4 --gens 20", "short-lived threads free exited threads' blocks"),
    Workload("thread_scaling_1", "thread_scaling", "--threads 1 --iters 8000000",
             "--threads 1 --iters 2000000", "--threads 1 --iters 100000", "1 thread"),
    Workload("thread_scaling_2", "thread_scaling", "--threads 2 --iters 4000000",
             "--threads 2 --iters 1000000", "--threads 2 --iters 50000", "2 threads"),
    Workload("thread_scaling_4", "thread_scaling", "--threads 4 --iters 2000000",
             "--threads 4 --iters 500000", "--threads 4 --iters 25000", "4 threads"),
    Workload("thread_scaling_8", "thread_scaling", "--threads 8 --iters 1000000",
             "--threads 8 --iters 250000", "--threads 8 --iters 12500", "8 threads"),
    Workload("large", "large", "--iters 300", "--iters 80", "--iters 10",
             "64 KiB-32 MiB, every page touched"),
    Workload("large_fill", "large", "--min 5m --max 25m --ws 20 --fill 1 --iters 1000",
             "--min 5m --max 25m --ws 20 --fill 1 --iters 200",
             "--min 5m --max 25m --ws 20 --fill 1 --iters 4",
             "5-25 MiB, 20 live, every byte written"),
    Workload("big_buffers", "big_buffers", "--iters 400", "--iters 120", "--iters 10",
             "one 1-64 MiB buffer at a time, every page touched"),
    Workload("big_buffers_sparse", "big_buffers", "--stride 1m --iters 8000",
             "--stride 1m --iters 2000", "--stride 1m --iters 10",
             "the same, one page per MiB touched"),
    Workload("realloc_growth", "realloc_growth", "--rounds 20", "--rounds 8", "--rounds 1",
             "append-grown strings and arrays"),
    Workload("soak", "soak", "--phases 6 --phase-seconds 2",
             "--quick --phases 6 --phase-ops 400000 --hi 50000",
             "--quick --phases 4 --hi 5000 --phase-ops 20000",
             "ws 2000 <-> 100000 phases, RSS drift", max_reps=2),
    Workload("idle_rss_1", "idle_rss", "--threads 1", "--threads 1 --total 256m",
             "--threads 1 --idle-ms 0 --total 4194304",
             "1 GiB of 16-1024 B freed, then idle: RSS 1 s later", max_reps=2),
    Workload("idle_rss_4", "idle_rss", "--threads 4", "--threads 4 --total 256m",
             "--threads 4 --idle-ms 0 --total 4194304",
             "the same in 4 threads that stay blocked", max_reps=2),
]

RESULT_RE = re.compile(r"^result workload=\S+ (.*)$", re.M)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def parse_result(text):
    """Fields of the last `result` line as a dict, or None."""
    found = RESULT_RE.findall(text)
    if not found:
        return None
    return dict(kv.split("=", 1) for kv in found[-1].split() if "=" in kv)


def child_env(lib):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if lib:
        env["LD_PRELOAD"] = lib
    return env


LAUNCHER = os.path.join(ROOT, "build/bench/peak_rss")


def run_measured(cmd, lib, timeout, env=None):
    """Runs cmd with lib preloaded; returns (rc, stdout, stderr, peak RSS in KiB).
    Linux carries a process's RSS high-water mark across exec, so a child forked from python
    would report python's own ~14 MiB as its peak: build/bench/peak_rss forks the workload from a
    small process and reports the workload's ru_maxrss from wait4. Without the launcher, a direct
    os.wait4 is used and the figure includes that baseline."""
    with tempfile.TemporaryDirectory() as tmp:
        rss_file = os.path.join(tmp, "rss")
        if env is None and os.access(LAUNCHER, os.X_OK):
            full = [LAUNCHER, "--out", rss_file, "--preload", lib or "", "--"] + cmd
            env = child_env(None)  # the launcher itself runs on the system allocator
        else:
            full, env = cmd, env or child_env(lib)
        errf = open(os.path.join(tmp, "stderr"), "w+b")
        # A session of its own, so a timeout kills the launcher and the workload together.
        p = subprocess.Popen(full, env=env, stdout=subprocess.PIPE, stderr=errf, cwd=ROOT,
                             start_new_session=True)
        timer = threading.Timer(timeout, lambda: os.killpg(p.pid, 9))
        timer.start()
        try:
            out = p.stdout.read()
            p.stdout.close()
            _, status, ru = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)  # tells Popen the child is reaped
        rss = ru.ru_maxrss
        if full is not cmd:
            try:
                rss = int(open(rss_file).read().split("=")[1])
            except (OSError, IndexError, ValueError):
                rss = None
        errf.seek(0)
        err = errf.read()
        errf.close()
    rc = p.returncode if p.returncode >= 0 else 128 - p.returncode
    return rc, out.decode(errors="replace"), err.decode(errors="replace"), rss


def resolve_allocators(names):
    """Returns (usable [(name, lib)], skipped [(name, why)])."""
    table = {a[0]: a for a in ALLOCATORS}
    usable, skipped = [], []
    for name in names:
        _, lib, pkg = table[name]
        if lib and not os.path.exists(lib) and pkg and os.geteuid() == 0:
            log(f"{name}: {lib} missing, trying apt-get install -y {pkg}")
            subprocess.run(["apt-get", "install", "-y", "-qq", pkg], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        if lib and not os.path.exists(lib):
            why = "not built (run make)" if name == "hakmem" else f"{lib} not installed"
            if pkg:
                why += f" (Debian package {pkg})"
            skipped.append((name, why))
            continue
        usable.append((name, lib))
    return usable, skipped


def select_workloads(only):
    if not only:
        return list(WORKLOADS)
    picked = []
    for tok in only.split(","):
        hits = [w for w in WORKLOADS if tok in (w.name, w.prog)]
        if not hits:
            sys.exit(f"bench.py: unknown workload '{tok}'; known: "
                     + ", ".join(w.name for w in WORKLOADS))
        picked += [w for w in hits if w not in picked]
    return [w for w in WORKLOADS if w in picked]


def fmt_rate(x):
    if x is None:
        return "-"
    if x >= 1e6:
        return f"{x / 1e6:.1f} M"
    if x >= 1e4:
        return f"{x / 1e3:.0f} k"
    return f"{x:.0f}"


def fmt_mib(kb):
    return "-" if kb is None else f"{kb / 1024:.1f}"


def callgrind_run(cmd, lib, outdir, timeout):
    """(total instructions Ir, ops reported) of one run under callgrind, or None."""
    cg_out = os.path.join(outdir, "callgrind.out")
    if os.path.exists(cg_out):
        os.remove(cg_out)
    # The preload goes in the environment: valgrind hands LD_PRELOAD on to the client, and with
    # --trace-children=no only the workload process itself is measured.
    vg = ["valgrind", "--tool=callgrind", "--trace-children=no", f"--callgrind-out-file={cg_out}"]
    rc, out, err, _ = run_measured(vg + cmd, lib, timeout, env=child_env(lib))
    res = parse_result(out)
    if rc != 0 or not res or res.get("checks") != "ok" or not os.path.exists(cg_out):
        log(f"callgrind run failed (exit {rc}): {err.strip()[-300:]}")
        return None
    total = None
    with open(cg_out) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                total = int(line.split()[1])
    os.remove(cg_out)
    return (total, int(res["ops"])) if total else None


def callgrind_ir(cmd, lib, outdir, timeout):
    """Instructions per op in the steady state: runs at N and 2N (N = the last argument)."""
    if not cmd[-1].isdigit():
        log(f"callgrind: {' '.join(cmd)} does not end in a count")
        return None
    n = int(cmd[-1])
    one = callgrind_run(cmd, lib, outdir, timeout)
    two = callgrind_run(cmd[:-1] + [str(2 * n)], lib, outdir, timeout)
    if not one or not two or two[1] <= one[1]:
        return None
    return (two[0] - one[0]) / (two[1] - one[1])


def spsc_bench(timeout):
    """Runs the SPSC channel's own benchmark when mk/spsc.mk provides the target. Not an allocator
    workload: its output (its own table) is passed through as is."""
    mk = os.path.join(ROOT, "mk/spsc.mk")
    if not os.path.exists(mk) or "spsc-bench" not in open(mk).read():
        return None
    log("spsc-bench: building (make spsc-bench)")
    b = subprocess.run(["make", "-s", "spsc-bench"], cwd=ROOT, capture_output=True, text=True)
    exe = os.path.join(ROOT, "build/bench/spsc_bench")
    if b.returncode != 0 or not os.path.exists(exe):
        return f"(make spsc-bench failed)\n{b.stderr[-2000:]}"
    log("spsc-bench: running build/bench/spsc_bench")
    rc, out, err, _ = run_measured([exe], None, timeout)
    return out + (f"\n(spsc_bench exited {rc})\n{err[-2000:]}" if rc != 0 else "")


# The chart (bench.svg): SVG written here, with no plotting program, so that `make run` draws it
# on a bare machine. Two panels of grouped bars, one group per workload and one bar per
# allocator: throughput relative to ref (linear, a dashed line at 1) and peak RSS (log scale).
# Every bar is a <rect class="bar"> with data-panel/-workload/-allocator/-value attributes and a
# <title> tooltip, so tests and scripts can read the chart back (tests/chart_check.py).
CHART_COLORS = ["#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2",
                "#97bbf5", "#9c6b4e", "#9498a0"]


def svg_escape(s):
    return (str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def chart_ticks(lo, hi, log):
    """Axis ticks covering [lo, hi]: 1-2-5 steps (linear) or 1-2-5 per decade (log)."""
    if log:
        ticks, e = [], math.floor(math.log10(lo))
        while 10 ** e <= hi * 1.0001:
            ticks += [m * 10 ** e for m in (1, 2, 5) if lo / 1.0001 <= m * 10 ** e <= hi * 1.0001]
            e += 1
        return ticks
    raw = (hi - lo) / 5 or 1
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return [round(i * step, 10) for i in range(int(math.ceil(hi / step - 1e-9)) + 1)]


def chart_panel(out, title, ylabel, top, height, left, width, workloads, names, values, ref_line,
                log, panel, fmt):
    """One panel; values[(workload, allocator)] = number or None (no bar)."""
    present = [v for v in values.values() if v is not None and (v > 0 or not log)]
    if log:
        lo = 10 ** math.floor(math.log10(min(present))) if present else 1
        hi = 10 ** math.ceil(math.log10(max(present))) if present else 10
        if hi <= lo:
            hi = lo * 10
    else:
        lo = 0.0
        hi = max(present + [ref_line or 0, 1e-9]) * 1.1
    ticks = chart_ticks(lo, hi, log)
    hi = max(hi, ticks[-1]) if ticks else hi

    def y_of(v):
        f = (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) if log \
            else (v - lo) / (hi - lo)
        return top + height - f * height

    out.append(f'<g class="panel" data-panel="{panel}">')
    out.append(f'<text class="title" x="{left + width / 2:.1f}" y="{top - 12:.1f}" '
               f'text-anchor="middle" font-size="14">{svg_escape(title)}</text>')
    out.append(f'<text class="ylabel" x="{left - 48:.1f}" y="{top + height / 2:.1f}" '
               f'text-anchor="middle" transform="rotate(-90 {left - 48:.1f} {top + height / 2:.1f})"'
               f'>{svg_escape(ylabel)}</text>')
    for t in ticks:
        y = y_of(t)
        out.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{left + width}" y2="{y:.1f}" '
                   f'stroke="#ddd"/>')
        out.append(f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" '
                   f'font-size="11">{t:g}</text>')
    group = width / max(len(workloads), 1)
    bar = group * 0.8 / max(len(names), 1)
    for i, w in enumerate(workloads):
        x0 = left + i * group + group * 0.1
        for j, a in enumerate(names):
            v = values.get((w, a))
            if v is None or (log and v <= 0):
                continue
            y = y_of(v)
            out.append(f'<rect class="bar" data-panel="{panel}" data-workload="{svg_escape(w)}" '
                       f'data-allocator="{svg_escape(a)}" data-value="{v:.6g}" '
                       f'x="{x0 + j * bar:.2f}" y="{y:.2f}" width="{bar * 0.95:.2f}" '
                       f'height="{top + height - y:.2f}" fill="{CHART_COLORS[j % len(CHART_COLORS)]}">'
                       f'<title>{svg_escape(w)}, {svg_escape(a)}: {svg_escape(fmt(v))}</title></rect>')
        # Labels broken at '_' stay readable in every viewer (rotated text does not).
        lines = w.split("_")
        cx = left + (i + 0.5) * group
        out.append(f'<text class="xlabel" data-workload="{svg_escape(w)}" x="{cx:.1f}" '
                   f'y="{top + height + 14}" text-anchor="middle" font-size="10">' +
                   "".join(f'<tspan x="{cx:.1f}" dy="{0 if k == 0 else 11}">{svg_escape(p)}</tspan>'
                           for k, p in enumerate(lines)) + "</text>")
    if ref_line is not None:
        y = y_of(ref_line)
        out.append(f'<line class="ref" x1="{left}" y1="{y:.2f}" x2="{left + width}" y2="{y:.2f}" '
                   f'stroke="#333" stroke-width="1.5" stroke-dasharray="6 4"/>')
    out.append(f'<rect class="frame" x="{left}" y="{top}" width="{width}" height="{height}" '
               f'fill="none" stroke="#666"/>')
    out.append("</g>")


def write_chart(outdir, workloads, allocs, summary, ref):
    names = [a for a, _ in allocs]
    wnames = [w.name for w in workloads]
    ratio = {(w, a): (summary.get((w, a)) or {}).get("ratio") for w in wnames for a in names}
    rss = {}
    for w in wnames:
        for a in names:
            kb = (summary.get((w, a)) or {}).get("rss_kb")
            rss[(w, a)] = kb / 1024 if kb else None
    left, width, legend_w = 80, max(600, 62 * len(wnames)), 140
    panel_h, gap = 330, 110
    total_w, total_h = left + width + legend_w + 20, 50 + 2 * panel_h + gap + 60
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{total_h}" '
           f'viewBox="0 0 {total_w} {total_h}" font-family="sans-serif">',
           f'<rect width="{total_w}" height="{total_h}" fill="white"/>']
    chart_panel(out, f"Throughput relative to {ref} (median; above 1 = faster than {ref})",
                f"ops/s / {ref} ops/s", 50, panel_h, left, width, wnames, names, ratio, 1.0,
                False, "ratio", lambda v: f"{v:.2f}x")
    chart_panel(out, "Peak RSS (MiB, log scale)", "MiB", 50 + panel_h + gap, panel_h, left,
                width, wnames, names, rss, None, True, "rss", lambda v: f"{v:.1f} MiB")
    lx = left + width + 20
    out.append('<g class="legend">')
    for j, a in enumerate(names):
        y = 50 + j * 20
        out.append(f'<rect class="swatch" data-allocator="{svg_escape(a)}" x="{lx}" y="{y}" '
                   f'width="12" height="12" fill="{CHART_COLORS[j % len(CHART_COLORS)]}"/>')
        out.append(f'<text class="legend-label" x="{lx + 18}" y="{y + 11}" font-size="12">'
                   f'{svg_escape(a)}</text>')
    out.append("</g></svg>")
    svg = os.path.join(outdir, "bench.svg")
    with open(svg, "w") as f:
        f.write("\n".join(out) + "\n")
    return svg


def idle_table(workloads, allocs, idle):
    """RSS one second after a burst was freed, with no allocator call since (bench/idle_rss)."""
    rows = [w for w in workloads if any((w.name, a) in idle for a, _ in allocs)]
    if not rows:
        return ""
    lines = ["", "RSS 1 s after the burst was freed, idle since (MiB, largest over the reps)", "",
             "| workload | " + " | ".join(a for a, _ in allocs) + " |",
             "|---|" + "---:|" * len(allocs)]
    for w in rows:
        cells = [fmt_mib(max(idle[(w.name, a)])) if (w.name, a) in idle else "-"
                 for a, _ in allocs]
        lines.append(f"| {w.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def markdown(args, workloads, allocs, skipped, summary, ref, with_cg, argv):
    names = [a for a, _ in allocs]
    lines = []
    mode = "quick" if args.quick else "full"
    lines.append(f"Command: `python3 scripts/bench.py {' '.join(argv)}` ({mode} mode, "
                 f"{args.reps} reps per allocator, interleaved; {os.cpu_count()} CPUs; "
                 f"{time.strftime('%Y-%m-%d')})")
    lines.append("")
    head = summary_headline(workloads, allocs, summary)
    if head:
        lines += [head, ""]
    lines.append(f"Throughput: median ops/s (ratio to {ref}; CV across reps)")
    lines.append("")
    lines.append("| workload | " + " | ".join(names) + " |")
    lines.append("|---|" + "---:|" * len(names))
    for w in workloads:
        cells = []
        for a in names:
            s = summary.get((w.name, a))
            if not s:
                cells.append("-")
            elif s["status"] != "ok":
                cells.append("FAIL")
            else:
                cells.append(f"{fmt_rate(s['median'])} ({s['ratio']:.2f}x; {s['cv']:.1f}%)"
                             if s["ratio"] is not None else
                             f"{fmt_rate(s['median'])} ({s['cv']:.1f}%)")
        lines.append(f"| {w.name} | " + " | ".join(cells) + " |")
    best = best_peer_lines(workloads, names, summary, ref, with_cg)
    if best:
        lines += [""] + best
    lines.append("")
    lines.append("Peak RSS (MiB, largest ru_maxrss over the reps)")
    lines.append("")
    lines.append("| workload | " + " | ".join(names) + " |")
    lines.append("|---|" + "---:|" * len(names))
    for w in workloads:
        cells = [fmt_mib((summary.get((w.name, a)) or {}).get("rss_kb")) for a in names]
        lines.append(f"| {w.name} | " + " | ".join(cells) + " |")
    if with_cg:
        lines.append("")
        lines.append("Instructions per op (callgrind, steady state: runs at N and 2N differenced; "
                     "includes the workload's own loop and checks)")
        lines.append("")
        lines.append("| workload | " + " | ".join(names) + " |")
        lines.append("|---|" + "---:|" * len(names))
        for w in workloads:
            cells = []
            for a in names:
                ir = (summary.get((w.name, a)) or {}).get("ir_per_op")
                cells.append("-" if ir is None else f"{ir:.0f}")
            lines.append(f"| {w.name} | " + " | ".join(cells) + " |")
    if skipped:
        lines.append("")
        lines.append("Skipped: " + "; ".join(f"{n} ({why})" for n, why in skipped))
    return "\n".join(lines) + "\n"


def doc_markers(spec):
    """FILE:KEY -> (path, its text, begin marker, end marker); exits if the markers are missing."""
    path, _, key = spec.rpartition(":")
    begin, end = f"<!-- bench {key}: begin (scripts/bench.py) -->", f"<!-- bench {key}: end -->"
    text = open(path).read() if os.path.exists(path) else ""
    if begin not in text or end not in text:
        sys.exit(f"bench.py: {path or spec} lacks the lines '{begin}' and '{end}'")
    return path, text, begin, end


def write_doc(spec, md):
    """Put the report between a document's markers for KEY (FILE:KEY), so a table there is
    this script's output, never typed in."""
    path, text, begin, end = doc_markers(spec)
    key = spec.rpartition(":")[2]
    head, rest = text.split(begin, 1)
    tail = rest.split(end, 1)[1]
    with open(path, "w") as f:
        f.write(head + begin + "\n" + md + end + tail)
    log(f"wrote the report into {path} ({key})")


def best_peer_lines(workloads, names, summary, ref, with_cg=False):
    """Per workload: the fastest other allocator, and ref's throughput and peak RSS against it
    (ratio above 1: ref is faster) and against the system allocator's peak RSS; with callgrind,
    ref's instructions per op and the fewest of the peers'. Other builds of ref, given with
    --alloc as REF_SOMETHING (hakmem_b7add9d), are compared in the tables but are not peers."""
    peers = [a for a in names if a != ref and not a.startswith(ref + "_")]
    if ref not in names or not peers:
        return []
    out = [f"{ref} against the fastest peer (median ops/s ratio; peak RSS against system's)", "",
           "| workload | fastest peer | its ops/s | " + ref + " / fastest | " + ref +
           " RSS / system RSS |" + (f" {ref} instr/op | fewest instr/op peer |" if with_cg else ""),
           "|---|---|---:|---:|---:|" + ("---:|---|" if with_cg else "")]
    for w in workloads:
        mine = summary.get((w.name, ref))
        ok = [(summary[(w.name, a)]["median"], a) for a in peers
              if (summary.get((w.name, a)) or {}).get("status") == "ok"]
        if not mine or mine["status"] != "ok" or not ok:
            continue
        rate, who = max(ok)
        sysrss = (summary.get((w.name, "system")) or {}).get("rss_kb")
        rss = f"{mine['rss_kb'] / sysrss:.2f}" if sysrss and mine["rss_kb"] else "-"
        line = f"| {w.name} | {who} | {fmt_rate(rate)} | {mine['median'] / rate:.2f}x | {rss} |"
        if with_cg:
            irs = [(summary[(w.name, a)]["ir_per_op"], a) for a in peers
                   if (summary.get((w.name, a)) or {}).get("ir_per_op") is not None]
            ir = mine.get("ir_per_op")
            line += (" - |" if ir is None else f" {ir:.1f} |") + \
                (f" {min(irs)[1]} {min(irs)[0]:.1f} |" if irs else " - |")
        out.append(line)
    return out


def summary_headline(workloads, allocs, summary):
    """The headline workload, hakmem and the system allocator side by side."""
    if not workloads or workloads[0].name != "random_mixed":
        return None
    parts = []
    for a, _ in allocs:
        if a not in ("hakmem", "system"):
            continue
        s = summary.get(("random_mixed", a))
        if s and s["status"] == "ok":
            parts.append(f"{a} {fmt_rate(s['median'])}ops/s, peak RSS {fmt_mib(s['rss_kb'])} MiB")
        elif s:
            parts.append(f"{a} FAILED")
    if not parts:
        return None
    return "**Headline** (random_mixed 16-1024 B, ws 400): " + " | ".join(parts)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short runs (under 3 minutes in all)")
    ap.add_argument("--only", help="comma-separated workload or program names (see --list)")
    ap.add_argument("--allocators", default=",".join(a[0] for a in ALLOCATORS),
                    help="comma-separated, from: " + ",".join(a[0] for a in ALLOCATORS))
    ap.add_argument("--alloc", action="append", default=[], metavar="NAME=PATH",
                    help="add an allocator (a shared library to preload); repeatable. The lines "
                    "that ../shared/peers/build.sh prints work as they are")
    ap.add_argument("--reps", type=int, help="runs per workload and allocator "
                    "(default 5; soak at most 2)")
    ap.add_argument("--callgrind", action="store_true",
                    help="also measure instructions per op with valgrind --tool=callgrind")
    ap.add_argument("--out", default=os.path.join(ROOT, "results"), help="output directory")
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "build/bench"))
    ap.add_argument("--timeout", type=float, default=600, help="seconds per run")
    ap.add_argument("--no-spsc", action="store_true",
                    help="full mode: do not run the SPSC channel benchmark")
    ap.add_argument("--doc", metavar="FILE:KEY",
                    help="also write the Markdown report into FILE, between the lines "
                         "'<!-- bench KEY: begin (scripts/bench.py) -->' and '<!-- bench KEY: end -->'")
    ap.add_argument("--list", action="store_true", help="list the workloads and exit")
    args = ap.parse_args()
    argv = sys.argv[1:]

    if args.doc:
        doc_markers(args.doc)  # checked before the runs
    if args.list:
        for w in WORKLOADS:
            print(f"{w.name:22} {w.about}\n{'':22} full:  {w.prog} {' '.join(w.full)}\n"
                  f"{'':22} quick: {w.prog} {' '.join(w.quick)}")
        return 0
    if args.reps is None:
        args.reps = 5
    workloads = select_workloads(args.only)
    for spec in args.alloc:
        name, sep, path = spec.partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not re.fullmatch(r"[A-Za-z0-9_.+-]+", name) or not path:
            sys.exit(f"bench.py: --alloc wants NAME=PATH, got '{spec}'")
        if any(a[0] == name for a in ALLOCATORS):
            sys.exit(f"bench.py: --alloc {name}: that name is already an allocator")
        ALLOCATORS.append((name, os.path.abspath(path), None))
    known = [a[0] for a in ALLOCATORS]
    # Allocators given with --alloc join the default selection.
    wanted = [a for a in args.allocators.split(",") if a] + \
        [spec.partition("=")[0].strip() for spec in args.alloc
         if spec.partition("=")[0].strip() not in args.allocators.split(",")]
    for a in wanted:
        if a not in known:
            sys.exit(f"bench.py: unknown allocator '{a}'; known: {', '.join(known)}")
    allocs, skipped = resolve_allocators(wanted)
    for n, why in skipped:
        log(f"skipping allocator {n}: {why}")
    if not allocs:
        sys.exit("bench.py: no allocator left to run")
    for w in workloads:
        exe = os.path.join(args.bin_dir, w.prog)
        if not os.access(exe, os.X_OK):
            sys.exit(f"bench.py: {exe} missing; run 'make bench-progs'")
    if args.callgrind and not shutil.which("valgrind"):
        sys.exit("bench.py: --callgrind needs valgrind")
    os.makedirs(args.out, exist_ok=True)
    ref = "hakmem" if any(a == "hakmem" for a, _ in allocs) else allocs[0][0]

    runs = []  # (workload, allocator, rep, rc, ops_per_s, maxrss_kb, checks)
    idle = {}  # (workload, allocator) -> RSS 1 s after the frees (idle_rss), KiB per rep
    total = sum(min(args.reps, w.max_reps or args.reps) for w in workloads) * len(allocs)
    done, t_start = 0, time.time()
    for w in workloads:
        reps = min(args.reps, w.max_reps or args.reps)
        cmd = [os.path.join(args.bin_dir, w.prog)] + (w.quick if args.quick else w.full)
        for rep in range(reps):
            # Rotate the order each rep so no allocator always runs first (warm caches, turbo).
            order = allocs[rep % len(allocs):] + allocs[:rep % len(allocs)]
            for name, lib in order:
                done += 1
                rc, out, err, rss = run_measured(cmd, lib, args.timeout)
                res = parse_result(out) or {}
                ok = rc == 0 and res.get("checks") == "ok" and "ops_per_s" in res
                rate = float(res["ops_per_s"]) if ok else None
                runs.append((w.name, name, rep, rc, rate, rss, res.get("checks", "none")))
                if ok and "rss_1s_kb" in res:
                    idle.setdefault((w.name, name), []).append(int(res["rss_1s_kb"]))
                state = f"{fmt_rate(rate)}ops/s  {fmt_mib(rss)} MiB" if ok else \
                    f"FAILED (exit {rc}) {err.strip()[-200:]}"
                log(f"[{done}/{total} {time.time() - t_start:5.0f}s] {w.name:20} {name:9} "
                    f"rep {rep + 1}/{reps}: {state}")

    summary = {}
    for w in workloads:
        for name, _ in allocs:
            mine = [r for r in runs if r[0] == w.name and r[1] == name]
            rates = [r[4] for r in mine if r[4] is not None]
            ok = len(rates) == len(mine) and rates
            med = statistics.median(rates) if rates else None
            cv = (statistics.stdev(rates) / statistics.mean(rates) * 100
                  if len(rates) > 1 else 0.0)
            summary[(w.name, name)] = {
                "status": "ok" if ok else "fail", "median": med, "cv": cv,
                "rss_kb": max((r[5] for r in mine if r[5] is not None), default=None), "runs": len(mine),
                "ok_runs": len(rates), "ratio": None, "ir_per_op": None}
        base = summary.get((w.name, ref))
        for name, _ in allocs:
            s = summary[(w.name, name)]
            if base and base["median"] and s["median"]:
                s["ratio"] = s["median"] / base["median"]

    if args.callgrind:
        for w in workloads:
            cmd = [os.path.join(args.bin_dir, w.prog)] + w.cg
            for name, lib in allocs:
                log(f"callgrind: {w.name} {name}")
                summary[(w.name, name)]["ir_per_op"] = callgrind_ir(cmd, lib, args.out,
                                                                    args.timeout)

    with open(os.path.join(args.out, "bench.csv"), "w", newline="") as f:
        cw = csv.writer(f)
        cw.writerow(["workload", "allocator", "runs", "ok_runs", "median_ops_per_s", "cv_pct",
                     f"ratio_vs_{ref}", "peak_rss_kb", "ir_per_op", "status"])
        for w in workloads:
            for name, _ in allocs:
                s = summary[(w.name, name)]
                cw.writerow([w.name, name, s["runs"], s["ok_runs"],
                             "" if s["median"] is None else f"{s['median']:.0f}",
                             f"{s['cv']:.2f}", "" if s["ratio"] is None else f"{s['ratio']:.4f}",
                             s["rss_kb"], "" if s["ir_per_op"] is None else f"{s['ir_per_op']:.1f}",
                             s["status"]])
    with open(os.path.join(args.out, "bench_runs.csv"), "w", newline="") as f:
        cw = csv.writer(f)
        cw.writerow(["workload", "allocator", "rep", "exit", "ops_per_s", "maxrss_kb", "checks"])
        cw.writerows(runs)

    md = markdown(args, workloads, allocs, skipped, summary, ref, args.callgrind, argv)
    md += idle_table(workloads, allocs, idle)
    if not args.quick and not args.no_spsc and not args.only:
        spsc = spsc_bench(args.timeout)
        if spsc:
            md += "\nSPSC channel benchmark (`build/bench/spsc_bench`, not an allocator " \
                  "workload):\n\n```\n" + spsc.rstrip() + "\n```\n"
    with open(os.path.join(args.out, "bench.md"), "w") as f:
        f.write(md)
    svg = write_chart(args.out, workloads, allocs, summary, ref)
    print(md, end="")
    if args.doc:
        write_doc(args.doc, md)
    log(f"wrote {args.out}/bench.csv, bench_runs.csv, bench.md" + (", bench.svg" if svg else "")
        + f" in {time.time() - t_start:.0f}s")
    if skipped:
        log("skipped allocators: " + ", ".join(n for n, _ in skipped))
    failed = [k for k, s in summary.items() if s["status"] != "ok"]
    if failed:
        log("FAILED: " + ", ".join(f"{w}/{a}" for w, a in failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
