"""Builds without a target (the default device), the UltraScale+ parts and their URAM estimate."""

import json

import numpy as np
import pytest

from clirun import run_cli
from models import C, export_cnn, make_cnn

from hwgen.dataflow import DataflowGraph
from hwgen.dataflow.estimate import layer_resources, memory, uram288
from hwgen.dataflow.folding import fold_for
from hwgen.dataflow.mvau import MVAU
from hwgen.dataflow.target import Throughput
from hwgen.devices import DEFAULT_DEVICE, Budget, device, make_budget
from hwgen.dtypes import DType

# 3x16x16 image, 8-bit input, 3x3 convolutions (padding 1) 3->8, max-pool, 8->16, a classifier
CNN = {"in": (3, 16, 16), "in_bits": 8, "layers": [
    C(8, 3, p=1, bn=True), {"type": "maxpool", "k": 2}, C(16, 3, p=1, bn=True),
    {"type": "flatten"}, {"type": "fc", "out": 10, "w": 4, "act": None}]}


@pytest.fixture(scope="module")
def cnn_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("cnn") / "cnn.onnx"
    export_cnn(make_cnn(CNN, seed=0), CNN, str(path))
    return str(path)


# -- task: a build without a target -----------------------------------------------------------

def test_default_device_is_the_u250():
    assert DEFAULT_DEVICE == "xcu250"


def test_cnn_without_fps_builds_for_the_default_device(cnn_onnx, tmp_path, capsys):
    """1e6 frames/s is out of reach for this CNN (its first window generator alone streams a
    16x16 image as 16*16 windows of 3*3 words of all 3 channels: 2,304 cycles); without a target
    the build is the fastest folding that fits the U250, which is that: 100 MHz / 2,304 cycles."""
    code, out, err = run_cli(["build", cnn_onnx, "-o", tmp_path / "b"], capsys)
    assert code == 0, err
    fps = 100e6 / (16 * 16 * 9)                      # 43,402.8 frames/s
    man = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert man["cycles_per_frame"] == 2304 and man["fps"] == pytest.approx(fps)
    line = ("[hwgen] no --fps given: folded for the default device, xcu250 at 90 % (1,555,200 LUT, 3,110,400 FF, "
            "4,838 BRAM18, 11,059 DSP, 1,152 URAM): 43,403 fps, the fastest folding that fits\n")
    assert line in err
    md = (tmp_path / "b" / "report.md").read_text()
    assert ("- folding target: none given; folded for the default device xcu250 (at 90 % of it): "
            "43,403 fps, the fastest folding that fits\n") in md
    rep = json.loads((tmp_path / "b" / "report.json").read_text())
    assert rep["default_device"] == {"device": "xcu250", "margin": 0.9,
                                     "reached": "43,403 fps, the fastest folding that fits"}


def test_default_device_at_the_margin_given(cnn_onnx, tmp_path):
    import hwgen
    b = hwgen.build(cnn_onnx, tmp_path / "b", margin=0.5, progress=False)
    rep = json.loads((tmp_path / "b" / "report.json").read_text())
    assert rep["default_device"]["margin"] == 0.5 and b.cycles_per_frame == 2304


def test_unreachable_fps_names_the_limiting_layer(cnn_onnx, tmp_path, capsys):
    import hwgen
    conv = [n.name for n in hwgen.load(cnn_onnx).graph.node if n.op_type == "Conv"][0]
    code, out, err = run_cli(["build", cnn_onnx, "-o", tmp_path / "b", "--fps", "1e6", "-q"], capsys)
    assert code == 2
    assert err == (f"hwgen: error: layer conv0 (node {conv}, module 1: QuantConv2d): target 1e+06 fps at 100 MHz "
                   "allows 100 cycles per frame, but the fastest folding (pe=1, simd=27) needs 2304 (its sliding "
                   "window swg0 streams C=3 channels a cycle: 2304 words per frame); lower the target or raise the clock\n")
    assert not (tmp_path / "b").exists()


def test_small_mlp_without_fps_is_the_one_million_fps_build(tiny_onnx, tmp_path):
    """A network that reaches 1e6 frames/s within the U250 builds, without a target, exactly what
    an explicit 1e6 target builds (the default of earlier versions): the same Verilog and folding."""
    import hwgen
    a = hwgen.build(tiny_onnx, tmp_path / "a", progress=False)
    hwgen.build(tiny_onnx, tmp_path / "b", fps=1e6, progress=False)
    for f in ("rtl/hwgen_top.v", "folding.json"):
        assert (tmp_path / "a" / f).read_text() == (tmp_path / "b" / f).read_text()
    assert a.cycles_per_frame <= 100
    assert json.loads((tmp_path / "a" / "report.json").read_text())["default_device"]["reached"] == \
        "1,000,000 fps, the default rate"


# -- task: UltraScale+ parts and URAM -----------------------------------------------------------

