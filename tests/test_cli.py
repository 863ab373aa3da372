"""CLI, errors (ARCHITECTURE §6), determinism and the IR round trip."""

import filecmp
import json
import os

import numpy as np
import pytest

from clirun import run_cli

from models import L, export, make_mlp

pytestmark = pytest.mark.filterwarnings("ignore")




def assert_one_line_error(code, err, message):
    assert code == 2
    lines = [l for l in err.splitlines() if l.startswith("hwgen: error:")]
    assert lines == [f"hwgen: error: {message}"], err
    assert "Traceback" not in err


def assert_nothing_written(parent, out):
    assert not os.path.exists(out)
    assert not [p for p in os.listdir(parent) if p.startswith(".hwgen-")]


def test_not_onnx(tmp_path, capsys):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"this is not a protobuf \xff\xfe")
    code, _, err = run_cli(["build", bad, "-o", tmp_path / "out"], capsys)
    assert_one_line_error(code, err, f"{bad}: not an ONNX file (DecodeError)")
    assert_nothing_written(tmp_path, tmp_path / "out")


def test_missing_file(tmp_path, capsys):
    code, _, err = run_cli(["build", tmp_path / "nope.onnx", "-o", tmp_path / "out"], capsys)
    assert_one_line_error(code, err, f"model {tmp_path / 'nope.onnx'}: no such file")


@pytest.fixture(scope="module")
def small_onnx(tmp_path_factory):
    spec = {"in": 8, "in_bits": 4, "layers": [L(6, 3, a=3, bn=True, bias="float"), L(4, 4, act=None)]}
    path = str(tmp_path_factory.mktemp("small") / "small.onnx")
    export(make_mlp(spec, 2), spec, path)
    return path


def test_unsupported_op(tmp_path, capsys):
    import brevitas.nn as qnn
    import torch.nn as nn
    spec = {"in": 6}
    m = nn.Sequential(qnn.QuantIdentity(bit_width=4, return_quant_tensor=True), qnn.QuantLinear(6, 4, bias=False, weight_bit_width=4),
                      nn.Sigmoid(), qnn.QuantIdentity(bit_width=4)).eval()
    path = tmp_path / "sig.onnx"
    export(m, spec, str(path))
    code, _, err = run_cli(["build", path, "-o", tmp_path / "out"], capsys)
    assert code == 2
    errs = [l for l in err.splitlines() if l.startswith("hwgen: error:")]
    from hwgen.lower import SUPPORTED_OPS
    assert "Conv" in SUPPORTED_OPS and "Sigmoid" not in SUPPORTED_OPS
    assert errs == ["hwgen: error: node node_sigmoid (module 2: Sigmoid): op Sigmoid is not supported; accepted: "
                    "quantisers, MatMul, Gemm, Conv, per-channel element-wise ops (Add, Mul, BatchNormalization, Relu, …), "
                    "pooling, reshapes, Concat, ArgMax"]
    assert len(errs[0]) < 300
    assert_nothing_written(tmp_path, tmp_path / "out")


def test_bit_width_out_of_range(tmp_path, capsys):
    import brevitas.nn as qnn
    import torch.nn as nn
    m = nn.Sequential(qnn.QuantIdentity(bit_width=4, return_quant_tensor=True), qnn.QuantLinear(6, 4, bias=False, weight_bit_width=4),
                      qnn.QuantReLU(bit_width=20)).eval()
    path = tmp_path / "wide.onnx"
    export(m, {"in": 6}, str(path))
    code, _, err = run_cli(["build", path, "-o", tmp_path / "out"], capsys)
    assert_one_line_error(code, err, "node node__symbolic_2 (Quant, module 2: QuantReLU): activation bit width 20 is out of range; accepted: 1 to 16")
    assert_nothing_written(tmp_path, tmp_path / "out")


def test_float_weights(tmp_path, capsys):
    import brevitas.nn as qnn
    import torch.nn as nn
    m = nn.Sequential(qnn.QuantIdentity(bit_width=4, return_quant_tensor=False), nn.Linear(6, 4, bias=False),
                      qnn.QuantReLU(bit_width=4)).eval()
    path = tmp_path / "float.onnx"
    export(m, {"in": 6}, str(path))
    code, _, err = run_cli(["build", path, "-o", tmp_path / "out"], capsys)
    errs = [l for l in err.splitlines() if l.startswith("hwgen: error:")]
    assert code == 2 and len(errs) == 1 and errs[0].endswith("weights must be quantised (a Quant/BipolarQuant on the weight), not float")


