#!/usr/bin/env python3
"""Security suite runner: runs every case of build/tests/security_cases (tests/security/cases.c),
each in its own process, under each build given (--build NAME=LIB; LIB empty: the system
allocator, glibc), sorts what happened into an outcome, and checks the outcomes hakmem promises
(EXPECT below). With --doc FILE it also writes (--write) or compares (--check) the table of
docs/security.md, which is generated from these runs and never typed in.

  python3 tests/security/run.py --build default=build/libhakmem.so \
      --build hardened=build/hardened/libhakmem.so --build glibc= --doc docs/security.md --write
"""
import argparse
import concurrent.futures
import os
import re
import signal
import subprocess
import sys

CASES_BIN = "build/tests/security_cases"

# What each case does, for the table, by name prefix or exact name.
WHAT = {
    "df_immediate": "double free, at once",
    "df_delayed": "double free after 100 other calls",
    "df_interleaved": "double free interleaved (free a, free b, free a)",
    "df_after_reuse": "double free after the block was handed out again",
    "df_thread": "double free, the second from another thread",
    "df_medium": "double free of a 16 KiB block",
    "df_large": "double free of a 300 KiB block",
    "df_huge": "double free of an 8 MiB block",
    "if_stack": "free of a stack address",
    "if_alloca": "free of an alloca block",
    "if_static": "free of a static array",
    "if_mmap": "free of a page of another mapping",
    "if_past_end": "free of the address just past a 48-byte block",
    "if_never_handed": "free of the next block of a fresh page, never handed out",
    "if_never_carved": "free of a block 8 KiB on in a fresh page, never handed out",
    "if_never_handed_thread": "the same as the first, from another thread",
    "if_before_start": "free of the address 16 bytes before a block",
    "if_interior": "free of a pointer 16 bytes into a block",
    "if_unaligned": "free of a pointer 1 byte into a block",
    "if_offsets": "one block freed at several interior offsets",
    "if_huge_interior": "free of a pointer 4 KiB into an 8 MiB block",
    "if_realloc_stack": "realloc of a stack address",
    "if_realloc_interior": "realloc of an interior pointer",
    "if_realloc_freed": "realloc of a freed block",
    "if_free_sized": "free_sized of an interior pointer",
    "if_free_aligned_sized": "free_aligned_sized twice",
    "uf_first_block": "underflow by 1 byte of a page's first 16 KiB block (nothing before it)",
    "gp_large_over": "64 KiB written up from a 300 KiB block's end, not freed",
    "gp_large_under": "8 KiB written down from a 300 KiB block's start, not freed",
    "gp_huge_over": "64 KiB written up from an 8 MiB block's end, not freed",
    "gp_huge_under": "8 KiB written down from an 8 MiB block's start, not freed",
    "meta_zero": "zeros written 1 MiB below the first 4 KiB block, then malloc",
    "uaf_write": "write over a freed block (its link), then malloc/free",
    "uaf_write_reuse": "write into a freed block, then malloc",
    "uaf_write_exit": "write into a freed 4 KiB block, then exit with no other call",
    "uaf_zero": "zeros written over a freed block, then malloc/free",
    "uaf_forge_link": "freed block's link forged to a live block of its page, then malloc",
    "uaf_read_secret": "data left readable in a freed block",
    "leak_fresh_words": "read around a fresh 8-byte block: a heap address, or the links' key",
    "impossible": "impossible sizes: malloc, calloc, realloc, aligned_alloc, posix_memalign",
}
TIER = {"small": "48 B", "4k": "4 KiB", "medium": "16 KiB", "large": "300 KiB"}

