// hwgen board bridge: the simulated board's UART pins on a pseudo-terminal, for Verilator.
//
// The whole board top (hwgen_board, its PLL bypassed: see hwgen/shell/top.py) runs as a Verilated
// model (class Vtop, ports clk_in, btn_n, uart_rx, uart_tx, led).  This program opens a pseudo-terminal,
// writes the name of its slave side (/dev/pts/N) to a file and moves bytes between the pty and the pins
// at the bit level: a byte a host program writes to the pty (pyserial opening /dev/pts/N, exactly as it
// opens /dev/ttyUSB0) is sent into uart_rx as an 8N1 frame, `divisor` clock cycles per bit, bytes back
// to back; uart_tx is sampled in each bit's middle by a receiver like the FT231X's, and each byte it reads
// is written to the pty.  Nothing in between knows the protocol: the host driver talks to the real UART,
// the real protocol engine and the real core.
//
// Faults are injected on the line, by position in each direction's byte count:
//   corrupt_in K   XOR 0x10 into the K-th byte the host sent (0-based)     drop_in K    never send it
//   corrupt_out K  the same for the K-th byte the board sent               drop_out K   never deliver it
// (keys may repeat).  It runs until SIGTERM/SIGINT (or max_cycles), then writes the results JSON:
// cycles, bytes each way, the faults applied, the packets seen on each pin with the cycles their first
// and last bytes started and ended (their type: the byte after the opening FLAG), and the LEDs.
//
// Config file (argv[1]), lines "key value": divisor, pty_name (file to write the slave's name to),
// results, max_cycles (0: none), reset_cycles, and the fault keys above.

#include "Vtop.h"
#include "verilated.h"

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <memory>
#include <poll.h>
#include <set>
#include <sstream>
#include <string>
#include <termios.h>
#include <unistd.h>
#include <vector>

