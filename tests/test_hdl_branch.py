"""DuplicateComponent, AddStreamsComponent and ConcatComponent in the Amaranth simulator.

Every output word of every frame is checked against the IR layer's ``execute``;
every input and output stream gets its own random ``valid`` gaps / ``ready``
back-pressure (:func:`run_streams`, the multi-stream sibling of
:func:`streamsim.run`).
"""

import random
import zlib
from dataclasses import dataclass, field

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hwgen.dataflow import AddStreams, Concat, Duplicate
from hwgen.dtypes import DType
from hwgen.errors import HwgenError
from hwgen.hdl import AddStreamsComponent, ConcatComponent, DuplicateComponent
from hwgen.streams import pack

from streamsim import pick_seed, random_values, straddling_thresholds


# -- a simulator for components with several input and output streams ----------------------

@dataclass
class MultiResult:
    words: list                 # per output: words in order
    out_cycles: list            # per output: cycle of each handshake
    in_cycles: list             # per input: cycle of each handshake
    seed: int = 0
    violations: list = field(default_factory=list)


def _per_stream(v, n):
    return list(v) if isinstance(v, (list, tuple)) else [v] * n


def run_streams(dut, inputs, outputs, *, seed=None, gaps=0.3, backpressure=0.3, max_cycles=None):
    """Push ``inputs`` (list of ``(stream, words)``) into ``dut`` and collect ``outputs``
    (list of ``(stream, n_words)``), each stream with its own random gaps / back-pressure
    (a number, or one per stream). Asserts the stream contract on every output
    (``valid`` and ``payload`` hold until taken) and that every word arrived."""
    seed = pick_seed(seed)
    print(f"run_streams: seed={seed} gaps={gaps} backpressure={backpressure}")
    gaps = _per_stream(gaps, len(inputs))
    backpressure = _per_stream(backpressure, len(outputs))
    if max_cycles is None:
        slow = 1.0 / max(1e-3, (1 - max(gaps + [0])) * (1 - max(backpressure + [0])))
        total = sum(len(w) for _, w in inputs) + sum(n for _, n in outputs)
        max_cycles = int(200 + 4 * slow * total * 8)
    res = MultiResult(words=[[] for _ in outputs], out_cycles=[[] for _ in outputs],
                      in_cycles=[[] for _ in inputs], seed=seed)

    def driver(k, stream, words, gap):
        rng = random.Random(seed * 1000 + k)

        async def tb(ctx):
            cycle = 0
            for word in words:
                while gap and rng.random() < gap:
                    ctx.set(stream.valid, 0)
                    await ctx.tick()
                    cycle += 1
                ctx.set(stream.payload, int(word))
                ctx.set(stream.valid, 1)
                while True:
                    _, _, ready = await ctx.tick().sample(stream.ready)
                    cycle += 1
                    if ready:
                        res.in_cycles[k].append(cycle - 1)
                        break
                    if cycle > max_cycles:
                        return
            ctx.set(stream.valid, 0)
        return tb

    def monitor(k, stream, n, bp):
        rng = random.Random(seed * 1000 + 500 + k)

        async def tb(ctx):
            cycle, held = 0, None
            while len(res.words[k]) < n and cycle <= max_cycles:
                ready = not (bp and rng.random() < bp)
                ctx.set(stream.ready, int(ready))
                _, _, valid, payload = await ctx.tick().sample(stream.valid, stream.payload)
                if held is not None and (not valid or payload != held):
                    res.violations.append((k, cycle, held, valid, payload))
                if valid and ready:
                    res.words[k].append(payload)
                    res.out_cycles[k].append(cycle)
                    held = None
                else:
                    held = payload if valid else None
                cycle += 1
            ctx.set(stream.ready, 0)
        return tb

    wrapper = Module()
    wrapper.submodules.dut = dut
    toggle = Signal()
    wrapper.d.sync += toggle.eq(~toggle)
    sim = Simulator(wrapper)
    sim.add_clock(1e-8)
    for k, ((stream, words), gap) in enumerate(zip(inputs, gaps)):
        sim.add_testbench(driver(k, stream, words, gap))
    for k, ((stream, n), bp) in enumerate(zip(outputs, backpressure)):
        sim.add_testbench(monitor(k, stream, n, bp))
    sim.run()
    assert not res.violations, (f"seed={seed}: output stream changed while valid & ~ready "
                                f"(output, cycle, held, valid, payload): {res.violations[:5]}")
    for k, (_, n) in enumerate(outputs):
        assert len(res.words[k]) == n, (
            f"seed={seed}: timeout: output {k} got {len(res.words[k])} of {n} words "
            f"(inputs accepted: {[len(c) for c in res.in_cycles]} of {[len(w) for _, w in inputs]})")
    return res