def test_folding_does_not_divide(small_onnx, tmp_path, capsys):
    f = tmp_path / "fold.json"
    f.write_text(json.dumps({"fc0": {"pe": 4, "simd": 8}}))
    code, _, err = run_cli(["build", small_onnx, "-o", tmp_path / "out", "--folding", f], capsys)
    assert_one_line_error(code, err, "layer fc0 (node node_linear, module 1: QuantLinear): PE=4 must divide MH=6")
    assert_nothing_written(tmp_path, tmp_path / "out")


def test_folding_unknown_layer(small_onnx, tmp_path, capsys):
    f = tmp_path / "fold.json"
    f.write_text(json.dumps({"fc9": {"pe": 1}}))
    code, _, err = run_cli(["build", small_onnx, "-o", tmp_path / "out", "--folding", f], capsys)
    assert_one_line_error(code, err, f"folding file {f}: layer 'fc9' is not in the model; layers are fc0, fc1")
    assert_nothing_written(tmp_path, tmp_path / "out")


def test_folding_unknown_parameter(small_onnx, tmp_path, capsys):
    f = tmp_path / "fold.json"
    f.write_text(json.dumps({"fc0": {"pes": 2}}))
    code, _, err = run_cli(["build", small_onnx, "-o", tmp_path / "out", "--folding", f], capsys)
    assert_one_line_error(code, err, f"folding file {f}: layer fc0: parameter 'pes' must be one of pe, simd, not 'pes'")


def test_target_cannot_be_met(small_onnx, tmp_path, capsys):
    code, _, err = run_cli(["build", small_onnx, "-o", tmp_path / "out", "--fps", "2e8", "--clock-mhz", "100"], capsys)
    assert_one_line_error(code, err, "target 2e+08 fps at 100 MHz leaves less than one cycle per frame")
    assert_nothing_written(tmp_path, tmp_path / "out")


def test_search_says_which_layer_is_too_slow():
    from hwgen.dataflow import DataflowGraph, MVAU
    from hwgen.dataflow.folding import search_folding
    from hwgen.dtypes import DType
    from hwgen.errors import FoldingError
    m = MVAU("conv0", mw=6, mh=4, in_dt=DType("UINT2"), wdt=DType("INT2"), out_dt=DType("INT6"),
             weights=np.ones((4, 6), dtype=np.int64), spatial=(5,))
    with pytest.raises(FoldingError) as e:
        search_folding(DataflowGraph([m]), fps=50e6, clock_mhz=100)
    assert str(e.value) == ("layer conv0: target 5e+07 fps at 100 MHz allows 2 cycles per frame, but the fastest "
                            "folding (pe=4, simd=6) needs 5; lower the target or raise the clock")
    search_folding(DataflowGraph([m]), fps=20e6, clock_mhz=100)
    assert m.cycles() == 5 and (m.pe, m.simd) == (4, 6)
    m.impl = "rom"                  # weights in ROMs: at a low target a folded layer is the cheapest
    search_folding(DataflowGraph([m]), fps=1e6, clock_mhz=100)
    assert m.cycles() <= 100 and m.pe * m.simd < 24
    m.impl = "auto"                 # constant weights priced too: four constant dot products of ones beat a ROM
    search_folding(DataflowGraph([m]), fps=1e6, clock_mhz=100)
    assert (m.pe, m.simd) == (4, 6)


