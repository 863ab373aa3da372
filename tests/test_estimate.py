"""Calibrated resource estimates (hwgen.dataflow.estimate): pure Python, no synthesis."""

import json
import numpy as np
import pytest

from hwgen.dataflow import estimate
from hwgen.dataflow.branch import AddStreams
from hwgen.dataflow.fifo import FIFO, WidthConverter
from hwgen.dataflow.mvau import MVAU
from hwgen.dataflow.pool import Pool
from hwgen.dataflow.swg import SlidingWindow
from hwgen.dataflow.thresholding import Thresholding
from hwgen.dataflow.vvau import VVAU
from hwgen.dtypes import dtype, smallest_dtype

KINDS = ("MVAU", "VVAU", "Thresholding", "Requant", "SlidingWindow", "Pool", "GlobalPool", "FIFO",
         "WidthConverter", "Duplicate", "AddStreams", "Concat", "LabelSelect")


def mvau(w="INT4", a="UINT4", mw=64, mh=32, pe=2, simd=4, thr=True, mem="auto", seed=0):
    rng = np.random.default_rng(seed)
    wdt, idt = dtype(w), dtype(a)
    if wdt.name == "BIPOLAR":
        W = rng.choice([-1, 1], size=(mh, mw))
    else:
        W = rng.integers(wdt.min, wdt.max + 1, size=(mh, mw))
    L = MVAU("m", mw=mw, mh=mh, in_dt=idt, wdt=wdt, out_dt=idt, weights=W, pe=pe, simd=simd, mem_style=mem)
    lo, hi = L.acc_range
    if thr:
        odt = dtype("BIPOLAR") if idt.name == "BIPOLAR" else dtype("UINT2")
        n = 1 if odt.name == "BIPOLAR" else 3
        L.thresholds = np.sort(rng.integers(lo, hi + 1, size=(mh, n)), axis=1)
        L.out_dt, L.out_base = odt, (-1 if odt.name == "BIPOLAR" else 0)
    else:
        L.out_dt = smallest_dtype(lo, hi)
    L.validate()
    return L


def test_calibration_loads_and_covers_every_kind():
    with open(estimate.CALIBRATION_PATH) as f:
        doc = json.load(f)
    assert doc["format"] == "hwgen-calibration/1"
    for kind in KINDS:
        if kind == "Duplicate":
            continue                      # not synthesisable alone: built-in default
        assert kind in doc["xilinx"], kind
        assert set(doc["xilinx"][kind]) == {"LUT", "FF"}
    assert estimate.calibration()["format"] == "hwgen-calibration/1"
    for fam in ("ecp5", "ice40"):
        assert doc["families"][fam]["default"]["LUT"] > 0


def test_calibration_is_package_data():
    """The calibration ships inside the package (found by importlib.resources, as an installed wheel has it)
    and is the one the estimates use."""
    from importlib.resources import files
    doc = json.loads((files("hwgen.dataflow") / "calibration.json").read_text())
    assert doc == estimate.calibration()


def test_resources_are_whole_units():
    r = mvau().resources()
    assert set(r) == {"LUT", "FF", "BRAM18", "DSP"}
    assert all(isinstance(v, int) and v >= 0 for v in r.values())
    assert r["LUT"] > 0 and r["FF"] > 0


@pytest.mark.parametrize("w,a", [("BIPOLAR", "BIPOLAR"), ("INT2", "UINT2"), ("INT4", "UINT4"), ("BIPOLAR", "INT8")])
def test_mvau_monotone_in_pe_and_simd(w, a):
    # (not from PE = SIMD = 1: there a deep weight ROM dominates, and it shrinks as the
    # folding widens — yosys' counts do the same)
    luts = [mvau(w, a, pe=pe, simd=simd, mem="distributed").resources()["LUT"]
            for pe, simd in ((2, 4), (4, 8), (8, 16), (16, 32))]
    assert luts == sorted(luts), luts
    assert luts[-1] > luts[0]


def test_mvau_monotone_in_bits():
    luts = [mvau("INT2", "UINT2").resources()["LUT"], mvau("INT3", "UINT3").resources()["LUT"],
            mvau("INT4", "UINT4").resources()["LUT"]]
    assert luts == sorted(luts)


def test_dsp_rule():
    assert not estimate.dsp_multiplier(dtype("BIPOLAR"), dtype("INT8"))
    assert not estimate.dsp_multiplier(dtype("INT2"), dtype("UINT2"))
    assert estimate.dsp_multiplier(dtype("INT8"), dtype("INT8"))
    r = mvau("INT8", "INT8", pe=2, simd=4, thr=False).resources()
    assert r["DSP"] == 8
    assert mvau("INT2", "UINT2", pe=2, simd=4).resources()["DSP"] == 0


def test_memory_styles():
    # 512 × 32 ROM: 16 Kib, block RAM when auto
    assert estimate.memory(32, 512, "auto")["BRAM18"] == 1
    assert estimate.memory(32, 512, "distributed")["BRAM18"] == 0
    assert estimate.memory(32, 512, "distributed")["LUT"] > 100
    assert estimate.memory(8, 64, "auto")["style"] == "logic"
    assert estimate.memory(8, 64, "block")["BRAM18"] == 1
    # RAMs: LUTRAM when small, block RAM when the LUTRAM cells cost more
    assert estimate.memory(64, 64, "auto", rom=False)["style"] == "lutram"
    assert estimate.memory(8, 512, "auto", rom=False)["style"] == "block"
    with pytest.raises(ValueError, match="mem_style must be"):
        estimate.memory(8, 8, "ultra")
    big = dict(w="INT4", a="UINT4", mw=512, mh=64, pe=2, simd=4)
    blk, dist = mvau(**big, mem="block").resources(), mvau(**big, mem="distributed").resources()
    assert blk["BRAM18"] > 0 and dist["BRAM18"] == 0 and dist["LUT"] > blk["LUT"]