# Outcomes hakmem promises, per build; a case not listed is recorded, not checked.
# "stopped": aborted with hakmem's message; "ran": exit 0 (for the benign cases, impossible and
# uaf_read_secret, that the case's own checks passed); "fault": the case's own bad write
# faulted.
def expected(build, case):
    if case == "impossible":
        return {"ran"}
    if case == "meta_zero":  # the header below the block (hardened), nothing mapped (default)
        return {"stopped"} if build == "hardened" else {"fault"}
    if build == "default":
        if case.startswith(("df_", "if_")) and case not in ("df_after_reuse", "if_past_end"):
            return {"stopped"}
        if case == "uaf_write":
            return {"stopped"}
    if build == "hardened":
        if case.startswith(("df_", "if_", "uaf_write")) or case in ("uaf_forge_link", "uaf_zero"):
            return {"stopped"}
        if case in ("uaf_read_secret", "leak_fresh_words"):
            return {"ran"}
        m = re.match(r"ov_over_(1|32)_|ov_under_(1|32)_.*_medium$", case)
        if m or case == "uf_first_block":
            return {"stopped"}
        # guard pages: a write that reaches one faults there, at once
        if case.startswith("gp_") or re.match(r"ov_(over_1m|under_.*)_large$", case):
            return {"fault"}
    return None


# Never from a hakmem build, in any case: a fault inside the allocator, an abort without its
# message, a hang. When hakmem stops a program it says why; when the program's own write
# faults, that is the "fault" outcome.
NEVER = {"crash", "signal", "abort-silent", "hang"}


def describe(case):
    if case in WHAT:
        return WHAT[case]
    m = re.match(r"ov_(over|under)_(1|32|1m)_(write|memcpy)_(small|4k|medium|large)$", case)
    if m:
        d, a, h, t = m.groups()
        amount = {"1": "1 byte", "32": "32 bytes", "1m": "1 MiB"}[a]
        return (f"{'overflow' if d == 'over' else 'underflow'} by {amount} "
                f"({'memcpy' if h == 'memcpy' else 'plain writes'}), {TIER[t]} block")
    return case


