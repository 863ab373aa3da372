"""Resource-aware folding search, devices, FINN-style greedy baseline and ``explore`` (pure Python)."""

from dataclasses import fields

import numpy as np
import pytest

from clirun import run_cli

from hwgen.dataflow import MVAU, DataflowGraph, Pool, SlidingWindow
from hwgen.dataflow.folding import (FoldingSearch, apply_folding, copy_graph, cycle_budget, finn_greedy_folding,
                                    folded_layers, plumbed_resources, search_folding)
from hwgen.devices import DEVICES, Budget, device, make_budget
from hwgen.dtypes import DType
from hwgen.errors import FoldingError, HwgenError

CLOCK = 100.0


def _mvau(rng, name, mw, mh, spatial=(), w="INT4", a="UINT4", o="UINT4", thresholds=True):
    wdt, idt = DType(w), DType(a)
    W = rng.integers(wdt.min, wdt.max + 1, (mh, mw))
    m = MVAU(name, mw=mw, mh=mh, in_dt=idt, wdt=wdt, out_dt=DType(o if thresholds else "INT24"), weights=W,
             spatial=tuple(spatial))
    if thresholds:
        lo, hi = m.acc_range
        n = DType(o).max - DType(o).min
        m.thresholds = np.sort(rng.integers(lo, hi + 1, (mh, n)), axis=1)
        m.out_base = DType(o).min
    m.validate()
    return m


def mlp(seed=0, sizes=(64, 64, 32, 10), w="INT4", a="UINT4"):
    rng = np.random.default_rng(seed)
    layers = [_mvau(rng, f"fc{i}", sizes[i], sizes[i + 1], w=w, a=a, thresholds=i + 2 < len(sizes))
              for i in range(len(sizes) - 1)]
    return DataflowGraph(layers, name="mlp")


def cnn(seed=0):
    """8×8×1 → conv3×3/pad1 8 → maxpool 2 → conv3×3/pad1 16 → FC 10: the digits CNN's shape."""
    rng = np.random.default_rng(seed)
    u4 = DType("UINT4")
    layers = [
        SlidingWindow("swg0", ifm=(8, 8), channels=1, kernel=(3, 3), pad=(1, 1, 1, 1), dt=u4),
        _mvau(rng, "conv0", 9, 8, spatial=(8, 8)),
        SlidingWindow("swg1", ifm=(8, 8), channels=8, kernel=(2, 2), stride=(2, 2), dt=u4, depthwise=True),
        Pool("pool0", channels=8, kernel_elems=4, mode="max", in_dt=u4, out_dt=u4, spatial=(4, 4)),
        SlidingWindow("swg2", ifm=(4, 4), channels=8, kernel=(3, 3), pad=(1, 1, 1, 1), dt=u4),
        _mvau(rng, "conv1", 72, 16, spatial=(4, 4), w="INT3"),
        _mvau(rng, "fc0", 256, 10, thresholds=False),
    ]
    g = DataflowGraph(layers, name="cnn")
    g.validate()
    return g


MODELS = {"mlp": mlp, "tfc": lambda: mlp(1, (784, 64, 64, 64, 10), w="INT2", a="UINT2"), "cnn": cnn}


def _folds(g):
    return {l.name: dict(l.folding) for l in g.layers if l.folding}


# ------------------------------------------------------------------------------------------ devices
def test_device_table_and_lookup():
    for name in ("xc7z020", "xc7a35t", "xc7a100t", "ecp5-25k", "ecp5-45k", "ecp5-85k", "ice40-up5k", "ice40-hx8k"):
        assert name in DEVICES
    d = device("XC7Z020")
    assert d == {"name": "xc7z020", "family": "xilinx", "LUT": 53200, "FF": 106400, "BRAM18": 280, "DSP": 220,
                 "part": "Zynq-7020 (PYNQ-Z1/Z2)"}
    with pytest.raises(HwgenError) as e:
        device("xc7z999")
    assert str(e.value) == f"device must be one of {', '.join(DEVICES)}, not 'xc7z999'"