def test_failed_build_keeps_previous_build(small_onnx, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, _ = run_cli(["build", small_onnx, "-o", out, "-q"], capsys)
    assert code == 0
    before = (out / "rtl" / "hwgen_top.v").read_bytes()
    f = tmp_path / "fold.json"
    f.write_text(json.dumps({"fc0": {"pe": 5}}))
    code, _, err = run_cli(["build", small_onnx, "-o", out, "--folding", f], capsys)
    assert_one_line_error(code, err, "layer fc0 (node node_linear, module 1: QuantLinear): PE=5 must divide MH=6")
    assert (out / "rtl" / "hwgen_top.v").read_bytes() == before


def test_build_writes_contract_files(small_onnx, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, _ = run_cli(["build", small_onnx, "-o", out, "--fps", "5e6"], capsys)
    assert code == 0 and ("| fc0 | MVAU |" in stdout or "| fc0 | ConstMVAU |" in stdout)
    for f in ("rtl/hwgen_top.v", "manifest.json", "model.json", "params.npz", "report.md", "report.json", "source.onnx"):
        assert (out / f).is_file(), f
    man = json.loads((out / "manifest.json").read_text())
    rep = json.loads((out / "report.json").read_text())
    assert man["cycles_per_frame"] == rep["cycles_per_frame"] <= 20
    assert man["input"]["tdata_bits"] % 8 == 0 and man["output"]["tdata_bits"] % 8 == 0
    v = (out / "rtl" / "hwgen_top.v").read_text()
    for port in ("s_axis_tdata", "s_axis_tvalid", "s_axis_tready", "m_axis_tdata", "m_axis_tvalid", "m_axis_tready", "clk", "rst"):
        assert f" {port}" in v
    kinds = [l["kind"] for l in rep["layers"]]
    assert kinds.count("MVAU") + kinds.count("ConstMVAU") == 2
    for l in rep["layers"]:
        assert set(l["resources"]) == {"LUT", "FF", "BRAM18", "DSP"}


def test_builds_are_byte_identical(small_onnx, tmp_path):
    import hwgen
    a = hwgen.build(small_onnx, tmp_path / "a", fps=3e6, progress=False)
    b = hwgen.build(small_onnx, tmp_path / "b", fps=3e6, progress=False)
    files = ["rtl/hwgen_top.v", "manifest.json", "model.json", "params.npz", "report.md", "report.json", "source.onnx"]
    match, mismatch, errors = filecmp.cmpfiles(a.out_dir, b.out_dir, files, shallow=False)
    assert mismatch == [] and errors == []


def test_model_json_round_trip_gives_same_verilog(small_onnx, tmp_path):
    import hwgen
    from hwgen.dataflow import DataflowGraph
    from hwgen.hdl.top import to_verilog
    b = hwgen.build(small_onnx, tmp_path / "a", fps=2e6, progress=False)
    g = DataflowGraph.load(b.out_dir)
    assert to_verilog(g, name="hwgen_top") == (tmp_path / "a" / "rtl" / "hwgen_top.v").read_text()
    x = np.random.default_rng(0).integers(-8, 8, (7, 8))
    assert np.array_equal(g.execute(x), b.graph.execute(x))


def test_default_folding_is_never_silently_serial(small_onnx, tmp_path):
    import hwgen
    b = hwgen.build(small_onnx, tmp_path / "a", progress=False)     # default target 1e6 fps at 100 MHz
    assert b.cycles_per_frame <= 100
    assert any(l.pe * l.simd > 1 for l in b.graph.compute_layers) or b.cycles_per_frame <= 100


def test_verify_bad_dir(tmp_path, capsys):
    code, _, err = run_cli(["verify", tmp_path / "nothing"], capsys)
    assert code == 2 and err.startswith("hwgen: error: ") and len(err.strip().splitlines()) == 1


def test_unsupported_conv_features(tmp_path, capsys):
    """Dilation and grouped (non-depthwise) convolutions get the one-line error."""
    import brevitas.nn as qnn
    import torch
    import torch.nn as nn

    import hwgen
    for kw, msg in (({"dilation": 2}, "dilation [2, 2] is not supported; accepted: 1"),
                    ({"groups": 2}, "groups=2 is not supported; accepted: 1 or the number of channels (4) with one filter per channel")):
        m = nn.Sequential(qnn.QuantIdentity(bit_width=4, return_quant_tensor=True),
                          qnn.QuantConv2d(4, 6, 3, weight_bit_width=4, bias=False, **kw), qnn.QuantReLU(bit_width=4)).eval()
        path = tmp_path / "c.onnx"
        hwgen.export_brevitas(m, torch.randn(1, 4, 9, 9), str(path))
        code, _, err = run_cli(["build", path, "-o", tmp_path / "out"], capsys)
        errs = [l for l in err.splitlines() if l.startswith("hwgen: error:")]
        import onnx
        conv = next(n.name for n in onnx.load(str(path)).graph.node if n.op_type == "Conv")   # as the user's file names it
        assert code == 2 and len(errs) == 1 and errs[0] == f"hwgen: error: node {conv} (Conv, module 1: QuantConv2d): {msg}", err
        assert_nothing_written(tmp_path, tmp_path / "out")
