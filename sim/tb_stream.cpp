// hwgen compiled stream testbench: the cycle loop of tb_stream.py in C++, for Verilator.
//
// The same checks as the cocotb testbench tb_stream.py, cycle for cycle: after reset the frames run
// back to back (throughput phase: steady-state interval and latency of frame 0), then again under
// seeded random tvalid gaps and tready back-pressure (stress phase: output handshake rules checked),
// every output word compared with the expected word, then 64 cycles watched for extra words.  The
// random patterns are Python's: the Mersenne Twister states of random.Random("<seed>/<phase>/valid")
// and ".../ready" come from the config, and the draws (random(), randint()) are CPython's, so both
// testbenches see the same gaps and stalls on the same cycles and stamp every word with the same cycle.
//
// hwgen.bulk renders nothing here: this file is compiled as it is against the design's Verilated
// model (class Vtop, from `verilator --prefix Vtop`).  It reads one config file, given as argv[1]:
//   lines "key value" (in_words, out_words, frames, in_wpf, out_wpf, out_bits, gap_p, stall_p,
//   max_burst, idle_limit, phases, results, out_file, progress, progress_tag, mt_<phase>_<valid|ready>)
// with the input and expected words in binary files of little-endian uint32 chunks (ceil(bits/32) per
// word).  It writes the results JSON (the cocotb testbench's keys; words as hex strings) and the words
// received in the last phase (same binary layout), and exits 0 whatever the verdict: the caller judges.

#include "Vtop.h"
#include "verilated.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

namespace {

const int RESET_CYCLES = 4;
const int DRAIN_CYCLES = 64;
const size_t MAX_REPORTED = 50;
const double PROGRESS_S = 0.5;

[[noreturn]] void die(const std::string& msg) {
    std::fprintf(stderr, "tb_stream: %s\n", msg.c_str());
    std::exit(3);
}

// ---- CPython's Mersenne Twister (Modules/_randommodule.c) and the draws random.Random makes ----
class PyRandom {
    static const int N = 624, M = 397;
    uint32_t mt[N];
    int index = N;

    uint32_t genrand() {
        if (index >= N) {
            for (int k = 0; k < N; k++) {
                uint32_t y = (mt[k] & 0x80000000U) | (mt[(k + 1) % N] & 0x7fffffffU);
                mt[k] = mt[(k + M) % N] ^ (y >> 1) ^ ((y & 1U) ? 0x9908b0dfU : 0U);
            }
            index = 0;
        }
        uint32_t y = mt[index++];
        y ^= (y >> 11);
        y ^= (y << 7) & 0x9d2c5680U;
        y ^= (y << 15) & 0xefc60000U;
        y ^= (y >> 18);
        return y;
    }

  public:
    // state: the 625 numbers of random.Random(...).getstate()[1] (624 words, then the index)
    explicit PyRandom(const std::vector<uint64_t>& state) {
        if (state.size() != N + 1) die("a Mersenne Twister state needs 625 numbers");
        for (int k = 0; k < N; k++) mt[k] = (uint32_t)state[k];
        index = (int)state[N];
    }
    double random() {  // random.random()
        uint32_t a = genrand() >> 5, b = genrand() >> 6;
        return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
    }
    uint32_t getrandbits(int k) { return genrand() >> (32 - k); }  // 1 <= k <= 32
    long randint(long a, long b) {  // random.randint(a, b): a + _randbelow_with_getrandbits(b - a + 1)
        uint32_t n = (uint32_t)(b - a + 1);
        int k = 0;
        while ((n >> k) != 0 && k < 32) k++;
        uint32_t r = getrandbits(k);
        while (r >= n) r = getrandbits(k);
        return a + (long)r;
    }
};

// tb_stream.Bursts: a seeded on/off pattern of tvalid gaps or tready stalls
class Bursts {
    PyRandom rng;
    long max_burst;
    double prob, prob_long;
    long left = 0;

