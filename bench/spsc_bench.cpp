// spsc_bench: include/hakmem_spsc.h against boost::lockfree::spsc_queue, in one run.
// Owns the measurement only: throughput item at a time and in bulk, and round-trip latency,
// with the two threads pinned to different CPUs. The consumer checks every sequence number,
// so a broken channel stops the run instead of posting a number.
#include "hakmem_spsc.h"

#include <boost/lockfree/spsc_queue.hpp>

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using clk = std::chrono::steady_clock;

double ns_since(clk::time_point t0, clk::time_point t1) {
    return std::chrono::duration<double, std::nano>(t1 - t0).count();
}

inline void cpu_relax() {
    __builtin_ia32_pause();
}

[[noreturn]] void die(const char *what, std::uintptr_t got, std::uintptr_t want) {
    std::fprintf(stderr, "spsc_bench: %s: got %lu, expected %lu\n", what,
                 static_cast<unsigned long>(got), static_cast<unsigned long>(want));
    std::exit(1);
}

void *as_item(std::uintptr_t x) {
    return reinterpret_cast<void *>(x);
}
std::uintptr_t as_seq(void *p) {
    return reinterpret_cast<std::uintptr_t>(p);
}

// ---- the harness's per-item work ------------------------------------------------------------
// Numbering the items and checking every one of them is the same work for both channels. It is
// vectorised (four pairs per step, baseline SSE2 on x86-64), so that it dilutes the channels'
// own costs as little as possible: done one item at a time it took about as long as the copy
// through the ring, and both channels looked alike for it.
using lanes = std::uintptr_t __attribute__((vector_size(16)));

void fill_seq(void **out, std::size_t n, std::uintptr_t first) {
    std::size_t i = 0;
    if (n >= 8) { // small batches skip the vector set-up
        lanes v0 = {first, first + 1}, v1 = v0 + 2, v2 = v0 + 4, v3 = v0 + 6;
        for (; i + 8 <= n; i += 8) {
            std::memcpy(out + i, &v0, sizeof v0);
            std::memcpy(out + i + 2, &v1, sizeof v1);
            std::memcpy(out + i + 4, &v2, sizeof v2);
            std::memcpy(out + i + 6, &v3, sizeof v3);
            v0 += 8, v1 += 8, v2 += 8, v3 += 8;
        }
    }
    for (; i < n; i++)
        out[i] = as_item(first + i);
}

// Zero when in[i] == first + i for every i < n.
std::uintptr_t seq_mismatch(void *const *in, std::size_t n, std::uintptr_t first) {
    std::size_t i = 0;
    std::uintptr_t any = 0;
    if (n >= 8) {
        lanes v0 = {first, first + 1}, v1 = v0 + 2, v2 = v0 + 4, v3 = v0 + 6, bad0 = {}, bad1 = {};
        for (; i + 8 <= n; i += 8) {
            lanes g0, g1, g2, g3;
            std::memcpy(&g0, in + i, sizeof g0);
            std::memcpy(&g1, in + i + 2, sizeof g1);
            std::memcpy(&g2, in + i + 4, sizeof g2);
            std::memcpy(&g3, in + i + 6, sizeof g3);
            bad0 |= (g0 ^ v0) | (g1 ^ v1);
            bad1 |= (g2 ^ v2) | (g3 ^ v3);
            v0 += 8, v1 += 8, v2 += 8, v3 += 8;
        }
        bad0 |= bad1;
        any = bad0[0] | bad0[1];
    }
    for (; i < n; i++)
        any |= as_seq(in[i]) ^ (first + i);
    return any;
}

// ---- the two channels behind one interface ------------------------------------------------

struct Hakmem {
    hk_spsc_tx *tx = nullptr;
    hk_spsc_rx *rx = nullptr;
    explicit Hakmem(std::size_t cap) {
        if (hk_spsc_open(cap, &tx, &rx) != 0) die("hk_spsc_open failed", 0, 0);
    }
    ~Hakmem() {
        hk_spsc_close_tx(tx);
        hk_spsc_close_rx(rx);
    }
    Hakmem(const Hakmem &) = delete;
    Hakmem &operator=(const Hakmem &) = delete;
    bool push(void *v) { return hk_spsc_send(tx, v) == HK_SPSC_OK; }
    bool pop(void *&v) { return hk_spsc_try_recv(rx, &v) == HK_SPSC_OK; }
    std::size_t push_n(void *const *v, std::size_t n) { return hk_spsc_write_n(tx, v, n); }
    void publish() { hk_spsc_flush(tx); }
    std::size_t pop_n(void **v, std::size_t n) { return hk_spsc_read_n(rx, v, n); }
};