def check_words(res, k, expected_frames, what=""):
    flat = [(f, j, w) for f, frame in enumerate(expected_frames) for j, w in enumerate(frame)]
    assert len(res.words[k]) == len(flat)
    for got, (f, j, want) in zip(res.words[k], flat):
        assert got == want, f"{what} seed={res.seed}: output {k} frame {f} word {j}: got {got:#x}, expected {want:#x}"


def intervals(cycles, words_per_frame):
    starts = cycles[::words_per_frame]
    return [b - a for a, b in zip(starts, starts[1:])]


def flat_words(frames):
    return [w for f in frames for w in f]


# -- Duplicate ---------------------------------------------------------------------------------

def simulate_duplicate(n_out, *, shape=(3, 4), dt="INT3", lanes=2, frames=3, seed=0, **kw):
    layer = Duplicate("dup", shape=shape, dt=DType(dt), lanes=lanes, n_out=n_out)
    layer.validate()
    x = random_values(np.random.default_rng(seed), DType(dt), (frames,) + tuple(shape))
    dut = DuplicateComponent(layer)
    ys = layer.execute(x)
    expected = [pack(y, layer.odt, layer.out_lanes) for y in ys]
    res = run_streams(dut, [(dut.i, flat_words(pack(x, layer.idt, layer.in_lanes)))],
                      [(o, len(flat_words(e))) for o, e in zip(dut.outputs, expected)], **kw)
    for k, e in enumerate(expected):
        check_words(res, k, e, "duplicate")
    return layer, res


@pytest.mark.parametrize("n_out,bp", [(2, [0.3, 0.3]), (2, [0.0, 0.8]), (3, [0.1, 0.7, 0.4]),
                                      (3, [0.6, 0.0, 0.6])])
@pytest.mark.parametrize("gaps", [0.0, 0.4])
def test_duplicate_words(n_out, bp, gaps):
    simulate_duplicate(n_out, backpressure=bp, gaps=gaps, seed=zlib.crc32(f"{n_out}{bp}{gaps}".encode()))


@pytest.mark.parametrize("dt,lanes", [("BIPOLAR", 4), ("UINT8", 1)])
def test_duplicate_types(dt, lanes):
    simulate_duplicate(2, dt=dt, lanes=lanes, shape=(2, 4), seed=3)


@pytest.mark.parametrize("n_out", [2, 3])
def test_duplicate_throughput(n_out):
    layer, res = simulate_duplicate(n_out, frames=4, gaps=0.0, backpressure=0.0)
    for k in range(n_out):
        assert intervals(res.out_cycles[k], layer.out_words) == [layer.cycles()] * 3
        assert np.all(np.diff(res.out_cycles[k]) == 1)
        assert res.out_cycles[k] == res.in_cycles[0]         # latency 0
    assert np.all(np.diff(res.in_cycles[0]) == 1)


def test_duplicate_no_lockstep():
    """With output 1 blocked, output 0 still takes the current word (but no more):
    a slow consumer does not hold a fast one within a word."""
    layer = Duplicate("dup", shape=(4,), dt=DType("UINT4"), lanes=1, n_out=2)
    dut = DuplicateComponent(layer)
    got0 = []

    async def tb(ctx):
        ctx.set(dut.o1.ready, 0)
        ctx.set(dut.o0.ready, 1)
        ctx.set(dut.i.payload, 7)
        ctx.set(dut.i.valid, 1)
        for _ in range(5):
            _, _, v, p, r = await ctx.tick().sample(dut.o0.valid, dut.o0.payload, dut.i.ready)
            assert not r
            if v:
                got0.append(p)
        # output 1 takes it now: the word leaves, output 0 did not see it twice
        ctx.set(dut.o1.ready, 1)
        _, _, r, v1 = await ctx.tick().sample(dut.i.ready, dut.o1.valid)
        assert r and v1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert got0 == [7]


def test_duplicate_errors():
    with pytest.raises(HwgenError, match="at least 2 outputs"):
        DuplicateComponent(Duplicate("dup", shape=(4,), dt=DType("UINT4"), lanes=1, n_out=1))
    with pytest.raises(TypeError, match="layer must be a Duplicate"):
        DuplicateComponent(object())