def test_budget_margin_and_explicit_limits():
    b = make_budget("ecp5-85k")
    assert (b.family, b.limits) == ("ecp5", {"LUT": 75276, "FF": 75276, "BRAM18": 187, "DSP": 140})
    b = make_budget("ice40-up5k", max_lut=4000, margin=1.0)
    assert b.limits == {"LUT": 4000, "FF": 5280, "BRAM18": 30, "DSP": 8}
    b = make_budget(max_lut=1234)
    assert (b.family, b.limits, b.describe()) == ("xilinx", {"LUT": 1234}, "the limits (1,234 LUT)")
    assert make_budget() is None
    with pytest.raises(HwgenError) as e:
        make_budget("xc7z020", margin=1.5)
    assert str(e.value) == "--margin must be a number in (0, 1], not 1.5"
    with pytest.raises(HwgenError) as e:
        make_budget(max_dsp=-1)
    assert str(e.value) == "--max-dsp must be a non-negative integer, not -1"


# ------------------------------------------------------------------------------------------ search
@pytest.mark.parametrize("key", list(MODELS))
def test_search_no_more_luts_than_finn_greedy(key):
    g = MODELS[key]()
    s = FoldingSearch(g)
    for fps in (1e3, 1e4, 1e5, 1e6):
        b = cycle_budget(fps, CLOCK)
        if b < s.fastest:
            continue
        ours = search_folding(copy_graph(g), fps, CLOCK, return_result=True)
        greedy = finn_greedy_folding(copy_graph(g), fps, CLOCK)
        gres, gcyc = plumbed_resources(greedy)
        assert ours.cycles <= b
        if gcyc <= b:
            assert ours.resources["LUT"] <= gres["LUT"], (fps, ours, gres)


def test_finn_greedy_order():
    """SIMD first (while SIMD · weight bits <= 36), then PE; the relaxation balances to what was reached."""
    g = mlp()
    finn_greedy_folding(g, 1e6, CLOCK)                   # 100 cycles: fc0 64×64 needs PE·SIMD >= 41
    assert g.layer("fc0").folding == {"pe": 8, "simd": 8}   # SIMD stops at 8 (4-bit weights: 9 · 4 > 36)
    assert all(l.cycles() <= 100 for l in g.layers)
    g = mlp()
    finn_greedy_folding(g, 1e4, CLOCK)                   # 10,000 cycles: SIMD alone suffices
    assert g.layer("fc0").folding == {"pe": 1, "simd": 1}


def test_search_sets_graph_and_keeps_window_tie_for_depthwise():
    g = cnn()
    r = search_folding(g, 2e4, CLOCK, return_result=True)
    assert g.cycles() <= 5000 and r.cycles <= 5000
    assert g.layer("swg1").simd == g.layer("pool0").pe           # depthwise: always tied
    assert _folds(g) == {k: v for k, v in r.folding.items()}
    assert plumbed_resources(g, fifos="schedule")[0]["LUT"] <= plumbed_resources(
        finn_greedy_folding(cnn(), 2e4, CLOCK), fifos="schedule")[0]["LUT"]


def test_search_is_fast_and_deterministic():
    import time
    g = MODELS["tfc"]()
    t = time.perf_counter()
    a = search_folding(copy_graph(g), 1e5, CLOCK, return_result=True)
    assert time.perf_counter() - t < 3
    b = search_folding(copy_graph(g), 1e5, CLOCK, return_result=True)
    assert a.folding == b.folding and a.resources == b.resources


def test_fits_device():
    g = cnn()
    b = make_budget("ice40-up5k")
    r = search_folding(g, 1e4, CLOCK, budget=b, return_result=True)
    assert r.fits and r.family == "ice40" and r.cycles <= 10000
    used, _ = plumbed_resources(g, "ice40")
    assert b.fits(used)


def test_fps_and_device_meets_both_and_costs_as_without_device():
    g = mlp()
    free = search_folding(copy_graph(g), 1e6, CLOCK, family="xilinx", return_result=True)
    r = search_folding(g, 1e6, CLOCK, budget=make_budget("xc7z020"), return_result=True)
    assert r.fits and r.cycles <= 100
    assert r.resources["LUT"] <= free.resources["LUT"]         # with a device, block RAM may stand in for LUTs