// Compile-time capacity: boost's fastest configuration (storage inline, no capacity load).
template <std::size_t Cap> struct Boost {
    boost::lockfree::spsc_queue<void *, boost::lockfree::capacity<Cap>> q;
    explicit Boost(std::size_t) {}
    bool push(void *v) { return q.push(v); }
    bool pop(void *&v) { return q.pop(v); }
    std::size_t push_n(void *const *v, std::size_t n) { return q.push(v, n); }
    void publish() {}
    std::size_t pop_n(void **v, std::size_t n) { return q.pop(v, n); }
};

// ---- threads ----------------------------------------------------------------------------

std::vector<int> g_cpus;

void pin(std::thread &t, int which) {
    if (g_cpus.size() < 2) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(g_cpus[static_cast<std::size_t>(which) % g_cpus.size()], &set);
    pthread_setaffinity_np(t.native_handle(), sizeof set, &set);
}

// Both threads start together so thread creation and pinning stay out of the timing.
struct StartLine {
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    void arrive_and_wait() {
        ready.fetch_add(1);
        while (!go.load(std::memory_order_acquire))
            cpu_relax();
    }
    void release(int parties) {
        while (ready.load() < parties)
            std::this_thread::yield();
        go.store(true, std::memory_order_release);
    }
};

template <class P, class C> void run_pair(P &&producer, C &&consumer) {
    StartLine start;
    std::thread c([&] {
        start.arrive_and_wait();
        consumer();
    });
    std::thread p([&] {
        start.arrive_and_wait();
        producer();
    });
    pin(p, 0);
    pin(c, 1);
    start.release(2);
    p.join();
    c.join();
}

// ---- throughput ---------------------------------------------------------------------------
// The producer streams 1, 2, 3, ... for a fixed time, then a 0 that ends the run; the
// consumer checks each value and stamps the end. Items per second = items / (end - start).

struct Config {
    double run_ms = 200;
    int reps = 5;
    std::size_t pingpong_rounds = 200000;
    std::size_t only_cap = 0, only_batch = 0; // 0: all
};

template <class Chan> double throughput_item(std::size_t cap, const Config &cfg) {
    std::unique_ptr<Chan> ch(new Chan(cap));
    clk::time_point t0, t1;
    std::uintptr_t sent = 0;
    run_pair(
        [&] {
            t0 = clk::now();
            auto stop = t0 + std::chrono::microseconds(static_cast<long>(cfg.run_ms * 1e3));
            std::uintptr_t seq = 1;
            for (;;) {
                for (int i = 0; i < 4096; i++, seq++)
                    while (!ch->push(as_item(seq)))
                        cpu_relax();
                if (clk::now() >= stop) break;
            }
            while (!ch->push(as_item(0)))
                cpu_relax();
            sent = seq - 1;
        },
        [&] {
            std::uintptr_t want = 1;
            for (;;) {
                void *v;
                while (!ch->pop(v))
                    cpu_relax();
                if (as_seq(v) != want) {
                    if (v == nullptr) break;
                    die("item order", as_seq(v), want);
                }
                want++;
            }
            t1 = clk::now();
            if (want - 1 == 0) die("nothing received", 0, 1);
        });
    return static_cast<double>(sent) / ns_since(t0, t1) * 1e3; // Mitems/s
}

// Producer side of bulk mode: numbers one batch from seq, stages it (publishing the staged part
// whenever the ring is full part-way) and publishes it.
template <class Chan> void send_batch(Chan &ch, void **buf, std::size_t batch, std::uintptr_t seq) {
    fill_seq(buf, batch, seq);
    for (std::size_t done = 0; done < batch;) {
        std::size_t n = ch.push_n(buf + done, batch - done);
        if (n == 0) {
            ch.publish();
            cpu_relax();
        }
        done += n;
    }
    ch.publish();
}

// Consumer side of bulk mode: takes up to batch items and checks every one against want, want+1,
// ... Returns how many arrived (0: none yet), not counting an end marker (a null right after the
// last item), which sets end instead.
template <class Chan>
std::size_t recv_batch(Chan &ch, void **buf, std::size_t batch, std::uintptr_t want, bool &end) {
    std::size_t n = ch.pop_n(buf, batch);
    // The whole batch is checked at once; the slow scan tells the end marker from a real fault.
    if (n != 0 && seq_mismatch(buf, n, want)) {
        for (std::size_t i = 0; i < n; i++) {
            if (as_seq(buf[i]) == want + i) continue;
            if (buf[i] == nullptr && i + 1 == n) {
                end = true;
                return i;
            }
            die("bulk order", as_seq(buf[i]), want + i);
        }
    }
    return n;
}

