"""LabelSelectComponent in the Amaranth simulator, every output word against LabelSelect.execute."""

import zlib

import numpy as np
import pytest

from hwgen.dataflow import LabelSelect
from hwgen.dtypes import DType
from hwgen.errors import HwgenError
from hwgen.hdl import LabelSelectComponent

import streamsim
from streamsim import random_values, simulate_layer


def make_labelselect(C, pe, k, idt, *, frames=4, seed=0):
    """A LabelSelect layer and frames full of ties: random values of a narrow range,
    a frame of equal values, a frame whose maximum repeats (first at the end)."""
    rng = np.random.default_rng(seed)
    idt = DType(idt)
    layer = LabelSelect("top", channels=C, k=k, in_dt=idt, pe=pe)
    layer.validate()
    x = random_values(rng, idt, (frames, C))
    if idt.name != "BIPOLAR" and idt.bits > 3:      # narrow the range to force ties
        x = np.clip(x, idt.min + (idt.max - idt.min) // 2 - 2, idt.min + (idt.max - idt.min) // 2 + 2)
    x[0] = idt.max if idt.name != "BIPOLAR" else 1              # all equal: 0, 1, 2, …
    if frames > 1:
        x[1] = idt.min
        x[1, sorted({C - 1, 2 % C, C // 2})] = idt.max            # repeated maxima
    layer.check_input(x)
    return layer, x


# (C, pe, k, idt)
CASES = [
    (10, 1, 1, "INT3"), (10, 1, 3, "UINT2"), (10, 1, 10, "INT8"),
    (10, 2, 1, "INT8"), (10, 2, 3, "INT3"), (10, 2, 10, "UINT2"),
    (10, 5, 1, "UINT2"), (10, 5, 3, "INT8"), (10, 5, 10, "INT3"),
    (10, 10, 3, "INT4"), (10, 10, 1, "BIPOLAR"), (6, 3, 4, "BIPOLAR"),
    (1, 1, 1, "INT3"), (16, 4, 5, "INT16"),
]


def _id(c):
    return "C{}-pe{}-k{}-{}".format(*c)


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_labelselect_words(case):
    C, pe, k, idt = case
    layer, x = make_labelselect(C, pe, k, idt, frames=6, seed=zlib.crc32(_id(case).encode()))
    simulate_layer(layer, x, LabelSelectComponent, gaps=0.3, backpressure=0.3)


@pytest.mark.parametrize("gaps,backpressure", [(0.7, 0.1), (0.1, 0.7), (0.5, 0.5)])
def test_labelselect_words_stress(gaps, backpressure):
    layer, x = make_labelselect(10, 2, 3, "INT3", frames=6, seed=4)
    simulate_layer(layer, x, LabelSelectComponent, gaps=gaps, backpressure=backpressure)


@pytest.mark.parametrize("pe", [1, 2, 5, 10])
@pytest.mark.parametrize("k", [1, 3, 10])
def test_labelselect_throughput(pe, k):
    """Back to back frames: one frame per ``max(C/PE, k)`` cycles, the k words of a frame
    back to back, the first 2 cycles after the frame's last input word."""
    layer, x = make_labelselect(10, pe, k, "INT4", frames=5, seed=pe * 10 + k)
    res = simulate_layer(layer, x, LabelSelectComponent, gaps=0.0, backpressure=0.0)
    assert layer.cycles() == max(10 // pe, k)
    assert streamsim.frame_intervals(res, layer.out_words) == [layer.cycles()] * 4
    for f in range(5):                                      # a frame's k words back to back
        assert np.all(np.diff(res.out_cycles[f * k:(f + 1) * k]) == 1)
    words_in = 10 // pe
    lasts = res.in_cycles[words_in - 1::words_in]           # handshakes of the frames' last words
    assert [b - a for a, b in zip(lasts, lasts[1:])] == [layer.cycles()] * 4
    assert [res.out_cycles[f * k] - lasts[f] for f in range(5)] == [layer.latency()] * 5


def test_labelselect_errors():
    with pytest.raises(HwgenError, match="PE=3 must divide C=10"):
        LabelSelectComponent(LabelSelect("top", channels=10, k=1, in_dt=DType("INT3"), pe=3))
    with pytest.raises(HwgenError, match="k=11 must be between 1 and C=10"):
        LabelSelectComponent(LabelSelect("top", channels=10, k=11, in_dt=DType("INT3"), pe=1))
    with pytest.raises(TypeError, match="layer must be a LabelSelect"):
        LabelSelectComponent(object())