namespace {

volatile std::sig_atomic_t stop_requested = 0;
void on_signal(int) { stop_requested = 1; }

[[noreturn]] void die(const std::string& msg) {
    std::fprintf(stderr, "tb_uart_pty: %s\n", msg.c_str());
    std::exit(3);
}

struct Config {
    std::multimap<std::string, std::string> kv;
    explicit Config(const char* path) {
        std::ifstream f(path);
        if (!f) die(std::string("cannot read the config ") + path);
        std::string line;
        while (std::getline(f, line)) {
            std::istringstream in(line);
            std::string k, v;
            if (in >> k) {
                std::getline(in >> std::ws, v);
                kv.emplace(k, v);
            }
        }
    }
    bool has(const std::string& k) const { return kv.count(k) > 0; }
    std::string str(const std::string& k) const {
        auto it = kv.find(k);
        if (it == kv.end()) die("config key " + k + " missing");
        return it->second;
    }
    long integer(const std::string& k, long dflt) const { return has(k) ? std::stol(str(k)) : dflt; }
    std::set<long> all(const std::string& k) const {
        std::set<long> out;
        auto r = kv.equal_range(k);
        for (auto it = r.first; it != r.second; ++it) out.insert(std::stol(it->second));
        return out;
    }
};

const uint8_t FLAG = 0x7E;

// the packets one direction's bytes make: each (type, cycle its opening FLAG began, cycle its closing FLAG ended)
struct PacketLog {
    struct Packet { int type; uint64_t start, end; };
    std::vector<Packet> packets;
    bool open = false, have_type = false;
    int type = -1;
    uint64_t start = 0;
    void byte(uint8_t b, uint64_t began, uint64_t ended) {
        if (b == FLAG) {
            if (open && have_type) packets.push_back({type, start, ended});
            open = true;
            have_type = false;
            start = began;
        } else if (open && !have_type) {
            type = b;               // types never need stuffing (0x01, 0x02, 0x81..0x83)
            have_type = true;
        }
    }
    std::string json() const {
        std::ostringstream o;
        o << "[";
        for (size_t i = 0; i < packets.size(); i++)
            o << (i ? ", " : "") << "[" << packets[i].type << ", " << packets[i].start << ", " << packets[i].end << "]";
        o << "]";
        return o.str();
    }
};

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) die("usage: tb_uart_pty CONFIG");
    Config cfg(argv[1]);
    const long divisor = cfg.integer("divisor", 0);
    if (divisor < 4) die("divisor must be at least 4");
    const uint64_t max_cycles = (uint64_t)cfg.integer("max_cycles", 0);
    const long reset_cycles = cfg.integer("reset_cycles", 8);
    const std::set<long> corrupt_in = cfg.all("corrupt_in"), drop_in = cfg.all("drop_in");
    const std::set<long> corrupt_out = cfg.all("corrupt_out"), drop_out = cfg.all("drop_out");

    std::signal(SIGTERM, on_signal);
    std::signal(SIGINT, on_signal);

    // the pseudo-terminal: master here; the slave stays open here too, so that a host closing and
    // reopening it never leaves the master without a peer
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) die(std::string("no pty: ") + std::strerror(errno));
    const char* slave_name = ptsname(master);
    if (!slave_name) die("ptsname failed");
    int slave = open(slave_name, O_RDWR | O_NOCTTY);
    if (slave < 0) die(std::string("cannot open ") + slave_name);
    termios t;
    tcgetattr(slave, &t);
    cfmakeraw(&t);
    tcsetattr(slave, TCSANOW, &t);
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
    {
        const std::string path = cfg.str("pty_name"), tmp = path + ".tmp";
        std::ofstream f(tmp);
        f << slave_name << "\n";
        f.close();
        if (std::rename(tmp.c_str(), path.c_str()) != 0) die("cannot write " + path);
    }

    auto ctx = std::make_unique<VerilatedContext>();
    auto top = std::make_unique<Vtop>(ctx.get());
    top->clk_in = 0;
    top->btn_n = 0;             // the reset button held for the first cycles
    top->uart_rx = 1;
    top->eval();

    std::deque<uint8_t> to_board;            // bytes read from the pty, not yet on the line
    std::vector<uint8_t> to_host;            // bytes read off the line, not yet written to the pty
    long n_in = 0, n_out = 0, applied_in = 0, applied_out = 0, dropped_in = 0, dropped_out = 0;
    PacketLog log_in, log_out;

    // host -> board: the transmitter's state
    int tx_bits = 0;                          // bits left of the frame being sent (0: idle)
    uint16_t tx_shift = 0;
    long tx_count = 0;
    uint64_t tx_began = 0;
    uint8_t tx_byte = 0;
    // board -> host: the receiver's state
    int rx_state = 0;                         // 0 idle, 1 start (to the middle), 2 data+stop bits
    long rx_count = 0;
    int rx_bit = 0;
    uint8_t rx_data = 0, prev_level = 1;
    uint64_t rx_began = 0;
    long framing_errors = 0;

    uint64_t cycle = 0, last_activity = 0;
    uint8_t buf[4096];
    while (!stop_requested && (!max_cycles || cycle < max_cycles)) {
        // the pty, every 64 cycles: the host's new bytes, the board's bytes so far
        if ((cycle & 63) == 0) {
            if (to_board.size() < 64) {
                ssize_t n = read(master, buf, sizeof buf);
                for (ssize_t i = 0; i < n; i++) {
                    long k = n_in++;
                    if (drop_in.count(k)) { dropped_in++; continue; }
                    to_board.push_back(corrupt_in.count(k) ? (uint8_t)(buf[i] ^ 0x10) : buf[i]);
                    if (corrupt_in.count(k)) applied_in++;
                }
                if (n > 0) last_activity = cycle;
            }
            if (!to_host.empty()) {
                ssize_t n = write(master, to_host.data(), to_host.size());
                if (n > 0) to_host.erase(to_host.begin(), to_host.begin() + n);
            }
            // nothing moving for ~100 frames' time: the host is thinking; wait for it a little
            if (to_board.empty() && tx_bits == 0 && rx_state == 0 && to_host.empty() &&
                cycle - last_activity > (uint64_t)divisor * 10 * 2000) {
                pollfd p{master, POLLIN, 0};
                poll(&p, 1, 1);
            }
        }
        if (reset_cycles && (long)cycle == reset_cycles) top->btn_n = 1;

        // host -> board: the line level for this cycle
        if (tx_bits == 0 && !to_board.empty()) {
            tx_byte = to_board.front();
            to_board.pop_front();
            tx_shift = (uint16_t)((1u << 9) | ((unsigned)tx_byte << 1));     // stop, data, start (LSB first)
            tx_bits = 10;
            tx_count = 0;
            tx_began = cycle;
            last_activity = cycle;
        }
        top->uart_rx = tx_bits ? (tx_shift & 1) : 1;

        top->clk_in = 1;
        top->eval();
        top->clk_in = 0;
        top->eval();

        if (tx_bits && ++tx_count == divisor) {
            tx_count = 0;
            tx_shift >>= 1;
            if (--tx_bits == 0) log_in.byte(tx_byte, tx_began, cycle);
        }

        // board -> host: sample uart_tx as a receiver does, each bit in its middle
        const uint8_t level = top->uart_tx & 1;
        switch (rx_state) {
        case 0:
            if (prev_level && !level) { rx_state = 1; rx_count = 0; rx_began = cycle; last_activity = cycle; }
            break;
        case 1:
            if (++rx_count >= divisor / 2) {
                rx_count = 0;
                if (level) rx_state = 0;                       // a glitch
                else { rx_state = 2; rx_bit = 0; rx_data = 0; }
            }
            break;
        default:
            if (++rx_count >= divisor) {
                rx_count = 0;
                if (rx_bit < 8) {
                    rx_data |= (uint8_t)(level << rx_bit);
                    rx_bit++;
                } else {
                    rx_state = 0;
                    if (!level) { framing_errors++; break; }
                    long k = n_out++;
                    log_out.byte(rx_data, rx_began, cycle);
                    if (drop_out.count(k)) { dropped_out++; break; }
                    if (corrupt_out.count(k)) { rx_data ^= 0x10; applied_out++; }
                    to_host.push_back(rx_data);
                }
            }
        }
        prev_level = level;
        cycle++;
    }
    // deliver what is left, then report
    for (int tries = 0; !to_host.empty() && tries < 100; tries++) {
        ssize_t n = write(master, to_host.data(), to_host.size());
        if (n > 0) to_host.erase(to_host.begin(), to_host.begin() + n);
        else usleep(1000);
    }
    std::ostringstream o;
    o << "{\"cycles\": " << cycle << ", \"divisor\": " << divisor << ", \"bytes_in\": " << n_in
      << ", \"bytes_out\": " << n_out << ", \"corrupted_in\": " << applied_in << ", \"dropped_in\": " << dropped_in
      << ", \"corrupted_out\": " << applied_out << ", \"dropped_out\": " << dropped_out
      << ", \"framing_errors_out\": " << framing_errors << ", \"led\": " << (unsigned long)top->led
      << ", \"packets_in\": " << log_in.json() << ", \"packets_out\": " << log_out.json() << "}\n";
    {
        const std::string path = cfg.str("results"), tmp = path + ".tmp";
        std::ofstream f(tmp);
        f << o.str();
        f.close();
        std::rename(tmp.c_str(), path.c_str());
    }
    top->final();
    close(slave);
    close(master);
    return 0;
}