template <class Chan>
double throughput_bulk(std::size_t cap, std::size_t batch, const Config &cfg) {
    std::unique_ptr<Chan> ch(new Chan(cap));
    clk::time_point t0, t1;
    std::uintptr_t sent = 0;
    run_pair(
        [&] {
            std::vector<void *> buf(batch);
            t0 = clk::now();
            auto stop = t0 + std::chrono::microseconds(static_cast<long>(cfg.run_ms * 1e3));
            std::uintptr_t seq = 1;
            for (;;) {
                for (int rounds = 0; rounds < 256; rounds++, seq += batch)
                    send_batch(*ch, buf.data(), batch, seq);
                if (clk::now() >= stop) break;
            }
            void *end = nullptr;
            while (ch->push_n(&end, 1) == 0)
                cpu_relax();
            ch->publish();
            sent = seq - 1;
        },
        [&] {
            std::vector<void *> buf(batch);
            std::uintptr_t want = 1;
            for (bool end = false; !end;) {
                std::size_t n = recv_batch(*ch, buf.data(), batch, want, end);
                if (n == 0 && !end) cpu_relax();
                want += n;
            }
            t1 = clk::now();
        });
    return static_cast<double>(sent) / ns_since(t0, t1) * 1e3;
}

// ---- instruction counts ---------------------------------------------------------------------
// --mode count runs the item and bulk loops of both channels in one thread, untimed: an item (a
// batch) out, then back in and checked. Under callgrind, the inclusive cost of count_item<...> or
// count_bulk<...> divided by the items printed is one implementation's instructions per item,
// harness included. Two threads under valgrind would mostly count spinning.

constexpr std::size_t count_items = 1 << 20;

template <class Chan> __attribute__((noinline)) void count_item(Chan &ch) {
    for (std::uintptr_t seq = 1; seq <= count_items; seq++) {
        void *v = nullptr;
        if (!ch.push(as_item(seq)) || !ch.pop(v) || as_seq(v) != seq)
            die("count item", as_seq(v), seq);
    }
}

// The batch must fit the ring: one thread cannot drain a ring that send_batch is waiting on.
template <class Chan> __attribute__((noinline)) void count_bulk(Chan &ch, std::size_t batch) {
    std::vector<void *> out(batch), in(batch);
    bool end = false;
    std::uintptr_t want = 1;
    for (std::uintptr_t seq = 1; seq <= count_items; seq += batch) {
        send_batch(ch, out.data(), batch, seq);
        while (want < seq + batch) {
            std::size_t n = recv_batch(ch, in.data(), batch, want, end);
            if (n == 0) die("count bulk: published items not visible", 0, seq + batch - want);
            want += n;
        }
    }
}

// ---- round trip -----------------------------------------------------------------------------
// One item goes out on one channel and comes back on another; each round trip is timed.

struct Latency {
    double p50, p99;
};

template <class Chan> Latency pingpong(std::size_t cap, const Config &cfg) {
    std::unique_ptr<Chan> out(new Chan(cap)), back(new Chan(cap));
    std::vector<float> ns(cfg.pingpong_rounds);
    run_pair(
        [&] {
            for (std::size_t i = 0; i < ns.size(); i++) {
                void *v;
                auto t0 = clk::now();
                while (!out->push(as_item(i + 1)))
                    cpu_relax();
                while (!back->pop(v))
                    cpu_relax();
                auto t1 = clk::now();
                if (as_seq(v) != i + 1) die("echo", as_seq(v), i + 1);
                ns[i] = static_cast<float>(ns_since(t0, t1));
            }
            while (!out->push(as_item(0)))
                cpu_relax();
        },
        [&] {
            for (;;) {
                void *v;
                while (!out->pop(v))
                    cpu_relax();
                if (v == nullptr) break;
                while (!back->push(v))
                    cpu_relax();
            }
        });
    std::sort(ns.begin(), ns.end());
    return {ns[ns.size() / 2], ns[ns.size() * 99 / 100]};
}

// ---- driver ---------------------------------------------------------------------------------

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double cv(const std::vector<double> &v) {
    double mean = 0, var = 0;
    for (double x : v)
        mean += x;
    mean /= static_cast<double>(v.size());
    for (double x : v)
        var += (x - mean) * (x - mean);
    var /= static_cast<double>(v.size());
    return mean > 0 ? std::sqrt(var) / mean : 0;
}

