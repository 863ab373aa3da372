"""Amaranth-simulator helpers for stream components: driver, monitor, run, check.

A *stream* here is anything with ``payload``, ``valid`` and ``ready``
attributes (an :class:`amaranth.lib.stream.Interface`, or a namespace of the
flat AXI4-Stream ports of :class:`hwgen.hdl.Top`).

* the driver pushes words with random ``valid`` gaps (idle cycles before each
  word with probability ``gaps``);
* the monitor collects words with random ``ready`` back-pressure (``ready``
  low on a cycle with probability ``backpressure``), and checks the stream
  contract: once ``valid`` is high, ``valid`` and ``payload`` hold until the
  word is taken;
* :func:`run` returns the collected words and the cycle stamp of each
  handshake; :func:`check_frames` compares them word by word to the expected
  frames.

The random seed is printed (pytest shows it with a failure) and can be fixed
with ``seed=`` or the ``HWGEN_SIM_SEED`` environment variable to replay a run.
"""

import os
import random
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hwgen.dtypes import dtype as _dtype
from hwgen.streams import pack

__all__ = ["SimResult", "axis_in", "axis_out", "pick_seed", "run", "check_frames", "frame_intervals",
           "random_values", "straddling_thresholds", "simulate_layer"]


@dataclass
class SimResult:
    words: list                 # output words in order
    out_cycles: list            # cycle of each output handshake
    in_cycles: list             # cycle of each input handshake
    seed: int = 0
    cycles: int = 0             # cycles simulated by the monitor
    violations: list = field(default_factory=list)
    dut: object = None          # the simulated component (set by simulate_layer)


def axis_in(top):
    """The slave AXI4-Stream ports of a :class:`hwgen.hdl.Top` as a stream namespace."""
    return SimpleNamespace(payload=top.s_axis_tdata, valid=top.s_axis_tvalid, ready=top.s_axis_tready)


def axis_out(top):
    """The master AXI4-Stream ports of a :class:`hwgen.hdl.Top` as a stream namespace."""
    return SimpleNamespace(payload=top.m_axis_tdata, valid=top.m_axis_tvalid, ready=top.m_axis_tready)


def pick_seed(seed=None):
    if seed is None:
        env = os.environ.get("HWGEN_SIM_SEED")
        seed = int(env) if env else random.SystemRandom().randrange(1 << 31)
    return int(seed)


def run(dut, i, o, in_words, n_out, *, seed=None, gaps=0.3, backpressure=0.3, max_cycles=None,
        vcd=None):
    """Simulate ``dut``: push ``in_words`` into stream ``i``, collect ``n_out`` words from ``o``.

    Returns a :class:`SimResult`. Raises :class:`AssertionError` on a timeout
    (``max_cycles``, by default generous for the given gaps) or a stream
    contract violation on ``o``.
    """
    seed = pick_seed(seed)
    print(f"streamsim: seed={seed} gaps={gaps} backpressure={backpressure}")
    rng_in = random.Random(seed)
    rng_out = random.Random(seed ^ 0x5A5A5A5A)
    in_words = [int(w) for w in in_words]
    if max_cycles is None:
        slow = 1.0 / max(1e-3, (1 - gaps) * (1 - backpressure))
        max_cycles = int(200 + 4 * slow * (len(in_words) + n_out) * 8)
    res = SimResult(words=[], out_cycles=[], in_cycles=[], seed=seed)

    async def driver(ctx):
        cycle = 0
        for word in in_words:
            while gaps and rng_in.random() < gaps:
                ctx.set(i.valid, 0)
                await ctx.tick()
                cycle += 1
            ctx.set(i.payload, word)
            ctx.set(i.valid, 1)
            while True:
                _, _, ready = await ctx.tick().sample(i.ready)
                cycle += 1
                if ready:
                    res.in_cycles.append(cycle - 1)
                    break
                if cycle > max_cycles:
                    return
        ctx.set(i.valid, 0)

    async def monitor(ctx):
        cycle = 0
        held = None         # payload of a word offered but not taken on the previous cycle
        while len(res.words) < n_out:
            ready = not (backpressure and rng_out.random() < backpressure)
            ctx.set(o.ready, int(ready))
            _, _, valid, payload = await ctx.tick().sample(o.valid, o.payload)
            if held is not None and (not valid or payload != held):
                res.violations.append((cycle, held, valid, payload))
            if valid and ready:
                res.words.append(payload)
                res.out_cycles.append(cycle)
                held = None
            else:
                held = payload if valid else None
            cycle += 1
            if cycle > max_cycles:
                break
        res.cycles = cycle
        ctx.set(o.ready, 0)

    # a free-running register gives the design a ``sync`` domain even if ``dut`` is
    # combinational (e.g. a width converter with equal lane counts)
    wrapper = Module()
    wrapper.submodules.dut = dut
    toggle = Signal()
    wrapper.d.sync += toggle.eq(~toggle)
    sim = Simulator(wrapper)
    sim.add_clock(1e-8)
    sim.add_testbench(driver)
    sim.add_testbench(monitor)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    assert not res.violations, (
        f"seed={seed}: output stream changed while valid & ~ready "
        f"(cycle, held payload, valid, payload): {res.violations[:5]}")
    assert len(res.words) == n_out, (
        f"seed={seed}: timeout after {res.cycles} cycles: {len(res.words)} of {n_out} output words "
        f"({len(res.in_cycles)} of {len(in_words)} input words accepted)")
    return res


