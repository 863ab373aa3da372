"""Generic cocotb testbench for a hwgen accelerator top (``hwgen_top``).

The DUT has one AXI4-Stream input (``s_axis_tdata/tvalid/tready``), one
AXI4-Stream output (``m_axis_*``), ``clk`` and an active-high synchronous
``rst`` (ARCHITECTURE §3).  Everything model-specific comes from a JSON file
whose path is in the environment variable ``HWGEN_TB_CONFIG``::

    {"in_frames":  [[word, ...], ...],     # input words per frame (ints)
     "out_frames": [[word, ...], ...],     # expected output words per frame
     "out_mask": int,                      # bits of an output word that carry lanes
     "seed": 0, "valid_gap_prob": 0.3, "ready_stall_prob": 0.3,
     "max_burst": 16,                      # longest tvalid gap / tready stall (cycles)
     "idle_limit": 2000,                   # cycles without an output word = deadlock
     "phases": ["throughput", "stress"],
     "results": "/path/to/results.json",
     "progress": "/path/to/progress.txt"}   # optional: frames done, for the waiting process

After reset the same frames run twice:

* **throughput** — back to back, ``tvalid`` high whenever a word is available
  and ``tready`` always 1: measures the steady-state interval between frames
  and the latency of frame 0;
* **stress** — random ``tvalid`` gaps and random ``tready`` back-pressure
  (seeded; mostly short, sometimes long bursts), checking the output
  handshake rules as well.

Every output word of both phases is compared with the expected word.  The
results JSON holds the words received, their cycle stamps, the mismatches and
any error (e.g. a deadlock), and is written before the test passes or fails.

With ``progress`` set, a line ``<phase> <frames done> <frames>`` is appended to
that file as output frames complete (at most every half second, and at the end of
each phase), for the process that waits on the simulation to show (it changes
nothing the test checks).

Driver, monitor and scoreboard are separate small classes; the test only
wires them.  Each side runs one coroutine doing one ``RisingEdge`` and one
``ReadOnly`` per cycle, so thousands of frames simulate quickly.
"""

import json
import os
import random
import time

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

CONFIG_ENV = "HWGEN_TB_CONFIG"
CLOCK_PERIOD_NS = 10
RESET_CYCLES = 4
DRAIN_CYCLES = 64            # cycles watched after the last phase for extra words
MAX_REPORTED = 50            # mismatches / protocol errors listed in the results
PROGRESS_S = 0.5             # least seconds between two lines of the progress file


class Bursts:
    """Seeded on/off pattern for ``tvalid`` gaps or ``tready`` stalls.

    Each cycle not already in a gap starts a short gap (1–3 cycles) with
    probability ``prob``, or a long one (up to ``max_burst`` cycles, long
    enough to fill the design's buffers) with probability ``2·prob/max_burst``.
    With ``prob`` = 0.3 a little over half of the cycles are gaps."""

    def __init__(self, prob, max_burst, rng):
        self.max_burst = max(1, int(max_burst))
        self.prob, self.prob_long, self.rng = prob, 2 * prob / self.max_burst, rng
        self.left = 0

    def off(self):
        """True when this cycle is a gap."""
        if self.left:
            self.left -= 1
            return True
        if not self.prob:
            return False
        u = self.rng.random()
        if u < self.prob:
            self.left = self.rng.randint(1, 3) - 1
            return True
        if u < self.prob + self.prob_long:
            self.left = self.rng.randint(1, self.max_burst) - 1
            return True
        return False


class CycleClock:
    """Cycle numbers from simulation time (edges are exactly one period apart)."""

    def __init__(self, clk):
        self.clk = clk
        self.origin = 0
        self.period = 1

    async def start(self):
        Clock(self.clk, CLOCK_PERIOD_NS, unit="ns").start()
        edge = RisingEdge(self.clk)
        await edge
        t0 = get_sim_time()
        await edge
        self.period = get_sim_time() - t0
        self.origin = t0

    def now(self):
        """Number of the rising edge at the current time."""
        return (get_sim_time() - self.origin) // self.period