struct Row {
    std::string mode;
    std::size_t batch, cap;
    double hakmem, boost; // Mitems/s, or p50 ns for pingpong
    double hakmem_p99, boost_p99;
    double ratio; // median of the per-rep ratios, above 1 when hakmem is faster
};

// The two vCPUs of a virtual machine can be moved between neighbouring and distant cores in the
// middle of a measurement, which changes both channels' figures by 4x or more. Each rep measures
// hakmem and then boost back to back, so the ratio within a rep compares like with like; the
// median of those ratios shrugs off a rep split by a move, where the ratio of the two medians
// could set a median from one placement against one from the other.
double paired_ratio(const std::vector<double> &num, const std::vector<double> &den) {
    std::vector<double> r;
    for (std::size_t i = 0; i < num.size(); i++)
        r.push_back(num[i] / den[i]);
    return median(r);
}

template <std::size_t Cap>
void run_capacity(const Config &cfg, std::vector<Row> &rows,
                  const std::vector<std::size_t> &batches, bool item, bool bulk, bool ping,
                  bool count) {
    if (cfg.only_cap && cfg.only_cap != Cap) return;
    using B = Boost<Cap>;
    if (count) {
        auto one = [&](const char *mode, std::size_t batch, auto run_h, auto run_b) {
            std::unique_ptr<Hakmem> h(new Hakmem(Cap));
            std::unique_ptr<B> b(new B(Cap));
            run_h(*h);
            run_b(*b);
            for (const char *impl : {"hakmem", "boost"})
                std::printf("spsc mode=%s batch=%zu cap=%zu impl=%s items=%zu\n", mode, batch, Cap,
                            impl, count_items);
        };
        if (item) one("count_item", 1, count_item<Hakmem>, count_item<B>);
        if (bulk)
            for (std::size_t batch : batches)
                if ((!cfg.only_batch || cfg.only_batch == batch) && batch <= Cap)
                    one(
                        "count_bulk", batch, [&](Hakmem &c) { count_bulk(c, batch); },
                        [&](B &c) { count_bulk(c, batch); });
        return;
    }
    // Reps alternate between the two implementations so slow drift on a busy machine hits both.
    auto measure = [&](const char *mode, std::size_t batch, auto fh, auto fb) {
        std::vector<double> h, b;
        for (int r = 0; r < cfg.reps; r++) {
            h.push_back(fh());
            b.push_back(fb());
        }
        std::printf("spsc mode=%s batch=%zu cap=%zu impl=hakmem mitems_per_s=%.1f cv=%.3f\n", mode,
                    batch, Cap, median(h), cv(h));
        std::printf("spsc mode=%s batch=%zu cap=%zu impl=boost mitems_per_s=%.1f cv=%.3f\n", mode,
                    batch, Cap, median(b), cv(b));
        std::fflush(stdout);
        rows.push_back({mode, batch, Cap, median(h), median(b), 0, 0, paired_ratio(h, b)});
    };
    if (ping) {
        std::vector<double> h50, h99, b50, b99;
        for (int r = 0; r < cfg.reps; r++) {
            Latency h = pingpong<Hakmem>(Cap, cfg), b = pingpong<B>(Cap, cfg);
            h50.push_back(h.p50), h99.push_back(h.p99), b50.push_back(b.p50), b99.push_back(b.p99);
        }
        std::printf("spsc mode=pingpong cap=%zu impl=hakmem p50_ns=%.0f p99_ns=%.0f\n", Cap,
                    median(h50), median(h99));
        std::printf("spsc mode=pingpong cap=%zu impl=boost p50_ns=%.0f p99_ns=%.0f\n", Cap,
                    median(b50), median(b99));
        std::fflush(stdout);
        rows.push_back({"pingpong", 1, Cap, median(h50), median(b50), median(h99), median(b99),
                        paired_ratio(b50, h50)});
    }
    if (item)
        measure(
            "item", 1, [&] { return throughput_item<Hakmem>(Cap, cfg); },
            [&] { return throughput_item<B>(Cap, cfg); });
    if (bulk)
        for (std::size_t batch : batches)
            if (!cfg.only_batch || cfg.only_batch == batch)
                measure(
                    "bulk", batch, [&] { return throughput_bulk<Hakmem>(Cap, batch, cfg); },
                    [&] { return throughput_bulk<B>(Cap, batch, cfg); });
}

