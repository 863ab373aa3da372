"""FIFOComponent and WidthConverterComponent in the Amaranth simulator."""

import math
import zlib

import numpy as np
import pytest

from hwgen.dataflow import FIFO, WidthConverter
from hwgen.dtypes import DType
from hwgen.errors import HwgenError
from hwgen.hdl import FIFOComponent, WidthConverterComponent

import streamsim
from streamsim import random_values, simulate_layer


def frames_of(dt, shape, n, seed):
    return random_values(np.random.default_rng(seed), dt, (n,) + tuple(shape))


# -- FIFO ----------------------------------------------------------------------

@pytest.mark.parametrize("depth", [1, 2, 3, 5, 16, 33])
@pytest.mark.parametrize("gaps,backpressure", [(0.3, 0.3), (0.1, 0.7), (0.7, 0.1)])
def test_fifo_words(depth, gaps, backpressure):
    layer = FIFO("fifo", shape=(4, 6), dt=DType("INT3"), lanes=3, depth=depth)
    x = frames_of("INT3", (4, 6), 3, seed=depth)
    simulate_layer(layer, x, FIFOComponent, gaps=gaps, backpressure=backpressure)


@pytest.mark.parametrize("depth", [1, 2, 3, 8])
def test_fifo_full_rate(depth):
    layer = FIFO("fifo", shape=(8, 2), dt=DType("UINT4"), lanes=2, depth=depth)
    x = frames_of("UINT4", (8, 2), 3, seed=0)
    res = simulate_layer(layer, x, FIFOComponent, gaps=0.0, backpressure=0.0)
    assert np.all(np.diff(res.in_cycles) == 1) and np.all(np.diff(res.out_cycles) == 1)
    # the IR's latency (2) is that of a FIFO deeper than 2; a register or skid buffer takes 1
    assert res.out_cycles[0] - res.in_cycles[0] == (1 if depth <= 2 else layer.latency())


@pytest.mark.parametrize("depth", [1, 2, 3, 7])
def test_fifo_capacity(depth):
    """With the output blocked, the FIFO accepts exactly ``depth`` words."""
    layer = FIFO("fifo", shape=(16,), dt=DType("UINT4"), lanes=1, depth=depth)
    dut = FIFOComponent(layer)
    accepted = []

    async def tb(ctx):
        ctx.set(dut.o.ready, 0)
        for k in range(16):
            ctx.set(dut.i.payload, k)
            ctx.set(dut.i.valid, 1)
            _, _, ready = await ctx.tick().sample(dut.i.ready)
            if ready:
                accepted.append(k)

    from amaranth.sim import Simulator
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert len(accepted) == depth


# -- WidthConverter ---------------------------------------------------------------

RATIOS = [(1, 4), (4, 1), (3, 2), (2, 3), (6, 4), (4, 6), (2, 2), (12, 1), (1, 12), (12, 3), (3, 12)]


@pytest.mark.parametrize("dt", ["INT3", "BIPOLAR"])
@pytest.mark.parametrize("lanes_in,lanes_out", RATIOS, ids=[f"{a}to{b}" for a, b in RATIOS])
def test_dwc_words(lanes_in, lanes_out, dt):
    layer = WidthConverter("dwc", shape=(2, 12), dt=DType(dt), lanes_in=lanes_in, lanes_out=lanes_out)
    x = frames_of(dt, (2, 12), 3, seed=zlib.crc32(f"{lanes_in}{lanes_out}{dt}".encode()))
    simulate_layer(layer, x, WidthConverterComponent)


@pytest.mark.parametrize("lanes_in,lanes_out", RATIOS, ids=[f"{a}to{b}" for a, b in RATIOS])
def test_dwc_throughput(lanes_in, lanes_out):
    layer = WidthConverter("dwc", shape=(3, 12), dt=DType("UINT2"), lanes_in=lanes_in, lanes_out=lanes_out)
    x = frames_of("UINT2", (3, 12), 4, seed=1)
    res = simulate_layer(layer, x, WidthConverterComponent, gaps=0.0, backpressure=0.0)
    assert streamsim.frame_intervals(res, layer.out_words) == [layer.cycles()] * 3
    # the first block's first output word: the layer's latency after its last input word
    block = math.lcm(lanes_in, lanes_out) // lanes_in
    assert res.out_cycles[0] - res.in_cycles[block - 1] == layer.latency()


def test_dwc_errors():
    layer = WidthConverter("dwc", shape=(6,), dt=DType("UINT2"), lanes_in=4, lanes_out=2)
    with pytest.raises(HwgenError, match="lanes=4 must divide C=6"):
        WidthConverterComponent(layer)
    with pytest.raises(TypeError, match="layer must be a FIFO"):
        FIFOComponent(layer)