class StreamDriver:
    """Drives frames of words on ``s_axis``, optionally with random ``tvalid`` gaps.

    Records the cycle at which the first word of each frame was accepted."""

    def __init__(self, dut, cycles):
        self.clk = dut.clk
        self.tdata, self.tvalid, self.tready = dut.s_axis_tdata, dut.s_axis_tvalid, dut.s_axis_tready
        self.cycles = cycles
        self.frame_start_cycles = []
        self.words_sent = 0

    def idle(self):
        self.tvalid.value = 0
        self.tdata.value = 0

    async def send(self, frames, gaps=None):
        edge, ro = RisingEdge(self.clk), ReadOnly()
        words = [(f, w) for f, fr in enumerate(frames) for w in fr]
        n = len(words)
        self.frame_start_cycles = [None] * len(frames)
        self.words_sent = 0
        i = 0
        valid = 0            # what we drive in the current cycle
        accepted = False     # handshake seen in the current cycle: transfer at the next edge
        while True:
            await edge
            if accepted:
                f, _ = words[i]
                if self.frame_start_cycles[f] is None:
                    self.frame_start_cycles[f] = self.cycles.now()
                i += 1
                self.words_sent = i
            if i == n:
                if valid:
                    self.tvalid.value = 0
                return
            if not (valid and not accepted):          # free to choose: not holding a word
                if gaps is not None and gaps.off():
                    if valid:
                        self.tvalid.value = 0
                        valid = 0
                else:
                    self.tdata.value = words[i][1]
                    if not valid:
                        self.tvalid.value = 1
                        valid = 1
            await ro
            accepted = bool(valid) and self.tready.value == 1


