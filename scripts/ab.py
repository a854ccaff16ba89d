#!/usr/bin/env python3
"""ab.py: A/B test of one command under two environment settings (same binary, a toggle).
Runs A and B interleaved (--runs each), reads ops_per_s from each run's `result` line, and
prints mean, CV, the difference of B against A in %, and a verdict: GO above +1 %, NEUTRAL
within +-1 %, NO-GO below -1 % (DESIGN.md: +-1 % over 10 runs is noise). Standard library only.

  python3 scripts/ab.py --a HAKMEM_X=0 --b HAKMEM_X=1 -- build/bench/random_mixed --iters 5000000
  python3 scripts/ab.py --a LD_PRELOAD= --b LD_PRELOAD=build/libhakmem.so -- build/bench/patterns

Each --a/--b may be given several times or hold several space-separated NAME=VALUE settings;
an empty value (NAME=) removes NAME from the environment.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

RATE_RE = re.compile(r"^result .*\bops_per_s=([0-9.eE+]+)", re.M)


def parse_env(specs):
    env = {}
    for spec in specs or []:
        for kv in spec.split():
            if "=" not in kv:
                sys.exit(f"ab.py: '{kv}' is not NAME=VALUE")
            k, v = kv.split("=", 1)
            env[k] = v
    return env


def run_once(cmd, settings):
    env = dict(os.environ)
    for k, v in settings.items():
        if v == "":
            env.pop(k, None)
        else:
            env[k] = v
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    m = RATE_RE.findall(p.stdout)
    if p.returncode != 0 or not m or "checks=ok" not in p.stdout:
        sys.stderr.write(p.stdout[-1000:] + p.stderr[-1000:])
        sys.exit(f"ab.py: run failed (exit {p.returncode}) with {settings}")
    return float(m[-1])


def stats(xs):
    mean = statistics.mean(xs)
    cv = statistics.stdev(xs) / mean * 100 if len(xs) > 1 and mean else 0.0
    return mean, cv


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", action="append", default=[], help="settings of A (NAME=VALUE ...)")
    ap.add_argument("--b", action="append", default=[], help="settings of B (NAME=VALUE ...)")
    ap.add_argument("--runs", type=int, default=10, help="runs of each side (default 10)")
    ap.add_argument("--threshold", type=float, default=1.0,
                    help="percent beyond which a difference counts (default 1)")
    ap.add_argument("cmd", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    args = ap.parse_args()
    cmd = args.cmd[1:] if args.cmd and args.cmd[0] == "--" else args.cmd
    if not cmd:
        ap.error("no command given (put it after --)")
    if args.runs < 2:
        ap.error("--runs must be at least 2")
    a_env, b_env = parse_env(args.a), parse_env(args.b)
    a, b = [], []
    for i in range(args.runs):
        # Alternate which side goes first so drift (thermal, other load) hits both equally.
        order = [("A", a_env, a), ("B", b_env, b)]
        if i % 2:
            order.reverse()
        for name, env, out in order:
            out.append(run_once(cmd, env))
            print(f"run {i + 1:2}/{args.runs} {name}: {out[-1]:14.0f} ops/s", file=sys.stderr,
                  flush=True)
    (ma, ca), (mb, cb) = stats(a), stats(b)
    diff = (mb - ma) / ma * 100
    verdict = ("GO" if diff > args.threshold else
               "NO-GO" if diff < -args.threshold else "NEUTRAL")
    desc = lambda e: " ".join(f"{k}={v}" for k, v in e.items()) or "(environment as is)"
    print(f"command: {' '.join(cmd)}")
    print(f"A {desc(a_env)}: mean {ma:.0f} ops/s, CV {ca:.2f}% ({args.runs} runs)")
    print(f"B {desc(b_env)}: mean {mb:.0f} ops/s, CV {cb:.2f}% ({args.runs} runs)")
    noisy = max(ca, cb) > args.threshold and abs(diff) < 2 * max(ca, cb)
    print(f"B vs A: {diff:+.2f}%  verdict: {verdict}"
          + ("  (noisy: the difference is under twice the CV; repeat on a quieter machine)"
             if noisy else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
