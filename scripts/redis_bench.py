#!/usr/bin/env python3
"""redis_bench.py: a real program's idle memory. redis-server (Debian's, dynamically linked with
libjemalloc) is run on its own jemalloc and with each allocator LD_PRELOADed (the preload wins
the malloc/free/calloc/realloc/malloc_usable_size lookups; redis's mallctl calls still reach
libjemalloc, whose arenas then stay empty: `MEMORY MALLOC-STATS` is checked for that). Per
allocator: SET throughput (redis-benchmark), then 300 k keys of 64-1024 B filled over loopback,
FLUSHALL, and the server's RSS every 100 ms for 2 s. Skips cleanly where redis is absent.
Loopback (127.0.0.1) only; every step has a timeout. Standard library only.
"""
import argparse
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
LIBDIR = "/usr/lib/x86_64-linux-gnu"
# name, preload (None: redis's own jemalloc), "glibc" preloads libc itself so its malloc comes
# before libjemalloc's in the lookup order.
ALLOCATORS = [
    ("redis-jemalloc", None),
    ("hakmem", os.path.join(ROOT, "build/libhakmem.so")),
    ("glibc", f"{LIBDIR}/libc.so.6"),
    ("mimalloc", f"{LIBDIR}/libmimalloc.so.2"),
    ("jemalloc-preload", f"{LIBDIR}/libjemalloc.so.2"),
    ("tcmalloc", f"{LIBDIR}/libtcmalloc_minimal.so.4"),
]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


class Client:
    """A minimal RESP client with pipelining, over 127.0.0.1 only."""

    def __init__(self, port, timeout=30):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    raise ConnectionError("redis closed the connection")
                self.buf += chunk
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        if kind == b"-":
            raise RuntimeError(rest.decode())
        return rest

    @staticmethod
    def encode(*args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def call(self, *args):
        self.sock.sendall(self.encode(*args))
        return self.reply()

    def pipeline(self, commands):
        self.sock.sendall(b"".join(commands))
        for _ in commands:
            self.reply()


def fill(port, keys, lo, hi, seed):
    rng = random.Random(seed)
    c = Client(port)
    blob = bytes(rng.randrange(256) for _ in range(4096))
    batch = []
    for k in range(keys):
        n = rng.randint(lo, hi)
        off = rng.randrange(4096 - n) if n < 4096 else 0
        batch.append(Client.encode(b"SET", b"k:%d" % k, blob[off:off + n]))
        if len(batch) == 1000:
            c.pipeline(batch)
            batch = []
    if batch:
        c.pipeline(batch)
    return c


def set_throughput(port, requests, timeout):
    """requests per second of redis-benchmark's SET (50 clients, pipeline 16, 256 B values)."""
    cmd = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", "set", "-n", str(requests),
           "-r", "100000", "-d", "256", "-c", "50", "-P", "16", "-q", "--csv"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout).stdout
    m = re.search(r'"SET","([0-9.]+)"', out)
    return float(m.group(1)) if m else None