def test_cannot_fit_error_text_in_full():
    g = mlp()
    b = make_budget("ice40-up5k")
    s = FoldingSearch(g, (), "ice40", mem_styles=True)
    need = s.solve(cycle_budget(1e7, CLOCK))
    fit = s.fastest_fitting(b)
    assert not b.fits(need.resources) and fit is not None and fit.cycles > 10
    u = {"LUT": "LUT4", "FF": "FF", "BRAM18": "EBR", "DSP": "MAC16"}

    def res(r):
        return ", ".join(f"{r[k]:,} {u[k]}" for k in ("LUT", "FF", "BRAM18", "DSP"))
    over = ", ".join(f"{need.resources[k]:,} {u[k]} > {v:,}" for k, v in b.limits.items() if need.resources[k] > v)
    with pytest.raises(FoldingError) as e:
        search_folding(g, 1e7, CLOCK, budget=b)
    assert str(e.value) == (
        f"target 1e+07 fps at 100 MHz (10 cycles per frame) does not fit ice40-up5k at 90 % (4,752 LUT4, 4,752 FF, "
        f"27 EBR, 7 MAC16): the least-LUT folding meeting it needs {res(need.resources)} ({over}); "
        f"the fastest folding that fits reaches "
        f"{100e6 / fit.cycles:,.0f} fps ({fit.cycles:,} cycles per frame, {res(fit.resources)}); "
        f"lower the target or choose a larger device")


def test_nothing_fits_error_text_in_full():
    g = mlp()
    b = make_budget(max_lut=100)
    s = FoldingSearch(g, mem_styles=True)
    slow = s.solve(s.slowest, b)
    with pytest.raises(FoldingError) as e:
        search_folding(g, None, CLOCK, budget=b)
    assert str(e.value) == (
        f"no folding fits the limits (100 LUT): even the slowest ({slow.cycles:,} cycles per frame, "
        f"{100e6 / slow.cycles:,.0f} fps at 100 MHz) needs {slow.resources['LUT']:,} LUT, {slow.resources['FF']:,} FF, "
        f"{slow.resources['BRAM18']:,} BRAM18, {slow.resources['DSP']:,} DSP ({slow.resources['LUT']:,} LUT > 100); choose a larger device or raise the limits")


def test_device_only_maximises_throughput():
    g = cnn()
    b = make_budget(max_lut=2500)
    r = search_folding(g, None, CLOCK, budget=b, return_result=True)
    assert r.fits and r.resources["LUT"] <= 2500
    s = FoldingSearch(cnn())
    faster = [c for c in s.budgets() if c < r.cycles]
    assert faster, "the limit should bind"
    assert not s.solve(max(faster), b).fits               # the next faster bottleneck does not fit
    # a looser budget gives at least that throughput
    r2 = search_folding(cnn(), None, CLOCK, budget=make_budget(max_lut=4000), return_result=True)
    assert r2.cycles <= r.cycles


def test_target_error_unchanged_when_a_layer_is_too_slow():
    g = mlp()
    with pytest.raises(FoldingError) as e:
        search_folding(g, 2e8, CLOCK)
    assert str(e.value) == "target 2e+08 fps at 100 MHz leaves less than one cycle per frame"
    with pytest.raises(FoldingError) as e:
        search_folding(cnn(), 1e6, CLOCK)
    assert str(e.value) == ("layer conv0: target 1e+06 fps at 100 MHz allows 100 cycles per frame, but the fastest "
                            "folding (pe=1, simd=9) needs 576 (its sliding window swg0 streams C=1 channels a cycle: "
                            "576 words per frame); lower the target or raise the clock")


def test_fixed_layers_are_kept():
    g = mlp()
    apply_folding(g, {"fc1": {"pe": 2, "simd": 4}})
    search_folding(g, 1e6, CLOCK, fixed=("fc1",))
    assert g.layer("fc1").folding == {"pe": 2, "simd": 4}


