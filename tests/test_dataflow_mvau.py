"""hwgen.dataflow.mvau (the MVAU kind: reference, accumulator, folding) and the graph's save/load round trip."""

import numpy as np
import pytest

from hwgen.dataflow import MVAU, DataflowGraph, Thresholding
from hwgen.dtypes import DType
from hwgen.errors import HwgenError


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