def cpu_s(pid):
    """user + system CPU seconds the process has used (less sensitive to a loaded machine)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_one(name, lib, args, rss=True):
    """One server: SET throughput only (rss False), or the fill / FLUSHALL / idle RSS run."""
    port = free_port()
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if lib:
        env["LD_PRELOAD"] = lib
    srv = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                            "--save", "", "--appendonly", "no", "--daemonize", "no",
                            "--loglevel", "warning"], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        c = None
        for _ in range(100):
            try:
                c = Client(port)
                c.call("PING")
                break
            except OSError:
                c = None
                time.sleep(0.05)
        if c is None:
            return {"error": "server did not start"}
        res = {}
        if not rss:
            cpu0 = cpu_s(srv.pid)
            res["set_rps"] = set_throughput(port, args.requests, args.timeout)
            res["cpu_us"] = (cpu_s(srv.pid) - cpu0) * 1e6 / args.requests
            c.sock.sendall(Client.encode("SHUTDOWN", "NOSAVE"))
            srv.wait(timeout=10)
            return res
        time.sleep(0.3)
        res["rss_start_kb"] = rss_kb(srv.pid)
        filler = fill(port, args.keys, 64, 1024, args.seed)
        res["keys"] = int(c.call("DBSIZE"))
        res["rss_full_kb"] = rss_kb(srv.pid)
        stats = c.call("MEMORY", "MALLOC-STATS") or b""
        m = re.search(rb"Allocated: (\d+)", stats)
        res["jemalloc_allocated"] = int(m.group(1)) if m else None
        filler.sock.close()
        c.call("FLUSHALL")
        t0 = time.time()
        samples = []
        for i in range(int(args.idle_ms / 100) + 1):
            target = t0 + i * 0.1
            time.sleep(max(0.0, target - time.time()))
            samples.append(rss_kb(srv.pid))
        res["samples"] = samples
        try:
            c.sock.sendall(Client.encode("SHUTDOWN", "NOSAVE"))
        except OSError:
            pass
        srv.wait(timeout=10)
        return res
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=300000)
    ap.add_argument("--requests", type=int, default=300000, help="SET requests per throughput run")
    ap.add_argument("--reps", type=int, default=3, help="throughput runs (median)")
    ap.add_argument("--idle-ms", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--allocators", default=",".join(a[0] for a in ALLOCATORS))
    ap.add_argument("--alloc", action="append", default=[], metavar="NAME=PATH",
                    help="another allocator to preload (repeatable)")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 unless hakmem's RSS 2 s after FLUSHALL is at most 1.2x "
                         "redis-jemalloc's (throughput is reported, never asserted)")
    args = ap.parse_args()
    if not shutil.which("redis-server") or not shutil.which("redis-benchmark"):
        print("redis_bench: skipped (redis-server / redis-benchmark not installed; "
              "Debian packages redis-server redis-tools)")
        return 0
    table = dict(ALLOCATORS)
    wanted = [(n, table[n]) for n in args.allocators.split(",") if n in table]
    for spec in args.alloc:
        n, _, p = spec.partition("=")
        wanted.append((n, p))
    results = {}
    present = []
    for name, lib in wanted:
        if lib and not os.path.exists(lib):
            log(f"redis_bench: skipping {name}: {lib} missing")
            continue
        present.append((name, lib))
    for name, lib in present:
        log(f"redis_bench: {name}: fill, FLUSHALL, idle ...")
        results[name] = run_one(name, lib, args)
    # Throughput runs interleaved, a fresh server each, the order rotated every rep, so that
    # load from elsewhere on the machine spreads over all allocators alike.
    rates = {name: [] for name, _ in present}
    for rep in range(args.reps):
        k = rep % len(present) if present else 0
        for name, lib in present[k:] + present[:k]:
            one = run_one(name, lib, args, rss=False)
            r = one.get("set_rps")
            log(f"redis_bench: {name}: SET rep {rep + 1}/{args.reps}: {r} /s, "
                f"{one.get('cpu_us', 0):.2f} us CPU per SET in the server")
            if r:
                rates[name].append((r, one["cpu_us"]))
    for name in results:
        rr = sorted(x[0] for x in rates[name])
        cc = sorted(x[1] for x in rates[name])
        results[name]["set_rps"] = rr[len(rr) // 2] if rr else None
        results[name]["cpu_us"] = cc[len(cc) // 2] if cc else None
    print(f"redis-server {subprocess.run(['redis-server', '--version'], capture_output=True, text=True).stdout.split()[2]}: "
          f"{args.keys} keys of 64-1024 B, FLUSHALL, RSS (MiB) every 100 ms; SET throughput: "
          f"redis-benchmark -t set -d 256 -c 50 -P 16, median of {args.reps} interleaved runs")
    steps = len(next(iter(results.values())).get("samples", [])) if results else 0
    head = ["allocator", "SET k/s", "server CPU us/SET", "filled", "jemalloc arenas"] + \
        [f"{i * 100}ms" for i in range(0, steps, 5)]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, r in results.items():
        if "error" in r:
            print(f"| {name} | {r['error']} |")
            continue
        ja = r["jemalloc_allocated"]
        cells = [name, f"{r['set_rps'] / 1000:.0f}" if r["set_rps"] else "-",
                 f"{r['cpu_us']:.2f}" if r.get("cpu_us") else "-",
                 f"{r['rss_full_kb'] / 1024:.1f}",
                 "-" if ja is None else f"{ja / 1048576:.1f} MiB"]
        cells += [f"{r['samples'][i] / 1024:.1f}" for i in range(0, steps, 5)]
        print("| " + " | ".join(cells) + " |")
    for name, r in results.items():
        if "samples" in r:
            print(f"result program=redis allocator={name} set_rps={r['set_rps'] or 0:.0f} "
                  f"cpu_us_per_set={r.get('cpu_us') or 0:.3f} "
                  f"keys={r['keys']} rss_full_kb={r['rss_full_kb']} "
                  f"rss_1s_kb={r['samples'][min(10, len(r['samples']) - 1)]} "
                  f"rss_2s_kb={r['samples'][-1]} samples_kb={','.join(map(str, r['samples']))}")
    if args.check:
        hk, je = results.get("hakmem"), results.get("redis-jemalloc")
        if not hk or not je or "samples" not in hk or "samples" not in je:
            log("redis_bench: --check needs hakmem and redis-jemalloc runs")
            return 1
        ok = hk["samples"][-1] <= 1.2 * je["samples"][-1]
        log(f"redis_bench: RSS after 2 s hakmem/redis-jemalloc = "
            f"{hk['samples'][-1] / je['samples'][-1]:.2f} ({'ok' if ok else 'above 1.2'}); "
            f"SET throughput ratio {(hk['set_rps'] or 0) / (je['set_rps'] or 1):.2f}")
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