def run_case(case, lib, timeout):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAKMEM_") and k != "LD_PRELOAD"}
    if lib:
        env["LD_PRELOAD"] = os.path.abspath(lib)
    try:
        p = subprocess.run([CASES_BIN, case], env=env, capture_output=True, text=True,
                           errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired:
        return "hang", ""
    err = p.stderr.strip()
    rc = p.returncode
    if rc == -signal.SIGABRT:
        hakmem_line = next((l for l in err.splitlines() if l.startswith("hakmem: ")), "")
        line = hakmem_line if lib else (err.splitlines()[-1] if err else "")
        return ("stopped" if line else "abort-silent"), line
    if rc in (-signal.SIGSEGV, -signal.SIGBUS):
        return "crash", signal.Signals(-rc).name
    if rc < 0:
        return "signal", signal.Signals(-rc).name
    return {0: "ran", 3: "noticed", 4: "corrupt", 6: "fault", 77: "n/a"}.get(rc, f"exit {rc}"), err[-200:]


# How an outcome reads in the table; "ran" means the error went unnoticed, except for the
# benign cases, where it means the case's own checks passed.
def label(case, outcome):
    benign = case in ("impossible", "uaf_read_secret", "leak_fresh_words")
    return {
        "stopped": "stopped with message",
        "abort-silent": "aborted without message",
        "fault": "faulted at the bad write",
        "crash": "crashed (SIGSEGV)",
        "ran": "ok" if benign else "not detected",
        "noticed": "secret readable" if case in ("uaf_read_secret", "leak_fresh_words")
        else "wrong result",
        "corrupt": "heap corrupted",
        "n/a": "n/a",
        "hang": "hang",
    }.get(outcome, outcome)


def table(cases, builds, results):
    names = [b for b, _ in builds]
    lines = ["| case | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    for c in cases:
        lines.append(f"| {describe(c)} | " +
                     " | ".join(label(c, results[(b, c)][0]) for b in names) + " |")
    counts = []
    for b in names:
        tally = {}
        for c in cases:
            lab = label(c, results[(b, c)][0])
            tally[lab] = tally.get(lab, 0) + 1
        counts.append(f"- **{b}**: " + "; ".join(f"{v} {k}" for k, v in
                                                 sorted(tally.items(), key=lambda kv: -kv[1])))
    return "\n".join(counts) + "\n\n" + "\n".join(lines) + "\n"


BEGIN, END = "<!-- security table: begin (tests/security/run.py) -->", "<!-- security table: end -->"


def cells(text):
    """{(row description, column name): cell} of the table between the markers."""
    body = text.split(BEGIN, 1)[1].split(END, 1)[0]
    rows = [l.strip().strip("|").split("|") for l in body.splitlines() if l.startswith("| ")]
    head = [c.strip() for c in rows[0]]
    return {(r[0].strip(), head[i]): c.strip() for r in rows[1:] for i, c in enumerate(r) if i}


def same_table(old, new, builds):
    """The tables agree cell by cell in hakmem's columns, except where the hardened build's
    random block order decides and nothing is promised (a 1 MiB underflow of a small block
    lands wherever that block was placed). glibc's column is not compared: what it does with a wild
    pointer depends on the bytes before it, which address randomisation changes from run to
    run. Nor are the counts above the table."""
    a, b = cells(old), cells(new)
    if a.keys() != b.keys():
        return False
    by_desc = {describe(c): c for c in CASES}
    for key in a:
        case = by_desc.get(key[0])
        if key[1] == "glibc":
            continue
        if key[1] == "hardened" and case and case.startswith("ov_under_1m_") and \
                case.endswith("_small") and expected("hardened", case) is None:
            continue
        if a[key] != b[key]:
            print(f"  differs: {key[0]} / {key[1]}: doc says '{a[key]}', this run '{b[key]}'")
            return False
    return True


CASES = []


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", action="append", default=[], metavar="NAME=LIB")
    ap.add_argument("--doc", help="docs/security.md: the table between its markers")
    ap.add_argument("--write", action="store_true", help="rewrite the table in --doc")
    ap.add_argument("--check", action="store_true", help="fail if --doc's table differs")
    ap.add_argument("--timeout", type=float, default=20)
    args = ap.parse_args()
    builds = [tuple(b.split("=", 1)) for b in args.build] or [("default", "build/libhakmem.so")]
    for name, lib in builds:
        if lib and not os.path.exists(lib):
            sys.exit(f"security: build {name}: {lib} does not exist")
    cases = subprocess.run([CASES_BIN, "--list"], capture_output=True, text=True,
                           check=True).stdout.split()
    CASES.extend(cases)
    results = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futs = {pool.submit(run_case, c, lib, args.timeout): (name, c)
                for name, lib in builds for c in cases}
        for f in futs:
            results[futs[f]] = f.result()
    failures = 0
    for c in cases:
        cells = []
        for name, _ in builds:
            out, detail = results[(name, c)]
            want = expected(name, c)
            if want is None and name != "glibc" and out in NEVER:
                want = {"anything but " + "|".join(sorted(NEVER))}
            bad = want is not None and out not in want
            failures += bad
            cells.append(f"{name}={out}{' (WANT ' + '|'.join(sorted(want)) + ')' if bad else ''}")
        print(f"  {c:32s} " + "  ".join(cells))
        for name, _ in builds:
            out, detail = results[(name, c)]
            if out == "stopped" and name != "glibc":
                print(f"      {name}: {detail}")
    checked = sum(expected(n, c) is not None for n, _ in builds for c in cases)
    print(f"security: {len(cases)} cases x {len(builds)} builds; {checked} outcomes checked, "
          f"{failures} not as promised")
    if args.doc:
        text = open(args.doc).read()
        if BEGIN not in text or END not in text:
            sys.exit(f"security: {args.doc} lacks the table markers")
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        new = head + BEGIN + "\n" + table(cases, builds, results) + END + tail
        if args.write:
            open(args.doc, "w").write(new)
            print(f"security: wrote the table into {args.doc}")
        if args.check:
            if not same_table(text, new, builds):
                print(f"FAIL: {args.doc}'s table differs from these runs; regenerate it with\n"
                      f"  python3 tests/security/run.py " +
                      " ".join(f"--build {n}={l}" for n, l in builds) +
                      f" --doc {args.doc} --write")
                failures += 1
            else:
                print(f"security: {args.doc}'s table matches these runs")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