def check_frames(res, expected_frames, what=""):
    """Assert that the output words equal ``expected_frames`` (list of word lists), word by word."""
    flat = [(f, k, w) for f, frame in enumerate(expected_frames) for k, w in enumerate(frame)]
    assert len(res.words) == len(flat), f"{what} seed={res.seed}: {len(res.words)} words, expected {len(flat)}"
    for got, (f, k, want) in zip(res.words, flat):
        assert got == want, (f"{what} seed={res.seed}: frame {f} word {k}: got {got:#x}, expected {want:#x}")


def frame_intervals(res, words_per_frame):
    """Cycles between the first output words of consecutive frames."""
    starts = res.out_cycles[::words_per_frame]
    return [b - a for a, b in zip(starts, starts[1:])]


def random_values(rng, dt, size):
    """Uniform random integers of type ``dt`` (``BIPOLAR``: ±1) of the given shape."""
    dt = _dtype(dt)
    if dt.name == "BIPOLAR":
        return rng.choice(np.array([-1, 1]), size=size)
    return rng.integers(dt.min, dt.max + 1, size=size)


def simulate_layer(layer, x, comp_cls, *, seed=None, gaps=0.3, backpressure=0.3):
    """Run ``comp_cls(layer)`` on frames ``x`` and check every output word against
    ``pack(layer.execute(x))``; returns the :class:`SimResult`."""
    dut = comp_cls(layer)
    in_words = [w for frame in pack(x, layer.idt, layer.in_lanes) for w in frame]
    expected = pack(layer.execute(x), layer.odt, layer.out_lanes)
    res = run(dut, dut.i, dut.o, in_words, sum(len(f) for f in expected),
              seed=seed, gaps=gaps, backpressure=backpressure)
    check_frames(res, expected, what=f"layer {layer.name}")
    res.dut = dut
    return res


def straddling_thresholds(rng, acc, lo, hi, n):
    """``(MH, n)`` ascending thresholds in ``[lo, hi + 1]``: some at actual accumulator values
    (± 1, so ``acc == T`` occurs), some outside the range (clipped), duplicates."""
    mh = acc.shape[-1]
    acc = acc.reshape(-1, mh)
    T = np.empty((mh, n), dtype=np.int64)
    for c in range(mh):
        cand = np.concatenate([
            acc[:, c] + rng.integers(-1, 2, size=acc.shape[0]),             # near real values
            rng.integers(lo - 5, hi + 6, size=max(2, n)),                   # anywhere, out of range too
            [lo - 100, hi + 100, lo, hi + 1],
        ])
        row = rng.choice(cand, size=n)
        if n >= 3:
            row[1] = row[0]                                                  # a duplicate
        T[c] = np.sort(np.clip(row, lo, hi + 1))
    return T