  public:
    Bursts(double p, long burst, const std::vector<uint64_t>& state)
        : rng(state), max_burst(burst < 1 ? 1 : burst), prob(p), prob_long(2 * p / (double)max_burst) {}
    bool off() {
        if (left) {
            left -= 1;
            return true;
        }
        if (!prob) return false;
        double u = rng.random();
        if (u < prob) {
            left = rng.randint(1, 3) - 1;
            return true;
        }
        if (u < prob + prob_long) {
            left = rng.randint(1, max_burst) - 1;
            return true;
        }
        return false;
    }
};

// ---- ports of any width: integral (CData..QData) or VlWide<N> ----
template <typename T>
struct PortWords {
    static constexpr size_t value = (sizeof(T) + 3) / 4;
};
template <std::size_t N>
struct PortWords<VlWide<N>> {
    static constexpr size_t value = N;
};

template <typename T>
void put(T& port, const uint32_t* w, size_t nw) {
    uint64_t v = w[0];
    if (nw > 1 && sizeof(T) > 4) v |= (uint64_t)w[1] << 32;
    port = (T)v;
}
template <std::size_t N>
void put(VlWide<N>& port, const uint32_t* w, size_t nw) {
    for (size_t j = 0; j < N; j++) port[j] = j < nw ? w[j] : 0;
}
template <typename T>
void get(const T& port, uint32_t* w, size_t nw) {
    uint64_t v = (uint64_t)port;
    for (size_t j = 0; j < nw; j++) w[j] = j < 2 ? (uint32_t)(v >> (32 * j)) : 0;
}
template <std::size_t N>
void get(const VlWide<N>& port, uint32_t* w, size_t nw) {
    for (size_t j = 0; j < nw; j++) w[j] = j < N ? port[j] : 0;
}

std::string hex_digits(const uint32_t* w, size_t nw) {  // Python's f"{word:x}"
    size_t top = nw;
    while (top > 1 && w[top - 1] == 0) top--;
    char buf[16];
    std::snprintf(buf, sizeof buf, "%x", w[top - 1]);
    std::string s = buf;
    for (size_t j = top - 1; j-- > 0;) {
        std::snprintf(buf, sizeof buf, "%08x", w[j]);
        s += buf;
    }
    return s;
}

std::string hex(const uint32_t* w, size_t nw) { return "\"" + hex_digits(w, nw) + "\""; }

std::string json_str(const std::string& s) {
    std::string o = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') o += '\\';
        o += c;
    }
    return o + "\"";
}

std::string join(const std::vector<long>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); i++) {
        if (i) s += ", ";
        s += v[i] < 0 ? "null" : std::to_string(v[i]);
    }
    return s + "]";
}

// ---- config ----
struct Config {
    std::map<std::string, std::string> kv;
    explicit Config(const char* path) {
        std::ifstream f(path);
        if (!f) die(std::string("cannot read the config ") + path);
        std::string line;
        while (std::getline(f, line)) {
            size_t sp = line.find(' ');
            if (sp != std::string::npos) kv[line.substr(0, sp)] = line.substr(sp + 1);
        }
    }
    const std::string& str(const std::string& k) const {
        auto it = kv.find(k);
        if (it == kv.end()) die("config key " + k + " missing");
        return it->second;
    }
    bool has(const std::string& k) const { return kv.count(k) != 0; }
    long integer(const std::string& k) const { return std::stol(str(k)); }
    double number(const std::string& k) const { return std::stod(str(k)); }
    std::vector<uint64_t> numbers(const std::string& k) const {
        std::vector<uint64_t> v;
        std::istringstream in(str(k));
        uint64_t x;
        while (in >> x) v.push_back(x);
        return v;
    }
};

std::vector<uint32_t> read_words(const std::string& path, size_t count) {
    std::vector<uint32_t> v(count);
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) die("cannot read " + path);
    size_t got = std::fread(v.data(), 4, count, f);
    std::fclose(f);
    if (got != count) die(path + ": expected " + std::to_string(count) + " words of 32 bits, found " + std::to_string(got));
    return v;
}

// ---- the testbench ----
class Bench {
  public:
    std::unique_ptr<VerilatedContext> ctx;
    std::unique_ptr<Vtop> top;
    long cycle = -1;  // number of the last rising edge (edge 0: the first)
    int ready = 0;    // what the monitor drives on m_axis_tready (kept across phases, as set_ready does)

