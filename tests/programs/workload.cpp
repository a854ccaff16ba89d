// A C++ program for tests/programs/compare.sh: the C++ runtime's own allocations come first
// (libstdc++'s exception pool, from its constructor, before the preloaded allocator's), then
// strings, containers, shared pointers, exceptions and threads. Its output is deterministic:
// the same on every allocator.
#include <cstdint>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

static uint64_t mix(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// A word count over generated text: strings of every length, a map and a hash map.
static uint64_t words(uint64_t seed, int n) {
    std::ostringstream text;
    for (int i = 0; i < n; i++) text << std::string(1 + mix(seed + i) % 40, char('a' + i % 26)) << ' ';
    std::istringstream in(text.str());
    std::map<std::string, int> ordered;
    std::unordered_map<std::string, int> hashed;
    for (std::string w; in >> w;) {
        ordered[w]++;
        hashed[w]++;
    }
    uint64_t h = ordered.size() * 1000003 + hashed.size();
    for (const auto &kv : ordered) h = mix(h ^ kv.first.size() ^ uint64_t(kv.second) << 32);
    return h;
}

struct Node {
    std::vector<std::shared_ptr<Node>> kids;
    std::string name;
};

// A tree of shared pointers, built and dropped; blocks from 32 B to a few KiB.
static uint64_t tree(uint64_t seed, int depth) {
    auto n = std::make_shared<Node>();
    n->name = std::string(mix(seed) % 3000, 'x');
    if (depth > 0)
        for (int i = 0; i < 3; i++) n->kids.push_back(std::make_shared<Node>(Node{{}, "k"}));
    uint64_t h = n->name.size();
    for (auto &k : n->kids) h += tree(mix(seed + h), depth - 1) + k->name.size();
    return h;
}

// Exceptions carry heap-allocated messages and are allocated by the runtime.
static int throws(int n) {
    int caught = 0;
    for (int i = 0; i < n; i++) try {
            if (i % 3 == 0) throw std::runtime_error(std::string(100 + i % 500, 'e'));
            if (i % 3 == 1) throw std::vector<int>(i % 4000);
            throw i;
        } catch (const std::runtime_error &e) {
            caught += int(e.what()[0] == 'e');
        } catch (const std::vector<int> &v) {
            caught += int(v.size() == size_t(i % 4000));
        } catch (int) {
            caught++;
        }
    return caught;
}

int main() {
    std::cout << "words " << words(1, 20000) << '\n';
    std::cout << "tree " << tree(2, 6) << '\n';
    std::cout << "throws " << throws(30000) << '\n';
    // Buffers of 1 KiB to 4 MiB grown and moved, across every tier.
    std::vector<std::vector<char>> bufs;
    for (int i = 0; i < 200; i++) bufs.emplace_back(size_t(1024) << (i % 13), char(i));
    uint64_t sum = 0;
    for (auto &b : bufs) sum += b.size() + uint64_t(b.back());
    std::cout << "buffers " << sum << '\n';
    // Threads whose results (and blocks) come back to the main thread.
    std::vector<std::future<std::vector<std::string>>> jobs;
    for (int t = 0; t < 4; t++)
        jobs.push_back(std::async(std::launch::async, [t] {
            std::vector<std::string> out;
            for (int i = 0; i < 50000; i++) out.push_back(std::to_string(mix(t * 100000 + i)));
            return out;
        }));
    uint64_t h = 0;
    for (auto &j : jobs)
        for (auto &s : j.get()) h = mix(h ^ s.size() ^ uint64_t(s[0]));
    std::cout << "threads " << h << '\n';
    return 0;
}