# -- AddStreams -----------------------------------------------------------------------------

def make_add(shape, adt, bdt, ka, kb, pe, out, *, out_base=None, n_thr=None, frames=3, seed=0, pipeline="auto"):
    """An AddStreams layer (thresholds straddling the actual sums when ``out`` is a type
    name, the raw sum in ``out_dt`` when ``out`` is ``("raw", type or None)``) and its inputs."""
    rng = np.random.default_rng(seed)
    adt, bdt = DType(adt), DType(bdt)
    a = random_values(rng, adt, (frames,) + tuple(shape))
    b = random_values(rng, bdt, (frames,) + tuple(shape))
    layer = AddStreams("add", shape=tuple(shape), in_dt=adt, in_dt_b=bdt, ka=ka, kb=kb, out_dt=None, pe=pe,
                       pipeline=pipeline)
    if isinstance(out, tuple):
        layer.out_dt = DType(out[1]) if out[1] else layer.acc_dt
    else:
        odt = DType(out)
        layer.out_dt = odt
        step = layer.out_step
        base = odt.min if out_base is None else out_base
        n = (odt.max - base) // step if n_thr is None else n_thr
        lo, hi = layer.acc_range
        layer.thresholds = straddling_thresholds(rng, ka * a + kb * b, lo, hi, n)
        layer.out_base = base
    layer.validate()
    return layer, a, b


def simulate_add(layer, a, b, **kw):
    dut = AddStreamsComponent(layer)
    expected = pack(layer.execute(a, b), layer.odt, layer.out_lanes)
    res = run_streams(dut, [(dut.i0, flat_words(pack(a, layer.in_dt, layer.pe))),
                            (dut.i1, flat_words(pack(b, layer.in_dt_b, layer.pe)))],
                      [(dut.o, len(flat_words(expected)))], **kw)
    check_words(res, 0, expected, f"layer {layer.name}")
    return res


# (shape, adt, bdt, ka, kb, pe, out, extra)
ADD_CASES = [
    ((4,), "UINT4", "INT3", 1, 1, 1, ("raw", None), {}),
    ((2, 6), "UINT4", "INT3", 3, -2, 3, "UINT2", {}),
    ((6,), "UINT4", "INT3", 5, 3, 6, "INT4", {}),
    ((4,), "UINT4", "INT3", -2, 1, 2, "UINT2", {"n_thr": 0, "out_base": 1}),
    ((6,), "BIPOLAR", "UINT2", 5, 1, 6, "BIPOLAR", {}),
    ((2, 2, 4), "BIPOLAR", "UINT2", -2, 3, 2, ("raw", "INT8"), {}),
    ((3, 4), "BIPOLAR", "UINT2", 1, -2, 1, "INT2", {}),
    ((3, 4), "INT8", "INT8", 1, 1, 4, "INT4", {}),
    ((2, 6), "INT8", "INT8", -2, 5, 2, ("raw", None), {}),
    ((5,), "INT8", "INT8", 3, 3, 5, "INT3", {"out_base": -4, "n_thr": 7}),
    ((2, 3), "INT8", "INT8", 5, -2, 1, "BIPOLAR", {}),
    ((3, 2, 2), "UINT4", "INT3", 1, 5, 2, "UINT3", {"out_base": 2, "n_thr": 5}),
]


def _add_id(c):
    shape, adt, bdt, ka, kb, pe, out, _ = c
    o = "raw" if isinstance(out, tuple) else out
    return f"{adt}+{bdt}-k{ka},{kb}-pe{pe}-{o}-" + "x".join(map(str, shape))


@pytest.mark.parametrize("pipeline", ["auto", "none"])
@pytest.mark.parametrize("case", ADD_CASES, ids=[_add_id(c) for c in ADD_CASES])
def test_add_words(case, pipeline):
    shape, adt, bdt, ka, kb, pe, out, extra = case
    layer, a, b = make_add(shape, adt, bdt, ka, kb, pe, out, seed=zlib.crc32(_add_id(case).encode()),
                           pipeline=pipeline, **extra)
    simulate_add(layer, a, b, gaps=[0.3, 0.5], backpressure=0.3)


@pytest.mark.parametrize("pipeline", ["auto", "none"])
def test_add_words_stress(pipeline):
    layer, a, b = make_add((2, 6), "INT8", "INT8", 3, -2, 2, "UINT2", seed=11, frames=4, pipeline=pipeline)
    simulate_add(layer, a, b, gaps=[0.7, 0.1], backpressure=0.6)
    simulate_add(layer, a, b, gaps=[0.0, 0.7], backpressure=0.1)


