"""Big layers: ROMs as ``$readmemh`` files, the ROM word cap in the folding error, the
fits-no-device warning and per-layer progress of Verilog generation.

The side-file path is forced onto small layers (``hwgen.hdl.rom.INLINE_MAX_BITS = 0``) and
its hardware checked word for word against the IR's ``execute`` (the reference), in Icarus
and through ``hwgen.build`` + ``hwgen.verify``.  No test times anything.
"""

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from hwgen.dataflow import MVAU, DataflowGraph
from hwgen.dataflow.folding import search_folding
from hwgen.dtypes import DType
from hwgen.errors import FoldingError
from hwgen.hdl import rom, to_verilog
from hwgen.streams import pack, tdata_bits

from streamsim import random_values

ICARUS = shutil.which("iverilog") is not None and shutil.which("vvp") is not None
needs_icarus = pytest.mark.skipif(not ICARUS, reason="Icarus Verilog (iverilog, vvp) not installed")

#: graphs of test_hdl_fourstate with parameter ROMs: MVAU weights and thresholds, a standalone
#: Thresholding, a window into an MVAU and into a VVAU, and an AddStreams' thresholds
ROM_GRAPHS = ("chain", "thresholding", "swg_mvau", "swg_vvau", "dag_residual")


def _graph(name):
    from test_hdl_fourstate import GRAPHS
    return GRAPHS[name]()


