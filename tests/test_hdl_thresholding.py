"""ThresholdingComponent in the Amaranth simulator, every output word against Thresholding.execute."""

import zlib

import numpy as np
import pytest

from hwgen.dataflow import Thresholding
from hwgen.dtypes import DType
from hwgen.errors import HwgenError
from hwgen.hdl import ThresholdingComponent

import streamsim
from streamsim import random_values, simulate_layer


def make_thresholding(channels, idt, odt, pe, *, spatial=(), out_base=None, n_thr=None, frames=3,
                      seed=0, name="thr", pipeline="auto"):
    """A Thresholding layer whose thresholds straddle the input range (clipped to
    ``[idt.min, idt.max + 1]``, duplicates included) and its input frames."""
    rng = np.random.default_rng(seed)
    idt, odt = DType(idt), DType(odt)
    step = 2 if odt.name == "BIPOLAR" else 1
    base = odt.min if out_base is None else out_base
    n = (odt.max - base) // step if n_thr is None else n_thr
    lo, hi = idt.min, idt.max
    T = np.sort(np.clip(rng.integers(lo - 3, hi + 4, size=(channels, n)), lo, hi + 1), axis=1)
    if n >= 3:
        T[:, 1] = T[:, 0]
    x = random_values(rng, idt, (frames,) + tuple(spatial) + (channels,))
    layer = Thresholding(name, channels=channels, in_dt=idt, out_dt=odt, thresholds=T,
                         out_base=base, spatial=tuple(spatial), pe=pe, pipeline=pipeline)
    layer.validate()
    return layer, x


# (C, idt, odt, pe, extra)
CASES = [
    (6, "UINT4", "UINT2", 1, {}),
    (6, "INT8", "INT4", 3, {"spatial": (2,)}),
    (10, "INT3", "BIPOLAR", 10, {}),
    (5, "UINT2", "INT2", 5, {"spatial": (2, 2)}),
    (10, "BIPOLAR", "UINT1", 2, {"n_thr": 1, "out_base": 0}),
    (9, "INT8", "INT8", 3, {"out_base": -60, "n_thr": 40}),
    (6, "UINT1", "INT3", 2, {"out_base": -4, "n_thr": 0}),
    (12, "INT16", "UINT3", 4, {"spatial": (3,)}),
]


def _case_id(c):
    C, idt, odt, pe, extra = c
    return f"{idt}-{odt}-C{C}-pe{pe}" + ("-sp" + "x".join(map(str, extra["spatial"])) if "spatial" in extra else "")


@pytest.mark.parametrize("pipeline", ["auto", "none"])
@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_thresholding_words(case, pipeline):
    C, idt, odt, pe, extra = case
    layer, x = make_thresholding(C, idt, odt, pe, seed=zlib.crc32(_case_id(case).encode()), pipeline=pipeline,
                                 **extra)
    simulate_layer(layer, x, ThresholdingComponent, backpressure=0.5)


@pytest.mark.parametrize("pipeline", ["none", 1])
@pytest.mark.parametrize("pe,spatial", [(1, ()), (2, (3,)), (6, (2, 2))])
def test_thresholding_throughput(pe, spatial, pipeline):
    layer, x = make_thresholding(6, "INT4", "UINT2", pe, spatial=spatial, frames=4, seed=5, pipeline=pipeline)
    res = simulate_layer(layer, x, ThresholdingComponent, gaps=0.0, backpressure=0.0)
    assert streamsim.frame_intervals(res, layer.out_words) == [layer.cycles()] * 3
    assert np.all(np.diff(res.in_cycles) == 1) and np.all(np.diff(res.out_cycles) == 1)
    assert res.out_cycles[0] - res.in_cycles[0] == res.dut.LATENCY == (2 if pipeline == "none" else 4)


def test_thresholding_errors():
    layer, _ = make_thresholding(6, "UINT4", "UINT2", 1)
    layer.pe = 4
    with pytest.raises(HwgenError, match="PE=4 must divide C=6"):
        ThresholdingComponent(layer)
    with pytest.raises(TypeError, match="layer must be a Thresholding"):
        ThresholdingComponent(object())
