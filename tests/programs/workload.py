# Allocation-heavy Python workload for tests/suites/programs.sh: dicts, lists, strings, json,
# re, sorting and threads. Its output is deterministic, so a run under LD_PRELOAD=libhakmem.so
# must print exactly what a run on the system allocator prints.
import hashlib
import json
import random
import re
import threading
from collections import Counter, defaultdict

rng = random.Random(12345)
digest = hashlib.sha256()


def emit(label, value):
    text = f"{label}: {value}"
    digest.update(text.encode())
    print(text)


# dicts: build, mutate, delete, rebuild (resizes and frees of many small objects)
d = {}
for i in range(200_000):
    d[f"key-{i}"] = (i, str(i) * (i % 7), [i] * (i % 5))
for i in range(0, 200_000, 3):
    del d[f"key-{i}"]
for i in range(0, 200_000, 5):
    d[f"key-{i}"] = {"v": i, "s": "x" * (i % 50)}
emit("dict size", len(d))
emit("dict checksum", sum(len(k) + (v[0] if isinstance(v, tuple) else v["v"]) for k, v in d.items()))

# lists: append, slice, insert, sort, nested lists
lst = [rng.randint(0, 10**9) for _ in range(300_000)]
lst.sort()
emit("sorted ok", all(lst[i] <= lst[i + 1] for i in range(len(lst) - 1)))
emit("list sum", sum(lst[::997]))
nested = [[j for j in range(i % 100)] for i in range(20_000)]
emit("nested total", sum(map(len, nested)))
words = ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(1, 12))) for _ in range(100_000)]
words.sort(key=lambda w: (len(w), w))
emit("words first/last", (words[0], words[-1]))

# strings: concatenation, join, split, replace, formatting, big strings
s = "".join(f"{i:08x}" for i in range(100_000))
emit("big string", (len(s), s[12345:12360]))
parts = s.split("0")
emit("split parts", len(parts))
emit("replace", s.replace("ab", "Z").count("Z"))
text = " ".join(words)
emit("upper hash", hashlib.md5(text.upper().encode()).hexdigest())

# json: dump and load a deep structure
doc = {
    "users": [
        {"id": i, "name": f"user{i}", "tags": [f"t{j}" for j in range(i % 9)], "score": i * 0.5}
        for i in range(30_000)
    ],
    "meta": {"nested": {"deeper": [list(range(50)) for _ in range(200)]}},
}
blob = json.dumps(doc, sort_keys=True)
back = json.loads(blob)
emit("json roundtrip", back == doc)
emit("json length", len(blob))
emit("json sha", hashlib.sha1(blob.encode()).hexdigest())

# re: compile, findall, sub
pat = re.compile(r"user(\d+)\D+(\d*)")
found = pat.findall(blob[:2_000_000])
emit("re matches", len(found))
emit("re sub", len(re.sub(r"[aeiou]+", "_", text)))
counts = Counter(re.findall(r"[a-j]{3}", text))
emit("re top", counts.most_common(3))

# threads: each builds and sorts its own structures, results gathered in order
results = [None] * 8
lock = threading.Lock()
shared = defaultdict(int)


def work(k):
    r = random.Random(k)
    local = [str(r.random()) for _ in range(40_000)]
    local.sort()
    m = {x: len(x) for x in local}
    with lock:
        for x in local[:1000]:
            shared[x[:4]] += 1
    results[k] = (len(m), local[0][:8], sum(m.values()))


threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
emit("threads", results)
emit("shared", sorted(shared.items())[:5])

# sets and bytes churn
st = set()
for i in range(100_000):
    st.add(bytes([i % 256]) * (i % 40))
    if i % 3 == 0:
        st.discard(bytes([(i // 2) % 256]) * ((i // 2) % 40))
emit("set size", len(st))

print("digest:", digest.hexdigest())
print("workload.py done")