def _run_icarus(graph, verilog, memfiles, x, tmp_path):
    """Output words of ``verilog`` (with its ROM files) under Icarus, and the IR's expected words."""
    from test_hdl_fourstate import TB
    first, last = graph.layers[0], graph.layers[-1]
    in_words = [w for f in pack(x, first.idt, first.in_lanes) for w in f]
    expected = [w for f in pack(graph.execute(x), last.odt, last.out_lanes) for w in f]
    iw, ow = tdata_bits(first.in_lanes, first.idt), tdata_bits(last.out_lanes, last.odt)
    init = "\n".join(f"    words[{k}] = {iw}'h{w:x};" for k, w in enumerate(in_words))
    (tmp_path / "tb.v").write_text(TB.format(iw=iw - 1, ow=ow - 1, last=len(in_words) - 1, init=init,
                                             n_in=len(in_words), n_out=len(expected),
                                             max_cycles=50 * (len(in_words) + len(expected)) + 200))
    (tmp_path / "top.v").write_text(verilog)
    for fn, text in memfiles.items():
        (tmp_path / fn).write_text(text)
    comp = subprocess.run(["iverilog", "-g2012", "-o", "sim.vvp", "-s", "tb", "tb.v", "top.v"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert comp.returncode == 0, comp.stderr[-2000:]
    run = subprocess.run(["vvp", "-n", "sim.vvp"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "TIMEOUT" not in run.stdout, run.stdout[-2000:]
    assert "readmem" not in (run.stdout + run.stderr).lower(), (run.stdout + run.stderr)[-2000:]
    return [line.split()[1] for line in run.stdout.splitlines() if line.startswith("OUT ")], expected


# -- the side-file path ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ROM_GRAPHS)
def test_small_roms_stay_inline(name):
    """Below the limit nothing changes: no ROM files, the same Verilog as without asking for them."""
    files = {}
    assert to_verilog(_graph(name), memfiles=files) == to_verilog(_graph(name))
    assert files == {}


@pytest.mark.sim
@needs_icarus
@pytest.mark.parametrize("name", ROM_GRAPHS)
def test_side_file_roms_are_the_same_hardware(name, tmp_path, monkeypatch):
    """Every ROM forced into a $readmemh file: the outputs equal the IR reference, word for word."""
    monkeypatch.setattr(rom, "INLINE_MAX_BITS", 0)
    graph = _graph(name)
    files = {}
    text = to_verilog(graph, memfiles=files)
    assert files, "no ROM went to a file"
    for fn in files:
        module = fn[:-len(".mem")]
        assert f'$readmemh("{fn}", mem)' in text and f"module {module}(" in text
    assert not re.search(r"^\s*(weights|thresholds|params)\[\d+\] = ", text, re.M), "a ROM was still inline"
    first = graph.layers[0]
    x = random_values(np.random.default_rng(5), first.idt, (4,) + tuple(first.in_shape))
    got, expected = _run_icarus(graph, text, files, x, tmp_path)
    assert len(got) == len(expected)
    assert [int(w, 2) for w in got] == expected


def test_rom_limit_is_inclusive(monkeypatch):
    """A ROM of exactly INLINE_MAX_BITS bits stays inline; one bit over goes to a file."""
    graph = _graph("thresholding")
    thr = graph.layers[0]
    bits = thr.rom_words()["threshold"] * (thr.channels // thr.pe)
    monkeypatch.setattr(rom, "INLINE_MAX_BITS", bits)
    files = {}
    to_verilog(graph, memfiles=files)
    assert files == {}
    monkeypatch.setattr(rom, "INLINE_MAX_BITS", bits - 1)
    to_verilog(graph, memfiles=files)
    assert sorted(files) == ["hwgen_top__thr__thresholds.mem"]


def test_inline_total_is_a_design_budget(monkeypatch):
    """Below the per-ROM limit, ROMs stay inline while the design's inline total allows: fc0's weight
    ROM (6 words of 10 bits) and threshold ROM (6 of 18) are 168 bits, fc1's 96 + 96, fc2's 60: a
    168-bit budget keeps fc0's inline and sends the rest to files, 360 bits keeps fc0's and fc1's."""
    graph = _graph("chain")
    for total, files_of in ((168, ["fc1", "fc1", "fc2"]), (360, ["fc2"]), (rom.INLINE_TOTAL_BITS, [])):
        monkeypatch.setattr(rom, "INLINE_TOTAL_BITS", total)
        files = {}
        to_verilog(graph, memfiles=files)
        assert sorted(fn.split("__")[1] for fn in files) == files_of


def test_hex_words():
    """One word per line, address 0 first, zero-padded to the word's hex digits."""
    assert rom.hex_words([1, 0xabc, 0], 9, 3) == "001\nabc\n000\n"
    assert rom.hex_words([1], 1, 2) == "1\n0\n"
    assert rom.hex_words([(1 << 70) - 1], 70, 1) == "3" + "f" * 17 + "\n"


def _mlp_onnx(path):
    """Quant(UINT4) -> MatMul(INT3, 12x16) -> Relu -> Quant(UINT4) -> MatMul(INT4, 16x6)."""
    import onnx

    from qonnx_builder import GraphBuilder
    rng = np.random.default_rng(3)
    b = GraphBuilder((1, 12))
    b.act(0.1, bits=4, signed=False)
    b.matmul(rng.normal(0, 0.3, (12, 16)).astype(np.float32), 0.1, 3)
    b.relu()
    b.act(0.2, bits=4, signed=False)
    b.matmul(rng.normal(0, 0.3, (16, 6)).astype(np.float32), 0.05, 4)
    onnx.save(b.model((1, 6)), path)


@pytest.mark.sim
@needs_icarus
def test_build_with_side_files_verifies(tmp_path, monkeypatch):
    """hwgen.build writes the ROM files beside the Verilog and lists them in the manifest and the
    flows; hwgen.verify finds them and the simulation matches the IR reference bit for bit."""
    import hwgen
    monkeypatch.setattr(rom, "INLINE_MAX_BITS", 0)
    _mlp_onnx(str(tmp_path / "m.onnx"))
    out = tmp_path / "out"
    # fc1 fully parallel with its weights in a ROM (impl rom): a one-word weight ROM
    b = hwgen.build(str(tmp_path / "m.onnx"), str(out), folding={"fc0": {"pe": 2, "simd": 4},
                                                                 "fc1": {"pe": 6, "simd": 16, "impl": "rom"}}, progress=False)
    mem = b.manifest["memfiles"]
    assert mem == sorted(mem) and {"rtl/hwgen_top__fc0__weights.mem", "rtl/hwgen_top__fc1__weights.mem"} <= set(mem)
    for rel in mem:
        assert (out / rel).is_file()
    assert json.loads((out / "manifest.json").read_text())["memfiles"] == mem
    assert "MEM := " + " ".join(mem) in (out / "Makefile").read_text()
    assert all(rel in (out / "vivado" / "create_project.tcl").read_text() for rel in mem)
    r = hwgen.verify(str(out), frames=6, sim="icarus", progress=False)
    assert r.ok, r.table()
    (out / mem[0]).unlink()
    with pytest.raises(hwgen.errors.VerifyError, match=rf"^build directory {out}: ROM file {out / mem[0]} listed "
                                                        r"in manifest.json not found$"):
        hwgen.verify(str(out), frames=6, sim="icarus", progress=False)


@pytest.mark.sim
def test_inline_total_files_verify_on_verilator(tmp_path, monkeypatch):
    """ROMs sent to files by the design's inline total (each well under the per-ROM limit): Verilator
    loads them ($readmemh at run time) and the simulation matches the IR reference bit for bit."""
    import hwgen
    monkeypatch.setattr(rom, "INLINE_TOTAL_BITS", 0)
    _mlp_onnx(str(tmp_path / "m.onnx"))
    out = tmp_path / "out"
    b = hwgen.build(str(tmp_path / "m.onnx"), str(out), folding={"fc0": {"pe": 2, "simd": 4},
                                                                 "fc1": {"pe": 2, "simd": 4}}, progress=False)
    assert {"rtl/hwgen_top__fc0__weights.mem", "rtl/hwgen_top__fc1__weights.mem"} <= set(b.manifest["memfiles"])
    r = hwgen.verify(str(out), frames=6, sim="verilator", progress=False)
    assert r.ok, r.table()


def test_small_build_lists_no_side_files(tmp_path):
    import hwgen
    _mlp_onnx(str(tmp_path / "m.onnx"))
    b = hwgen.build(str(tmp_path / "m.onnx"), str(tmp_path / "out"), progress=False)
    assert b.manifest["memfiles"] == []
    assert sorted(p.name for p in (tmp_path / "out" / "rtl").iterdir()) == ["hwgen_top.v"]
    assert "MEM" not in (tmp_path / "out" / "Makefile").read_text()


# -- progress ---------------------------------------------------------------------------------

def test_progress_names_each_layer_and_stage(capsys, monkeypatch):
    from hwgen import progress
    monkeypatch.setattr(progress, "UPDATE_S", 0.0)       # every update printed, not one per 5 s
    monkeypatch.setattr(progress, "_quiet", False)
    graph = _graph("chain")
    text = to_verilog(graph, progress=True)
    assert text == to_verilog(graph)
    err = capsys.readouterr().err
    for layer in graph.layers:
        assert f"generate Verilog: elaborating {layer.name}," in err, err
    assert "generate Verilog: netlist and RTLIL" in err and "generate Verilog: yosys write_verilog" in err
    assert re.search(rf"generate Verilog: {len(graph.layers)}/{len(graph.layers)} layers, [0-9.]+ s$", err.strip(), re.M)


def test_no_progress_by_default(capsys):
    to_verilog(_graph("thresholding"))
    assert capsys.readouterr().err == ""


# -- the ROM word cap -------------------------------------------------------------------------

def _w8_layer(n=128, pe=1, simd=1):
    rng = np.random.default_rng(0)
    i8, u8 = DType("INT8"), DType("UINT8")
    W = random_values(rng, i8, (n, n))
    fc = MVAU("fc0", mw=n, mh=n, in_dt=u8, wdt=i8, out_dt=None, weights=W, pe=pe, simd=simd)
    fc.out_dt = fc.acc_dt
    return fc


def test_rom_word_cap_named_in_the_error():
    """128x128 INT8 weights in 2 cycles need 8,192 lanes: a 65,536-bit weight word, one bit over
    the cap; within it the fastest folding has 4,096 lanes and takes 4 cycles."""
    graph = DataflowGraph([_w8_layer()], name="big")
    with pytest.raises(FoldingError) as e:
        search_folding(graph, fps=5e7, clock_mhz=100.0)
    assert str(e.value) == (
        "layer fc0: target 5e+07 fps at 100 MHz allows 2 cycles per frame, which needs at least 8,192 lanes "
        "(pe=64, simd=128), a 65,536-bit weight ROM word; hwgen's cap is 65,535 bits per ROM word (8,191 lanes "
        "of INT8 weights), so the fastest folding (pe=32, simd=128: 4,096 lanes) needs 4; "
        "lower the target or raise the clock")


def test_target_within_the_cap_folds():
    """4 cycles per frame is what 4,096 lanes of INT8 reach: no error, and the cap holds."""
    graph = DataflowGraph([_w8_layer()], name="big")
    search_folding(graph, fps=2.5e7, clock_mhz=100.0)
    fc = graph.layers[0]
    assert fc.cycles() == 4 and fc.pe * fc.simd == 4096


# -- fitting no device ------------------------------------------------------------------------

def test_warning_when_no_device_fits(capsys):
    from hwgen.dataflow.fit import beyond_devices, warn_beyond_devices
    layers = [_w8_layer(pe=32, simd=128) for _ in range(4)]               # 4 x 4,096 multipliers
    for i, l in enumerate(layers):
        l.name = f"fc{i}"
    graph = DataflowGraph(layers, name="big")
    msg = warn_beyond_devices(graph)
    assert msg == beyond_devices(graph)
    assert msg.startswith("the folding fits no device hwgen lists (estimate; nearest per family: xc7")
    assert msg.endswith("; xcu250 16,384 DSP > 12,288): it builds, but as folded it fits none of them")
    assert re.search(r"xc7\w+ [^;]*16,384 DSP > \d+", msg), msg
    assert re.search(r"; ecp5-\w+ [^;]* > [\d,]+; ice40-\w+ [^;]* > [\d,]+; xcu", msg), msg
    assert f"hwgen: warning: {msg}\n" in capsys.readouterr().err


def test_no_warning_when_a_device_fits(capsys):
    from hwgen.dataflow.fit import warn_beyond_devices
    assert warn_beyond_devices(DataflowGraph([_w8_layer(n=16, pe=1, simd=4)], name="s")) is None
    # 4,096 DSP48s: more than any 7-series part listed has, within an Alveo U250's 12,288
    assert warn_beyond_devices(DataflowGraph([_w8_layer(pe=32, simd=128)], name="big")) is None
    assert capsys.readouterr().err == ""