def test_other_kinds_monotone_in_pe():
    rng = np.random.default_rng(0)
    T = np.sort(rng.integers(-100, 100, size=(64, 3)), axis=1)
    th = [Thresholding("t", channels=64, in_dt=dtype("INT8"), out_dt=dtype("UINT2"), thresholds=T, pe=pe).resources()["LUT"]
          for pe in (1, 4, 16, 64)]
    assert th == sorted(th)
    W = rng.integers(-8, 8, size=(32, 9))
    vv = []
    for pe in (1, 4, 16):
        v = VVAU("v", channels=32, kernel_elems=9, in_dt=dtype("UINT4"), wdt=dtype("INT4"), out_dt=dtype("UINT4"),
                 weights=W, pe=pe)
        v.out_dt = v.acc_dt
        vv.append(v.resources()["LUT"])
    assert vv == sorted(vv)
    # a window generator grows with its line buffer (channels, bits); SIMD trades counter depth for width
    sw = [SlidingWindow("s", ifm=(8, 8), channels=c, kernel=(3, 3), pad=(1, 1, 1, 1), dt=dtype(b),
                        simd=4).resources()["LUT"] for c, b in ((8, "UINT2"), (16, "UINT2"), (16, "UINT4"))]
    assert sw == sorted(sw)
    po = [Pool("p", channels=32, kernel_elems=4, in_dt=dtype("UINT4"), out_dt=dtype("UINT4"), pe=pe).resources()["LUT"]
          for pe in (1, 8, 32)]
    assert po == sorted(po)
    ff = [FIFO("f", shape=(64,), dt=dtype("UINT8"), lanes=8, depth=d).resources() for d in (2, 32, 256, 4096)]
    assert ff[-1]["BRAM18"] > 0
    dwc = WidthConverter("d", shape=(64,), dt=dtype("UINT4"), lanes_in=8, lanes_out=4).resources()
    assert dwc["LUT"] > 0
    add = AddStreams("a", shape=(32,), in_dt=dtype("UINT4"), in_dt_b=dtype("UINT4"), out_dt=dtype("UINT5"), pe=8)
    assert add.resources()["LUT"] > 0


@pytest.mark.parametrize("family", ["xilinx", "ecp5", "ice40"])
def test_family_conversion(family):
    L = mvau("INT4", "UINT4", pe=4, simd=8)
    r = estimate.layer_resources(L, family)
    assert set(r) == {"LUT", "FF", "BRAM18", "DSP"}
    assert r["LUT"] > 0 and r["FF"] > 0
    if family == "xilinx":
        assert r == L.resources()
    else:
        assert r["DSP"] == 0          # ECP5 -nodsp / iCE40: products in LUTs
    d = mvau("INT8", "INT8", pe=2, simd=4, thr=False)
    assert estimate.layer_resources(d, "ecp5")["LUT"] > d.resources()["LUT"]   # the DSP products come back as LUTs


def test_family_conversion_block_ram():
    L = mvau("INT4", "UINT4", mw=512, mh=64, pe=2, simd=4, mem="block")
    x, i = estimate.layer_resources(L, "xilinx"), estimate.layer_resources(L, "ice40")
    assert x["BRAM18"] > 0 and i["BRAM18"] > 0


@pytest.mark.parametrize("bad", ["xc7", "Xilinx", "", None])
def test_bad_family(bad):
    L = mvau()
    with pytest.raises(ValueError, match=r"^family must be one of xilinx, ecp5, ice40, xcup, not "):
        estimate.layer_resources(L, bad)
    with pytest.raises(ValueError, match=r"^family must be"):
        estimate.convert_resources(L.resources(), "MVAU", bad)


def test_graph_resources_adds_up():
    """A graph of one layer costs that layer; two copies of it cost exactly twice as much."""
    import copy

    from hwgen.dataflow.graph import DataflowGraph
    a = mvau(mw=64, mh=32)
    b = copy.deepcopy(a)
    b.name = "m2"
    for fam in estimate.FAMILIES:
        one = estimate.graph_resources(DataflowGraph([a]), fam)
        assert one == estimate.layer_resources(a, fam)
        assert estimate.graph_resources(DataflowGraph([a, b]), fam) == {k: 2 * v for k, v in one.items()}


def test_report_renders_synth_section():
    from hwgen.report import render_synth
    est = {"LUT": 100, "FF": 50, "BRAM18": 0, "DSP": 0}
    syn = {"LUT": 90, "LUTRAM": 4, "FF": 60, "CARRY": 0, "MUX": 0, "BRAM18": 0, "DSP": 0}
    doc = {"command": "synth_xilinx -family xc7", "layers": [{"name": "m0", "kind": "MVAU", "estimate": est, "synth": syn}],
           "total": syn}
    md = render_synth({}, {"xilinx": doc, "ecp5": {**doc, "command": "synth_ecp5"}})
    assert "| m0 | MVAU | 100 | 94 | +6% |" in md
    assert "synth_ecp5" in md and "**total**" in md
