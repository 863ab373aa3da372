"""Pure-Python units: data types, stream packing, threshold search, IR round trip."""

import numpy as np
import pytest

from hwgen.dataflow import MVAU, DataflowGraph, Thresholding
from hwgen.dtypes import DType, smallest_dtype
from hwgen.errors import HwgenError
from hwgen.lower.thresholds import segment_thresholds
from hwgen.streams import pack, tdata_bits, unpack


@pytest.mark.parametrize("name,lo,hi,bits", [("BIPOLAR", -1, 1, 1), ("BINARY", 0, 1, 1), ("UINT1", 0, 1, 1),
                                             ("INT2", -2, 1, 2), ("UINT3", 0, 7, 3), ("INT8", -128, 127, 8)])
def test_dtype_ranges(name, lo, hi, bits):
    t = DType(name)
    assert (t.min, t.max, t.bits) == (lo, hi, bits)
    vals = np.array([-1, 1]) if name == "BIPOLAR" else np.arange(lo, hi + 1)
    assert np.array_equal(t.decode(t.encode(vals)), vals)


def test_dtype_error_message():
    with pytest.raises(HwgenError, match=r"^data type must be BIPOLAR, BINARY, UINTn or INTn with n in 1..128, not 'FLOAT32'$"):
        DType("FLOAT32")


@pytest.mark.parametrize("lo,hi,want", [(0, 0, "UINT1"), (0, 255, "UINT8"), (-1, 0, "INT1"), (-128, 127, "INT8"), (-129, 0, "INT9"), (-3, 200, "INT9")])
def test_smallest_dtype(lo, hi, want):
    assert smallest_dtype(lo, hi).name == want


@pytest.mark.parametrize("dt,lanes", [("BIPOLAR", 3), ("INT3", 4), ("UINT8", 2), ("INT5", 12), ("INT17", 5)])
def test_pack_roundtrip(dt, lanes):
    rng = np.random.default_rng(0)
    t = DType(dt)
    shape = (2, lanes * 3)
    v = rng.choice([-1, 1], shape) if dt == "BIPOLAR" else rng.integers(t.min, t.max + 1, shape)
    frames = pack(v, t, lanes)
    assert len(frames) == 2 and len(frames[0]) == 3
    assert np.array_equal(unpack(frames, t, lanes, shape[1:]), v)
    assert tdata_bits(lanes, t) % 8 == 0 and tdata_bits(lanes, t) >= lanes * t.bits


def test_pack_lane_order():
    """Lane 0 in the least significant bits, two's complement (ARCHITECTURE §3)."""
    assert pack(np.array([[1, -1, 2]]), DType("INT3"), 3) == [[0b010_111_001]]


@pytest.mark.parametrize("mode", ["ROUND", "FLOOR", "CEIL", "ROUND_TO_ZERO", "HALF_UP", "HALF_DOWN"])
@pytest.mark.parametrize("sign", [1, -1, 0])
def test_thresholds_match_brute_force(mode, sign):
    """Binary-searched thresholds reproduce quant(ops(a)) at every integer of the range; the
    reference is numpy for the ops and qonnx's own ``quant`` (its rounding modes) for the quantiser."""
    from qonnx.custom_op.general.quant import quant

    rng = np.random.default_rng(7)
    C = 5
    lo, hi = rng.integers(-60, -1, C), rng.integers(1, 60, C)
    mul, add = sign * rng.uniform(0.05, 0.4, C), rng.normal(0, 1, C)
    ops = [{"op": "mul", "value": mul}, {"op": "add", "value": add}, {"op": "relu"} if sign >= 0 else {"op": "min", "value": 2.0}]
    q = {"scale": 0.25, "zero_point": 0.0, "qmin": -4, "qmax": 3, "rounding_mode": mode}
    T, s, base, step = segment_thresholds(ops, q, lo, hi)
    qonnx_mode = {"ROUND_TO_ZERO": "DOWN"}.get(mode, mode)
    for c in range(C):
        a = np.arange(lo[c], hi[c] + 1)
        y = a * mul[c] + add[c]
        y = np.maximum(y, 0.0) if sign >= 0 else np.minimum(y, 2.0)
        want = quant(y, np.float64(0.25), np.float64(0.0), np.float64(3), 1, 0, qonnx_mode) / 0.25   # INT3: -4..3
        got = base + step * ((s[c] * a)[:, None] >= T[c][None, :]).sum(1)
        assert np.array_equal(got, want), (c, mode)


def _mvau(rng, mw=6, mh=4, thresholds=True):
    W = rng.integers(-3, 4, (mh, mw))
    m = MVAU("fc0", mw=mw, mh=mh, in_dt=DType("UINT3"), wdt=DType("INT3"), out_dt=DType("UINT2"), weights=W)
    lo, hi = m.acc_range
    m.thresholds = np.sort(rng.integers(lo, hi + 2, (mh, 3)), axis=1) if thresholds else None
    if not thresholds:
        m.out_dt = m.acc_dt
    return m


def test_graph_roundtrip(tmp_path):
    rng = np.random.default_rng(3)
    a = _mvau(rng)
    t = Thresholding("thr0", channels=4, in_dt=DType("UINT2"), out_dt=DType("BIPOLAR"), thresholds=np.array([[1], [2], [0], [3]]), out_base=-1, pe=2)
    g = DataflowGraph([a, t], head={"h": 1}, tail={"ops": []}, name="x")
    g.validate()
    g.save(tmp_path)
    g2 = DataflowGraph.load(tmp_path)
    x = rng.integers(0, 8, (20, 6))
    assert np.array_equal(g.execute(x), g2.execute(x))
    assert g2.head == {"h": 1} and [l.to_json()[0] for l in g2.layers] == [l.to_json()[0] for l in g.layers]
    assert set(np.unique(g.execute(x))) <= {-1, 1}


def test_mvau_reference_is_matmul_then_thresholds():
    rng = np.random.default_rng(4)
    m = _mvau(rng)
    x = rng.integers(0, 8, (10, 6))
    acc = x @ m.weights.T
    want = np.array([[int((acc[n, c] >= m.thresholds[c]).sum()) for c in range(4)] for n in range(10)])
    assert np.array_equal(m.execute(x), want)
    assert m.cycles() == 24
    m.pe, m.simd = 2, 3
    assert m.cycles() == 4


def test_mvau_accumulator_is_exact():
    W = np.array([[3, -2, 1], [-1, -1, -1]])
    m = MVAU("fc0", mw=3, mh=2, in_dt=DType("INT4"), wdt=DType("INT3"), out_dt=DType("INT8"), weights=W)
    assert m.acc_range == (-46, 44)      # row 0: 3·(−8) − 2·7 + 1·(−8) and 3·7 − 2·(−8) + 7
    assert m.acc_dt.name == "INT7"


@pytest.mark.parametrize("pe,simd,msg", [
    (3, 1, "layer fc0: PE=3 must divide MH=4"),
    (1, 4, "layer fc0: SIMD=4 must divide MW=6"),
])
def test_mvau_folding_errors(pe, simd, msg):
    m = _mvau(np.random.default_rng(0))
    m.pe, m.simd = pe, simd
    with pytest.raises(HwgenError) as e:
        m.validate()
    assert str(e.value) == msg