void usage(const char *argv0) {
    std::printf(
        "usage: %s [--quick] [--reps N] [--ms MS] [--mode all|item|bulk|pingpong|count]\n"
        "          [--cap 64|256|1024|4096] [--batch 1|8|32|128|256]\n"
        "Compares include/hakmem_spsc.h with boost::lockfree::spsc_queue<void*> (compile-time\n"
        "capacity) on two threads pinned to different CPUs.\n"
        "  item      send/try_recv vs push/pop, one item at a time\n"
        "  bulk      write_n+flush/read_n vs push(ptr,n)/pop(ptr,n), batches 1,8,32,128,256\n"
        "  pingpong  round trip over two channels, p50 and p99 in ns\n"
        "  count     item and bulk loops in one thread, untimed, for instruction counts:\n"
        "            run under valgrind --tool=callgrind and divide the inclusive cost of\n"
        "            count_item<...>/count_bulk<...> by the items printed (bulk: batch <= cap)\n"
        "Capacities 64, 256, 1024, 4096. Each figure is the median of --reps runs (default 5)\n"
        "of --ms milliseconds each (default 200); --quick is 3 reps of 40 ms and fewer round\n"
        "trips. Prints one 'spsc ...' line per measurement, then a Markdown table of the\n"
        "medians and the median of the per-rep hakmem/boost ratios (each rep runs both back\n"
        "to back; for pingpong, boost/hakmem of p50: above 1 means hakmem is faster).\n",
        argv0);
}

} // namespace

int main(int argc, char **argv) {
    Config cfg;
    std::string mode = "all";
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            usage(argv[0]);
            return 0;
        } else if (a == "--quick") {
            cfg.run_ms = 40;
            cfg.reps = 3;
            cfg.pingpong_rounds = 50000;
        } else if (a == "--reps" && i + 1 < argc) {
            cfg.reps = std::max(1, std::atoi(argv[++i]));
        } else if (a == "--ms" && i + 1 < argc) {
            cfg.run_ms = std::max(1.0, std::atof(argv[++i]));
        } else if (a == "--cap" && i + 1 < argc) {
            cfg.only_cap = std::strtoul(argv[++i], nullptr, 10);
        } else if (a == "--batch" && i + 1 < argc) {
            cfg.only_batch = std::strtoul(argv[++i], nullptr, 10);
        } else if (a == "--mode" && i + 1 < argc) {
            mode = argv[++i];
        } else {
            usage(argv[0]);
            return 2;
        }
    }
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &set)) g_cpus.push_back(c);
    if (std::FILE *f = std::fopen("/proc/loadavg", "r")) {
        // Other work on the two CPUs shows up directly in these figures; say how much there was.
        char line[128] = "";
        if (std::fgets(line, sizeof line, f)) std::printf("# loadavg at start: %s", line);
        std::fclose(f);
    }
    if (g_cpus.size() < 2)
        std::fprintf(stderr, "spsc_bench: fewer than two CPUs available; threads not pinned\n");
    else
        std::printf("# producer on CPU %d, consumer on CPU %d; reps=%d run_ms=%.0f\n", g_cpus[0],
                    g_cpus[1], cfg.reps, cfg.run_ms);

    bool all = mode == "all", count = mode == "count";
    bool item = all || count || mode == "item", bulk = all || count || mode == "bulk",
         ping = all || mode == "pingpong";
    if (!item && !bulk && !ping) {
        usage(argv[0]);
        return 2;
    }
    const std::vector<std::size_t> batches = {1, 8, 32, 128, 256};
    std::vector<Row> rows;
    run_capacity<64>(cfg, rows, batches, item, bulk, ping, count);
    run_capacity<256>(cfg, rows, batches, item, bulk, ping, count);
    run_capacity<1024>(cfg, rows, batches, item, bulk, ping, count);
    run_capacity<4096>(cfg, rows, batches, item, bulk, ping, count);
    if (count) return 0;

    std::printf(
        "\n| mode | batch | cap | hakmem | boost | ratio |\n|---|---:|---:|---:|---:|---:|\n");
    for (const Row &r : rows) {
        if (r.mode == "pingpong")
            std::printf("| pingpong p50 (p99) ns | 1 | %zu | %.0f (%.0f) | %.0f (%.0f) | %.2f |\n",
                        r.cap, r.hakmem, r.hakmem_p99, r.boost, r.boost_p99, r.ratio);
        else
            std::printf("| %s Mitems/s | %zu | %zu | %.1f | %.1f | %.2f |\n", r.mode.c_str(),
                        r.batch, r.cap, r.hakmem, r.boost, r.ratio);
    }
    return 0;
}