@pytest.mark.parametrize("pipeline", ["none", 1])
@pytest.mark.parametrize("pe,shape,out", [(1, (6,), "UINT2"), (2, (2, 6), ("raw", None)), (6, (3, 6), "INT3")])
def test_add_throughput(pe, shape, out, pipeline):
    layer, a, b = make_add(shape, "UINT4", "INT3", 3, -2, pe, out, frames=4, seed=5, pipeline=pipeline)
    res = simulate_add(layer, a, b, gaps=0.0, backpressure=0.0)
    assert intervals(res.out_cycles[0], layer.out_words) == [layer.cycles()] * 3
    assert np.all(np.diff(res.out_cycles[0]) == 1)
    assert res.in_cycles[0] == res.in_cycles[1] and np.all(np.diff(res.in_cycles[0]) == 1)
    assert res.out_cycles[0][0] - res.in_cycles[0][0] == layer.latency()
    expected = 2 if pipeline == "none" else 3 + (layer.thresholds is not None)
    assert layer.latency() == expected


def test_add_errors():
    layer, _, _ = make_add((6,), "UINT4", "INT3", 1, 1, 2, "UINT2")
    layer.pe = 4
    with pytest.raises(HwgenError, match="PE=4 must divide C=6"):
        AddStreamsComponent(layer)
    with pytest.raises(TypeError, match="layer must be an AddStreams"):
        AddStreamsComponent(object())


# -- Concat ---------------------------------------------------------------------------------

def make_concat(channels, lanes, *, spatial=(3, 3), dt="INT3", frames=3, seed=0):
    rng = np.random.default_rng(seed)
    layer = Concat("cat", spatial=tuple(spatial), channels_in=tuple(channels), dt=DType(dt), lanes=lanes)
    layer.validate()
    xs = [random_values(rng, DType(dt), (frames,) + s) for s in layer.in_shapes]
    return layer, xs


def simulate_concat(layer, xs, **kw):
    dut = ConcatComponent(layer)
    expected = pack(layer.execute(*xs), layer.odt, layer.out_lanes)
    res = run_streams(dut, [(s, flat_words(pack(x, layer.dt, layer.lanes))) for s, x in zip(dut.inputs, xs)],
                      [(dut.o, len(flat_words(expected)))], **kw)
    check_words(res, 0, expected, f"layer {layer.name}")
    return res


CONCAT_CASES = [((4, 6), 1, (3, 3)), ((4, 6), 2, (3, 3)), ((2, 2, 4), 1, (3, 3)), ((2, 2, 4), 2, (3, 3)),
                ((2, 4), 2, ()), ((3, 1, 5), 1, (2,))]


@pytest.mark.parametrize("channels,lanes,spatial", CONCAT_CASES)
@pytest.mark.parametrize("dt", ["INT3", "BIPOLAR"])
def test_concat_words(channels, lanes, spatial, dt):
    layer, xs = make_concat(channels, lanes, spatial=spatial, dt=dt,
                            seed=zlib.crc32(f"{channels}{lanes}{spatial}{dt}".encode()))
    simulate_concat(layer, xs, gaps=[0.2, 0.5, 0.3][:len(channels)], backpressure=0.3)


def test_concat_words_stress():
    layer, xs = make_concat((2, 2, 4), 2, seed=9)
    simulate_concat(layer, xs, gaps=[0.7, 0.0, 0.5], backpressure=0.6)


@pytest.mark.parametrize("channels,lanes", [((4, 6), 1), ((2, 2, 4), 2)])
def test_concat_throughput(channels, lanes):
    layer, xs = make_concat(channels, lanes, frames=4, seed=2)
    res = simulate_concat(layer, xs, gaps=0.0, backpressure=0.0)
    assert intervals(res.out_cycles[0], layer.out_words) == [layer.cycles()] * 3
    assert np.all(np.diff(res.out_cycles[0]) == 1)
    assert res.out_cycles[0][0] - res.in_cycles[0][0] == layer.latency() == 1


def test_concat_errors():
    with pytest.raises(HwgenError, match="lanes=2 must divide every input's channels"):
        ConcatComponent(Concat("cat", spatial=(), channels_in=(2, 3), dt=DType("UINT2"), lanes=2))
    with pytest.raises(TypeError, match="layer must be a Concat"):
        ConcatComponent(object())