class StreamMonitor:
    """Samples ``m_axis`` words under optional random ``tready`` back-pressure.

    Calls ``callback(frame, word_index, word, cycle)`` for every word accepted,
    checks that a stalled word stays valid and stable, and gives up with
    :attr:`error` set after ``idle_limit`` cycles without a word."""

    def __init__(self, dut, cycles, callback):
        self.clk = dut.clk
        self.tdata, self.tvalid, self.tready = dut.m_axis_tdata, dut.m_axis_tvalid, dut.m_axis_tready
        self.cycles = cycles
        self.callback = callback
        self.protocol_errors = []
        self.n_protocol_errors = 0
        self.error = None
        self.ready = 0

    def set_ready(self, r):
        if r != self.ready:
            self.tready.value = r
            self.ready = r

    def _protocol(self, msg):
        self.n_protocol_errors += 1
        if len(self.protocol_errors) < MAX_REPORTED:
            self.protocol_errors.append(f"cycle {self.cycles.now()}: {msg}")

    def _read_data(self):
        try:
            return self.tdata.value.to_unsigned()
        except ValueError:               # X/Z bits (Icarus)
            return -1

    async def receive(self, n_frames, words_per_frame, stalls=None, idle_limit=10000, what=""):
        edge, ro = RisingEdge(self.clk), ReadOnly()
        total, got, idle = n_frames * words_per_frame, 0, 0
        pending = None       # word seen with valid & ready: transfers at the next edge
        held = None          # word seen with valid & ~ready: must stay until taken
        while got < total:
            await edge
            if pending is not None:
                self.callback(got // words_per_frame, got % words_per_frame, pending, self.cycles.now())
                got += 1
                idle = 0
                pending = None
                if got == total:
                    break
            else:
                idle += 1
                if idle > idle_limit:
                    self.error = (f"{what}: no output word for {idle_limit} cycles while waiting for frame "
                                  f"{got // words_per_frame} word {got % words_per_frame} of {words_per_frame} "
                                  f"(received {got} of {total} words); the design deadlocked or is far slower than expected")
                    return got
            self.set_ready(0 if (stalls is not None and stalls.off()) else 1)
            await ro
            valid = self.tvalid.value == 1
            if held is not None:
                if not valid:
                    self._protocol(f"{what}: m_axis_tvalid dropped before word {got} was accepted")
                else:
                    data = self._read_data()
                    if data != held:
                        self._protocol(f"{what}: m_axis_tdata changed from {held:#x} to {data:#x} while stalled")
                held = None
            if valid:
                if self.ready:
                    pending = self._read_data()
                elif stalls is not None:
                    held = self._read_data()
        return got

    async def drain(self, cycles):
        """Watch ``cycles`` more cycles with tready high; return extra words seen."""
        edge, ro = RisingEdge(self.clk), ReadOnly()
        self.set_ready(1)
        extra = 0
        for _ in range(cycles):
            await edge
            await ro
            if self.tvalid.value == 1:
                extra += 1
        return extra


class Scoreboard:
    """Compares each received word with the expected word of its frame."""

    def __init__(self, expected, mask, log):
        self.expected = expected
        self.mask = mask
        self.log = log
        self.phase = ""
        self.words = {}
        self.stamps = {}
        self.mismatches = []
        self.n_mismatches = 0

    def start(self, phase):
        self.phase = phase
        self.words[phase] = [[None] * len(fr) for fr in self.expected]
        self.stamps[phase] = [[None] * len(fr) for fr in self.expected]

    def __call__(self, frame, index, word, cycle):
        self.words[self.phase][frame][index] = word
        self.stamps[self.phase][frame][index] = cycle
        want = self.expected[frame][index]
        if word < 0 or (word & self.mask) != want:
            self.n_mismatches += 1
            if len(self.mismatches) < MAX_REPORTED:
                self.mismatches.append({"phase": self.phase, "frame": frame, "word": index,
                                        "got": word, "expected": want, "cycle": cycle})
            if self.n_mismatches <= 5:
                got = "X" if word < 0 else f"{word & self.mask:#x}"
                self.log.error("%s: frame %d word %d: got %s, expected %#x (cycle %d)",
                               self.phase, frame, index, got, want, cycle)


class FrameProgress:
    """Sits between the monitor and the scoreboard: passes every word on and appends
    ``<phase> <frames done> <frames>`` lines to the progress file ``path`` (None: no file)."""

    def __init__(self, path, inner, n_frames, words_per_frame):
        self.path, self.inner = path, inner
        self.n_frames, self.wpf = n_frames, max(1, words_per_frame)
        self.phase, self.done, self.last = "", 0, 0.0

    def _write(self):
        if self.path:
            with open(self.path, "a") as f:
                f.write(f"{self.phase} {self.done} {self.n_frames}\n")
            self.last = time.monotonic()

    def start(self, phase):
        self.phase, self.done = phase, 0
        self._write()

    def finish(self):
        self._write()

    def __call__(self, frame, index, word, cycle):
        self.inner(frame, index, word, cycle)
        if index == self.wpf - 1:
            self.done = frame + 1
            if self.path and time.monotonic() - self.last >= PROGRESS_S:
                self._write()


def throughput(last_word_cycles, first_input_cycle):
    """(cycles per frame, latency) from one back-to-back run.

    The interval is the mean difference between consecutive frames' last
    output words over the second half of the frames; the latency runs from
    frame 0's first accepted input word to its last output word."""
    n = len(last_word_cycles)
    latency = None
    if n and last_word_cycles[0] is not None and first_input_cycle is not None:
        latency = last_word_cycles[0] - first_input_cycle
    if n < 2 or any(c is None for c in last_word_cycles):
        return None, latency
    k = n // 2                       # differences i = k .. n-1 (at least one)
    return (last_word_cycles[n - 1] - last_word_cycles[k - 1]) / (n - k), latency


def load_config():
    path = os.environ.get(CONFIG_ENV)
    if not path:
        raise RuntimeError(f"environment variable {CONFIG_ENV} must name the testbench's JSON input file")
    with open(path) as f:
        return json.load(f)


def write_results(path, doc):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, path)


async def reset(dut, driver, monitor):
    dut.rst.value = 1
    driver.idle()
    monitor.set_ready(0)
    dut.m_axis_tready.value = 0
    await ClockCycles(dut.clk, RESET_CYCLES)
    dut.rst.value = 0
    await RisingEdge(dut.clk)


