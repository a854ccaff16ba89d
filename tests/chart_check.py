#!/usr/bin/env python3
"""The benchmark chart without a plotting program: runs scripts/bench.py's chart writer on
data made up here (random values, one missing cell) and reads the SVG back with xml.etree:
one bar per workload and allocator in each panel (none for the missing cell), each bar's
value and height true to the data, the reference line at 1, the workload labels and the
legend. usage: chart_check.py [SEED]"""
import importlib.util
import os
import random
import sys
import tempfile
import xml.etree.ElementTree as ET

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
spec = importlib.util.spec_from_file_location("bench", os.path.join(ROOT, "scripts/bench.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

seed = int(sys.argv[1]) if len(sys.argv) > 1 else random.randrange(1 << 30)
rng = random.Random(seed)
print(f"seed {seed}")
failures = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        failures.append(what)


workloads = [bench.Workload(n, "random_mixed", "", "", "", "test") for n in
             ("random_mixed", "random_mixed_small", "larson", "thread_scaling_4", "large")]
allocs = [("hakmem", "/x/libhakmem.so"), ("system", None), ("mimalloc", "/x/m.so"),
          ("a<b&c", "/x/odd.so")]  # a name that must be escaped
missing = ("larson", "mimalloc")
summary = {}
for w in workloads:
    for a, _ in allocs:
        if (w.name, a) == missing:
            summary[(w.name, a)] = {"status": "fail", "median": None, "ratio": None,
                                    "rss_kb": None}
            continue
        ratio = 1.0 if a == "hakmem" else round(rng.uniform(0.05, 3.0), 4)
        summary[(w.name, a)] = {"status": "ok", "median": 1e6 * ratio, "ratio": ratio,
                                "rss_kb": rng.randint(1500, 300000)}

with tempfile.TemporaryDirectory() as d:
    path = bench.write_chart(d, workloads, allocs, summary, "hakmem")
    check(path == os.path.join(d, "bench.svg") and os.path.exists(path), "write_chart wrote bench.svg")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        check(False, f"the SVG is well-formed XML ({e})")
        sys.exit(1)

ns = "{http://www.w3.org/2000/svg}"
check(root.tag == ns + "svg", "root element is <svg> in the SVG namespace")
bars = [e for e in root.iter(ns + "rect") if e.get("class") == "bar"]
want = {(w.name, a) for w in workloads for a, _ in allocs} - {missing}
for panel, key in (("ratio", lambda s: s["ratio"]), ("rss", lambda s: s["rss_kb"] / 1024)):
    mine = [b for b in bars if b.get("data-panel") == panel]
    cells = {(b.get("data-workload"), b.get("data-allocator")): b for b in mine}
    check(len(mine) == len(want) and set(cells) == want,
          f"{panel}: one bar per workload and allocator ({len(mine)} of {len(want)}), "
          f"none for the failed cell")
    vals_ok = all(abs(float(b.get("data-value")) - key(summary[c])) <= 1e-5 * key(summary[c])
                  for c, b in cells.items())
    check(vals_ok, f"{panel}: every bar carries its value")
    check(all(b.find(ns + "title") is not None and c[0] in b.find(ns + "title").text
              for c, b in cells.items()), f"{panel}: every bar has a tooltip naming its workload")
    # Heights: proportional to the value (linear) or to its logarithm above a common base.
    bottoms = {round(float(b.get("y")) + float(b.get("height")), 1) for b in mine}
    check(len(bottoms) == 1, f"{panel}: all bars stand on one baseline")
    order = sorted(cells, key=lambda c: key(summary[c]))
    heights = [float(cells[c].get("height")) for c in order]
    check(all(h2 >= h1 - 1e-6 for h1, h2 in zip(heights, heights[1:])),
          f"{panel}: a larger value never has a shorter bar")
    if panel == "ratio":
        per_unit = [float(b.get("height")) / key(summary[c]) for c, b in cells.items()]
        check((max(per_unit) - min(per_unit)) / max(per_unit) < 0.005,
              "ratio: bar heights proportional to values")
        refs = [e for e in root.iter(ns + "line") if e.get("class") == "ref"]
        ref_bar = cells[("random_mixed", "hakmem")]
        check(len(refs) == 1 and abs(float(refs[0].get("y1")) - float(ref_bar.get("y"))) < 0.05,
              "ratio: one dashed line at 1, level with the reference allocator's bars")
    # Bars of one workload sit side by side, groups in workload order, allocators in order.
    xs = [float(cells[(w.name, a)].get("x")) for w in workloads for a, _ in allocs
          if (w.name, a) in cells]
    check(xs == sorted(xs), f"{panel}: groups in workload order, bars in allocator order")
    colors = {}
    for (w, a), b in cells.items():
        colors.setdefault(a, set()).add(b.get("fill"))
    check(all(len(c) == 1 for c in colors.values()) and
          len({next(iter(c)) for c in colors.values()}) == len(colors),
          f"{panel}: one colour per allocator")

texts = {"".join(e.itertext()) for e in root.iter(ns + "text")}
labels = [e for e in root.iter(ns + "text") if e.get("class") == "xlabel"]
check(sorted(e.get("data-workload") for e in labels) ==
      sorted([w.name for w in workloads] * 2) and
      all("".join(e.itertext()) == e.get("data-workload").replace("_", "") and
          len(e.findall(ns + "tspan")) == e.get("data-workload").count("_") + 1 for e in labels),
      "workload labels under both panels, one line per '_'-separated part")
legend = [e.text for e in root.iter(ns + "text") if e.get("class") == "legend-label"]
check(legend == [a for a, _ in allocs], f"legend names every allocator in order ({legend})")
check(any("Throughput relative to hakmem" in t for t in texts) and
      any("Peak RSS" in t for t in texts), "both panel titles present")
ticks = [e.text for e in root.iter(ns + "text") if e.get("class") == "tick"]
check(len(ticks) >= 4, f"axis ticks labelled ({len(ticks)})")

print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)