# ------------------------------------------------------------------------------------------ options
def test_option_keys_accepted():
    g = mlp()
    apply_folding(g, {"fc0": {"mem_style": "block"}, "fc1": {"pe": 2, "mem_style": "distributed"}})
    assert g.layer("fc0").mem_style == "block" and g.layer("fc1").mem_style == "distributed"
    assert folded_layers({"fc0": {"mem_style": "block"}, "fc1": {"pe": 2, "mem_style": "distributed"}}) == ("fc1",)
    if "pipeline" in {f.name for f in fields(MVAU)}:
        apply_folding(g, {"fc0": {"pipeline": 2}, "fc1": {"pipeline": "none"}})
        assert g.layer("fc0").pipeline == 2 and g.layer("fc1").pipeline == "none"


@pytest.mark.parametrize("params,msg", [
    ({"fc0": {"mem_style": "ultra"}}, "folding: layer fc0: mem_style must be one of auto, distributed, block, not 'ultra'"),
    ({"pool0": {"mem_style": "block"}}, "folding: layer pool0: parameter 'mem_style' must be one of pe, not 'mem_style'"),
    ({"conv0": {"pes": 2}}, "folding: layer conv0: parameter 'pes' must be one of pe, simd, not 'pes'"),
    ({"conv0": {"pe": 0}}, "folding: layer conv0: pe must be a positive integer, not 0"),
])
def test_option_keys_rejected(params, msg):
    g = cnn()
    with pytest.raises(FoldingError) as e:
        apply_folding(g, params)
    assert str(e.value) == msg


def test_pipeline_key_rejected():
    if "pipeline" not in {f.name for f in fields(MVAU)}:
        pytest.skip("MVAU has no pipeline field in this tree")
    with pytest.raises(FoldingError) as e:
        apply_folding(mlp(), {"fc0": {"pipeline": "fast"}})
    assert str(e.value) == "folding: layer fc0: pipeline must be one of auto, none or a non-negative integer, not 'fast'"
    with pytest.raises(FoldingError) as e:
        apply_folding(cnn(), {"pool0": {"pipeline": 1}})
    assert str(e.value) == "folding: layer pool0: parameter 'pipeline' must be one of pe, not 'pipeline'"


def test_throughput_is_the_one_conversion():
    import math

    from hwgen.dataflow.target import Throughput
    for clk, fps in ((100.0, 1e6), (137.0, 3e5), (100.0, 100e6 / 7), (250.5, 12345.0), (100.0, 2e8)):
        t = Throughput(clk, fps)
        assert t.cycles == cycle_budget(fps, clk) == int(math.floor(clk * 1e6 / fps + 1e-6))
        if t.cycles:
            assert Throughput.at_cycles(t.cycles, clk).cycles == t.cycles
            assert t.fps_at(t.cycles) == clk * 1e6 / t.cycles      # the same float, bit for bit
    assert Throughput(100.0, 1e6).describe() == "1e+06 fps at 100 MHz"
    with pytest.raises(FoldingError, match="^the target frame rate must be a positive number, not 0$"):
        _ = Throughput(100.0, 0).cycles
    with pytest.raises(FoldingError, match=r"^the clock \(MHz\) must be a positive number, not -1$"):
        _ = Throughput(-1, 1e6).cycles


def test_pareto_fronts_per_lanes():
    from types import SimpleNamespace as O

    from hwgen.dataflow.folding.pareto import fronts
    a, b, c, d = O(lin=1, lout=1, res=(2, 2)), O(lin=1, lout=1, res=(1, 3)), O(lin=1, lout=1, res=(2, 3)), \
        O(lin=2, lout=1, res=(9, 9))
    assert fronts([a, b, c, d], order=lambda o: o.res) == [[b, a], [d]]      # c: a beats it on both