@cocotb.test()
async def stream_frames(dut):
    """Throughput phase then stress phase; every output word is checked."""
    cfg = load_config()
    log = dut._log
    in_frames, out_frames = cfg["in_frames"], cfg["out_frames"]
    n_frames = len(in_frames)
    out_wpf = len(out_frames[0]) if out_frames else 0
    seed = int(cfg.get("seed", 0))
    gap_p, stall_p = float(cfg.get("valid_gap_prob", 0.3)), float(cfg.get("ready_stall_prob", 0.3))
    idle_limit = int(cfg.get("idle_limit", 10000))
    max_burst = int(cfg.get("max_burst", 16))
    phases = cfg.get("phases", ["throughput", "stress"])
    log.info("hwgen stream testbench: %d frames, %d -> %d words per frame, seed %d, "
             "valid gap p=%.2f, ready stall p=%.2f, bursts up to %d cycles", n_frames,
             len(in_frames[0]) if in_frames else 0, out_wpf, seed, gap_p, stall_p, max_burst)

    cycles = CycleClock(dut.clk)
    scoreboard = Scoreboard(out_frames, int(cfg.get("out_mask", -1)), log)
    driver = StreamDriver(dut, cycles)
    frames_done = FrameProgress(cfg.get("progress"), scoreboard, n_frames, out_wpf)
    monitor = StreamMonitor(dut, cycles, frames_done)
    results = {"seed": seed, "phases": {}, "error": None, "cycles_per_frame": None, "latency_cycles": None}

    driver.idle()
    dut.m_axis_tready.value = 0
    dut.rst.value = 1
    await cycles.start()
    await reset(dut, driver, monitor)

    try:
        for phase in phases:
            stress = phase == "stress"
            gaps = Bursts(gap_p, max_burst, random.Random(f"{seed}/{phase}/valid")) if stress else None
            stalls = Bursts(stall_p, max_burst, random.Random(f"{seed}/{phase}/ready")) if stress else None
            scoreboard.start(phase)
            frames_done.start(phase)
            t0 = cycles.now()
            send = cocotb.start_soon(driver.send(in_frames, gaps))
            got = await monitor.receive(n_frames, out_wpf, stalls, idle_limit, what=f"{phase} phase")
            if not send.done():
                send.cancel()
                driver.idle()
            frames_done.finish()
            stamps = scoreboard.stamps[phase]
            doc = {"out_frames": scoreboard.words[phase], "out_cycles": stamps,
                   "in_first_cycles": driver.frame_start_cycles, "words_sent": driver.words_sent,
                   "words_received": got, "cycles": cycles.now() - t0}
            results["phases"][phase] = doc
            if monitor.error:
                results["error"] = monitor.error
                break
            if phase == "throughput":
                cpf, lat = throughput([fr[-1] if fr else None for fr in stamps], driver.frame_start_cycles[0])
                results["cycles_per_frame"], results["latency_cycles"] = cpf, lat
                log.info("throughput phase: %s cycles per frame, latency %s cycles, %d cycles in all",
                         cpf, lat, doc["cycles"])
            else:
                log.info("%s phase: %d cycles in all", phase, doc["cycles"])
        if results["error"] is None:
            extra = await monitor.drain(DRAIN_CYCLES)
            if extra:
                results["error"] = f"the design produced {extra} more output word(s) than expected after the last frame"
    finally:
        results["mismatches"] = scoreboard.n_mismatches
        results["mismatch_list"] = scoreboard.mismatches
        results["protocol_errors"] = monitor.n_protocol_errors
        results["protocol_list"] = monitor.protocol_errors
        write_results(cfg["results"], results)

    assert results["error"] is None, results["error"]
    assert scoreboard.n_mismatches == 0, f"{scoreboard.n_mismatches} output words differ from the reference"
    assert monitor.n_protocol_errors == 0, f"{monitor.n_protocol_errors} output handshake violations: {monitor.protocol_errors[0]}"