    static constexpr size_t IN_NW = PortWords<decltype(Vtop::s_axis_tdata)>::value;
    static constexpr size_t OUT_NW = PortWords<decltype(Vtop::m_axis_tdata)>::value;

    Bench() : ctx(new VerilatedContext), top(new Vtop{ctx.get(), "top"}) {}

    void rise() {  // the rising edge: registers take what was driven during the cycle
        top->clk = 1;
        top->eval();
        cycle++;
    }
    void settle() {  // inputs written after the edge reach the outputs (cocotb's ReadOnly); clk falls
        top->clk = 0;
        top->eval();
    }
    void set_ready(int r) {
        if (r != ready) {
            top->m_axis_tready = r;
            ready = r;
        }
    }
    void idle_input() {
        top->s_axis_tvalid = 0;
        uint32_t zero[IN_NW] = {0};
        put(top->s_axis_tdata, zero, IN_NW);
    }
};

struct Mismatch {
    std::string phase;
    long frame, word, cycle;
    std::vector<uint32_t> got, expected;
};

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) die("usage: tb_stream CONFIG");
    Config cfg(argv[1]);
    const long n_frames = cfg.integer("frames"), in_wpf = cfg.integer("in_wpf"), out_wpf = cfg.integer("out_wpf");
    const size_t in_nw = (size_t)cfg.integer("in_nw"), out_nw = (size_t)cfg.integer("out_nw");
    const long out_bits = cfg.integer("out_bits");
    const double gap_p = cfg.number("gap_p"), stall_p = cfg.number("stall_p");
    const long max_burst = cfg.integer("max_burst"), idle_limit = cfg.integer("idle_limit");
    std::vector<std::string> phases;
    {
        std::istringstream in(cfg.str("phases"));
        std::string p;
        while (in >> p) phases.push_back(p);
    }
    if (in_nw > Bench::IN_NW || out_nw > Bench::OUT_NW)
        die("the words are wider than the model's s_axis_tdata / m_axis_tdata");
    const std::vector<uint32_t> in_words = read_words(cfg.str("in_words"), (size_t)(n_frames * in_wpf) * in_nw);
    const std::vector<uint32_t> exp_words = read_words(cfg.str("out_words"), (size_t)(n_frames * out_wpf) * out_nw);
    std::vector<uint32_t> mask(out_nw, 0);
    for (long b = 0; b < out_bits; b++) mask[b / 32] |= 1U << (b % 32);
    const std::string progress_path = cfg.has("progress") ? cfg.str("progress") : "";
    const std::string progress_tag = cfg.has("progress_tag") ? " " + cfg.str("progress_tag") : "";

    Bench tb;
    // reset: rst high for the first edges and RESET_CYCLES more, then one edge with rst low (tb_stream.reset)
    tb.top->rst = 1;
    tb.idle_input();
    tb.top->m_axis_tready = 0;
    tb.top->clk = 0;
    tb.top->eval();
    for (int k = 0; k < 2 + RESET_CYCLES; k++) {
        tb.rise();
        if (k == 1 + RESET_CYCLES) tb.top->rst = 0;
        tb.settle();
    }
    tb.rise();
    tb.settle();

    long n_mismatches = 0, n_protocol = 0;
    std::vector<Mismatch> mismatches;
    std::vector<std::string> protocol_list;
    std::string error;
    std::ostringstream phase_docs;
    double cpf = -1;
    long latency = -1;
    std::vector<uint32_t> got_words((size_t)(n_frames * out_wpf) * out_nw, 0);
    auto last_progress = std::chrono::steady_clock::now();
    auto progress = [&](const std::string& phase, long done, bool force) {
        if (progress_path.empty()) return;
        auto now = std::chrono::steady_clock::now();
        if (!force && std::chrono::duration<double>(now - last_progress).count() < PROGRESS_S) return;
        if (FILE* f = std::fopen(progress_path.c_str(), "a")) {
            std::fprintf(f, "%s %ld %ld%s\n", phase.c_str(), done, n_frames, progress_tag.c_str());
            std::fclose(f);
        }
        last_progress = now;
    };
    auto protocol = [&](const std::string& msg) {
        n_protocol++;
        if (protocol_list.size() < MAX_REPORTED) protocol_list.push_back("cycle " + std::to_string(tb.cycle) + ": " + msg);
    };

    const long n_in = n_frames * in_wpf, total = n_frames * out_wpf;
    std::vector<uint32_t> word(out_nw);
    bool first_doc = true;
    for (const std::string& phase : phases) {
        const bool stress = phase == "stress";
        std::unique_ptr<Bursts> gaps, stalls;
        if (stress) {
            gaps.reset(new Bursts(gap_p, max_burst, cfg.numbers("mt_" + phase + "_valid")));
            stalls.reset(new Bursts(stall_p, max_burst, cfg.numbers("mt_" + phase + "_ready")));
        }
        const std::string what = phase + " phase";
        progress(phase, 0, true);
        const long t0 = tb.cycle;
        std::vector<long> frame_start(n_frames, -1), last_cycles(n_frames, -1);
        // driver (StreamDriver.send)
        long i = 0;
        int valid = 0;
        bool accepted = false, sent = n_in == 0;
        // monitor (StreamMonitor.receive)
        long got = 0, idle = 0;
        bool pending = false, held = false;
        std::vector<uint32_t> pending_w(out_nw), held_w(out_nw);
        while (got < total) {
            tb.rise();
            if (!sent) {
                if (accepted) {
                    long f = i / in_wpf;
                    if (frame_start[f] < 0) frame_start[f] = tb.cycle;
                    i++;
                }
                if (i == n_in) {
                    if (valid) tb.top->s_axis_tvalid = 0;
                    sent = true;
                } else if (!(valid && !accepted)) {
                    if (gaps && gaps->off()) {
                        if (valid) {
                            tb.top->s_axis_tvalid = 0;
                            valid = 0;
                        }
                    } else {
                        put(tb.top->s_axis_tdata, &in_words[(size_t)i * in_nw], in_nw);
                        if (!valid) {
                            tb.top->s_axis_tvalid = 1;
                            valid = 1;
                        }
                    }
                }
            }
            if (pending) {  // the scoreboard (Scoreboard.__call__) through FrameProgress
                long f = got / out_wpf, w = got % out_wpf;
                uint32_t* dst = &got_words[(size_t)got * out_nw];
                const uint32_t* want = &exp_words[(size_t)got * out_nw];
                bool bad = false;
                for (size_t j = 0; j < out_nw; j++) {
                    dst[j] = pending_w[j];
                    bad |= (pending_w[j] & mask[j]) != want[j];
                }
                if (w == out_wpf - 1) last_cycles[f] = tb.cycle;
                if (bad) {
                    n_mismatches++;
                    if (mismatches.size() < MAX_REPORTED)
                        mismatches.push_back({phase, f, w, tb.cycle, pending_w, std::vector<uint32_t>(want, want + out_nw)});
                }
                got++;
                idle = 0;
                pending = false;
                if (w == out_wpf - 1) progress(phase, f + 1, false);
                if (got == total) {
                    if (!sent) tb.idle_input();  // the driver is cancelled (tb_stream: send.cancel(); driver.idle())
                    tb.settle();
                    break;
                }
            } else {
                idle++;
                if (idle > idle_limit) {
                    error = what + ": no output word for " + std::to_string(idle_limit) + " cycles while waiting for frame " +
                            std::to_string(got / out_wpf) + " word " + std::to_string(got % out_wpf) + " of " +
                            std::to_string(out_wpf) + " (received " + std::to_string(got) + " of " + std::to_string(total) +
                            " words); the design deadlocked or is far slower than expected";
                    if (!sent) tb.idle_input();
                    tb.settle();
                    break;
                }
            }
            tb.set_ready((stalls && stalls->off()) ? 0 : 1);
            tb.settle();
            if (!sent) accepted = valid && tb.top->s_axis_tready;
            const bool ovalid = tb.top->m_axis_tvalid;
            if (held) {
                if (!ovalid) {
                    protocol(what + ": m_axis_tvalid dropped before word " + std::to_string(got) + " was accepted");
                } else {
                    get(tb.top->m_axis_tdata, word.data(), out_nw);
                    if (word != held_w) protocol(what + ": m_axis_tdata changed from 0x" + hex_digits(held_w.data(), out_nw) + " to 0x" +
                                                 hex_digits(word.data(), out_nw) + " while stalled");
                }
                held = false;
            }
            if (ovalid) {
                if (tb.ready) {
                    get(tb.top->m_axis_tdata, pending_w.data(), out_nw);
                    pending = true;
                } else if (stalls) {
                    get(tb.top->m_axis_tdata, held_w.data(), out_nw);
                    held = true;
                }
            }
        }
        progress(phase, got / (out_wpf ? out_wpf : 1), true);
        phase_docs << (first_doc ? "" : ", ") << json_str(phase) << ": {\"in_first_cycles\": " << join(frame_start)
                   << ", \"last_cycles\": " << join(last_cycles) << ", \"words_sent\": " << i << ", \"words_received\": " << got
                   << ", \"cycles\": " << (tb.cycle - t0) << "}";
        first_doc = false;
        if (!error.empty()) break;
        if (phase == "throughput") {  // tb_stream.throughput
            if (n_frames && last_cycles[0] >= 0 && frame_start[0] >= 0) latency = last_cycles[0] - frame_start[0];
            bool all = n_frames >= 2;
            for (long c : last_cycles) all = all && c >= 0;
            if (all) {
                long k = n_frames / 2;
                cpf = (double)(last_cycles[n_frames - 1] - last_cycles[k - 1]) / (double)(n_frames - k);
            }
        }
    }
    if (error.empty()) {  // StreamMonitor.drain
        tb.set_ready(1);
        tb.settle();
        long extra = 0;
        for (int k = 0; k < DRAIN_CYCLES; k++) {
            tb.rise();
            tb.settle();
            if (tb.top->m_axis_tvalid) extra++;
        }
        if (extra)
            error = "the design produced " + std::to_string(extra) + " more output word(s) than expected after the last frame";
    }
    tb.top->final();

    // the received words of the last phase run, then the results
    const std::string out_file = cfg.str("out_file");
    if (FILE* f = std::fopen(out_file.c_str(), "wb")) {
        std::fwrite(got_words.data(), 4, got_words.size(), f);
        std::fclose(f);
    } else {
        die("cannot write " + out_file);
    }
    std::ostringstream doc;
    char cpf_s[64];
    std::snprintf(cpf_s, sizeof cpf_s, "%.17g", cpf);
    doc << "{\"phases\": {" << phase_docs.str() << "}, \"error\": " << (error.empty() ? "null" : json_str(error))
        << ", \"cycles_per_frame\": " << (cpf < 0 ? "null" : cpf_s)
        << ", \"latency_cycles\": " << (latency < 0 ? "null" : std::to_string(latency)) << ", \"mismatches\": " << n_mismatches
        << ", \"mismatch_list\": [";
    for (size_t k = 0; k < mismatches.size(); k++) {
        const Mismatch& m = mismatches[k];
        doc << (k ? ", " : "") << "{\"phase\": " << json_str(m.phase) << ", \"frame\": " << m.frame << ", \"word\": " << m.word
            << ", \"got\": " << hex(m.got.data(), out_nw) << ", \"expected\": " << hex(m.expected.data(), out_nw)
            << ", \"cycle\": " << m.cycle << "}";
    }
    doc << "], \"protocol_errors\": " << n_protocol << ", \"protocol_list\": [";
    for (size_t k = 0; k < protocol_list.size(); k++) doc << (k ? ", " : "") << json_str(protocol_list[k]);
    doc << "], \"cycles\": " << tb.cycle << "}\n";
    const std::string results = cfg.str("results"), tmp = results + ".tmp";
    {
        std::ofstream f(tmp);
        f << doc.str();
        if (!f) die("cannot write " + tmp);
    }
    if (std::rename(tmp.c_str(), results.c_str()) != 0) die("cannot write " + results);
    return 0;
}