def test_ultrascale_plus_parts():
    # the data sheets' counts (DS962, DS963, DS891); BRAM18 = 2 x RAMB36
    assert device("xcu250") == {"name": "xcu250", "family": "xcup", "LUT": 1728000, "FF": 3456000, "BRAM18": 5376,
                                "DSP": 12288, "URAM": 1280, "part": "Alveo U250 (XCU250)"}
    assert device("xcu280") == {"name": "xcu280", "family": "xcup", "LUT": 1304000, "FF": 2607000, "BRAM18": 4032,
                                "DSP": 9024, "URAM": 960, "part": "Alveo U280 (XCU280)"}
    assert device("xczu7ev") == {"name": "xczu7ev", "family": "xcup", "LUT": 230400, "FF": 460800, "BRAM18": 624,
                                 "DSP": 1728, "URAM": 96, "part": "Zynq UltraScale+ ZU7EV (ZCU104)"}
    assert "URAM" not in device("xc7z020")
    # 90 % of each, rounded down
    assert make_budget("xczu7ev").limits == {"LUT": 207360, "FF": 414720, "BRAM18": 561, "DSP": 1555, "URAM": 86}
    assert make_budget("xc7z020").limits == {"LUT": 47880, "FF": 95760, "BRAM18": 252, "DSP": 198}


@pytest.mark.parametrize("width, depth, n", [(72, 4096, 1), (73, 4096, 2), (72, 4097, 2), (1, 1, 1), (4096, 1024, 57),
                                             (72, 32768, 8), (144, 8192, 4)])
def test_uram288_blocks(width, depth, n):
    assert uram288(width, depth) == n


def _mvau(mw, mh, bits, pe, simd, mem_style="auto"):
    """An MVAU without thresholds whose weight ROM is (mw/simd)*(mh/pe) words of pe*simd*bits bits."""
    from streamsim import random_values
    wdt = DType(f"INT{bits}")
    W = random_values(np.random.default_rng(0), wdt, (mh, mw))
    fc = MVAU("fc0", mw=mw, mh=mh, in_dt=DType("UINT4"), wdt=wdt, out_dt=None, weights=W, pe=pe, simd=simd)
    fc.out_dt = fc.acc_dt
    fc.mem_style = mem_style
    return fc


def test_deep_rom_stays_in_bram18_while_uram_cannot_be_initialised():
    """UltraScale+ URAM288 has no bitstream initialisation: a weight ROM is priced in RAMB18s."""
    fc = _mvau(576, 512, 8, 1, 9)
    x, u = layer_resources(fc, "xilinx"), layer_resources(fc, "xcup")
    assert u["URAM"] == 0 and u["BRAM18"] == x["BRAM18"]


@pytest.fixture
def uram_roms(monkeypatch):
    """The URAM rule as it applies once weights are written at run time."""
    import hwgen.dataflow.estimate as est
    monkeypatch.setattr(est, "URAM_ROMS", True)


def test_deep_rom_goes_to_uram_on_xcup(uram_roms):
    """576x512 INT8 weights at PE=1, SIMD=9: a ROM of 72-bit words, 64*512 = 32,768 deep: in RAMB18s
    (16K x 1 for a depth over 16,384: 2 deep x 72 wide) 144 of them, in URAM288 (4K x 72) 8, the bits
    of 128 RAMB18s: URAM is cheaper."""
    fc = _mvau(576, 512, 8, 1, 9)
    assert memory(72, 32768)["BRAM18"] == 144
    x, u = layer_resources(fc, "xilinx"), layer_resources(fc, "xcup")
    assert "URAM" not in x
    assert u["URAM"] == 8
    assert u["BRAM18"] == x["BRAM18"] - 144
    assert (u["LUT"], u["FF"], u["DSP"]) == (x["LUT"], x["FF"], x["DSP"])
    # forced into block RAM, it stays in RAMB18s
    b = layer_resources(_mvau(576, 512, 8, 1, 9, "block"), "xcup")
    assert b["URAM"] == 0 and b["BRAM18"] == x["BRAM18"]


def test_wide_shallow_rom_stays_in_bram18_on_xcup():
    """1024x1024 INT4 at PE=SIMD=32: 4,096-bit words, 1,024 deep: 228 RAMB18s (1K x 18), or 57 URAM288s
    (the bits of 912 RAMB18s): block RAM is cheaper."""
    fc = _mvau(1024, 1024, 4, 32, 32)
    assert memory(4096, 1024)["BRAM18"] == 228
    x, u = layer_resources(fc, "xilinx"), layer_resources(fc, "xcup")
    assert u["URAM"] == 0 and u["BRAM18"] == x["BRAM18"]


def test_folding_honours_the_uram_limit(uram_roms):
    """A deep-ROM layer: with no URAM allowed the search keeps its weights in RAMB18s, with few
    RAMB18s allowed it puts them in URAM; either way the result fits its budget."""
    target = Throughput(100.0, 100e6 / (576 * 64))      # 36,864 cycles: at least 9 lanes
    no_uram = fold_for(DataflowGraph([_mvau(576, 576, 8, 1, 1)], name="g"), target,
                       budget=Budget("xcup", {"URAM": 0}), return_result=True)
    assert no_uram.fits and no_uram.resources["URAM"] == 0 and no_uram.resources["BRAM18"] > 0
    few = no_uram.resources["BRAM18"] // 4
    r = fold_for(DataflowGraph([_mvau(576, 576, 8, 1, 1)], name="g"), target,
                 budget=Budget("xcup", {"BRAM18": few}), return_result=True)
    assert r.fits and r.resources["BRAM18"] <= few and r.resources["URAM"] > 0