# ------------------------------------------------------------------------------------------ explore
def test_explore_rows_monotone_and_png(tmp_path):
    from hwgen.explore import format_table, plot, sweep
    g = cnn()
    rows = sweep(g, clock_mhz=CLOCK, points=6)
    ours = [r for r in rows if r["method"] == "hwgen"]
    greedy = [r for r in rows if r["method"] == "finn-greedy"]
    assert len(ours) >= 5 and len(greedy) == len(ours)
    for a, b in zip(ours, ours[1:]):                  # more fps -> more or equal LUT
        assert a["target_fps"] < b["target_fps"] and a["LUT"] <= b["LUT"]
    for o, gr in zip(ours, greedy):
        assert o["meets_target"] and o["fits"] is None
        if gr["meets_target"]:
            assert o["LUT"] <= gr["LUT"]
    text = format_table(rows)
    assert text.splitlines()[0].split()[:4] == ["method", "target", "fps", "cycles/frame"]
    png = plot(rows, str(tmp_path / "f.png"))
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_explore_with_device():
    from hwgen.explore import sweep
    limits = make_budget("ice40-up5k")
    rows = sweep(cnn(), clock_mhz=CLOCK, points=6, limits=limits)
    assert all(isinstance(r["fits"], bool) for r in rows)
    fastest = [r for r in rows if r["source"] == "fastest fitting"]
    assert len(fastest) == 1 and fastest[0]["fits"]
    ours = [r for r in rows if r["method"] == "hwgen" and r["source"] != "fastest fitting"]
    fit = [r for r in ours if r["fits"]]
    assert fit and all(r["fps"] <= fastest[0]["fps"] * (1 + 1e-9) for r in fit)
    for a, b in zip(fit, fit[1:]):
        assert a["LUT"] <= b["LUT"]


def test_budget_describe():
    b = Budget("xilinx", {"LUT": 10, "FF": None}, "xc7z020", 0.5)
    assert b.describe() == "xc7z020 at 50 % (10 LUT)"
    assert b.over({"LUT": 11, "FF": 5, "BRAM18": 0, "DSP": 0}) == [("LUT", 11, 10)]


# ------------------------------------------------------------------------------------------ CLI
@pytest.fixture(scope="module")
def small_onnx(tmp_path_factory):
    from models import L, export, make_mlp
    spec = {"in": 16, "in_bits": 4, "layers": [L(12, 3, a=3, bn=True, bias="float"), L(4, 4, act=None)]}
    path = str(tmp_path_factory.mktemp("small") / "small.onnx")
    export(make_mlp(spec, 2), spec, path)
    return path




@pytest.mark.filterwarnings("ignore")
def test_cli_build_device(small_onnx, tmp_path, capsys):
    import json
    code, _, err = run_cli(["build", small_onnx, "-o", tmp_path / "a", "--device", "nope"], capsys)
    assert code == 2 and err.strip().splitlines()[-1] == f"hwgen: error: device must be one of {', '.join(DEVICES)}, not 'nope'"
    # device only: the fastest folding that fits (this MLP fits fully parallel)
    code, _, err = run_cli(["build", small_onnx, "-o", tmp_path / "b", "--device", "xc7z020", "-q"], capsys)
    assert code == 0, err
    man = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert man["cycles_per_frame"] == 1
    # cannot fit: one plain line
    code, _, err = run_cli(["build", small_onnx, "-o", tmp_path / "c", "--fps", "1e6", "--max-lut", "10"], capsys)
    lines = [l for l in err.splitlines() if l.startswith("hwgen: error:")]
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith("hwgen: error: target 1e+06 fps at 100 MHz (100 cycles per frame) does not fit the limits "
                               "(10 LUT): the least-LUT folding meeting it needs ")
    assert lines[0].endswith("; no folding fits, not even the slowest; choose a larger device or raise the limits")
    assert not (tmp_path / "c").exists()


@pytest.mark.filterwarnings("ignore")
def test_cli_explore_png(small_onnx, tmp_path, capsys):
    png = tmp_path / "frontier.png"
    code, out, err = run_cli(["explore", small_onnx, "--png", png, "--points", "4", "--device", "ice40-up5k"], capsys)
    assert code == 0, err
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert out.splitlines()[0].split()[:3] == ["method", "target", "fps"] and "finn-greedy" in out
    assert "[hwgen] explore:" in err
