"""hwgen.build: the pipeline as a list of named steps, its saved steps and the resolved folding."""

import json
import os
from pathlib import Path

import numpy as np

import hwgen
from hwgen.build import STEPS, run_until
from hwgen.dataflow import DataflowGraph


def test_the_build_is_its_list_of_steps(tiny_onnx, tmp_path):
    names = [s.name for s in STEPS]
    assert names == ["load", "lower", "fold", "constant weights", "plumb", "size FIFOs", "generate Verilog", "report", "flows"]
    b = hwgen.build(tiny_onnx, str(tmp_path / "b"), progress=False)
    assert list(b.timings) == names and all(t >= 0 for t in b.timings.values())


def test_saved_steps_reload_and_compute_the_same(spec_onnx, tmp_path):
    """--save-steps: every graph step's snapshot reloads, and each computes what the finished build does
    (folding and plumbing never change the integer function)."""
    _, path = spec_onnx("conv_pad_bn_maxpool_fc")
    b = hwgen.build(path, str(tmp_path / "b"), fps=1e4, progress=False, save_steps=True)
    steps = sorted(os.listdir(os.path.join(b.out_dir, "steps")))
    assert steps == ["00_lower", "01_fold", "02_constant_weights", "03_plumb", "04_size_FIFOs"]
    seed = 20261204
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    final = DataflowGraph.load(b.out_dir)
    x = rng.integers(final.layers[0].idt.min, final.layers[0].idt.max + 1, (5,) + tuple(final.layers[0].in_shape))
    want = final.execute(x)
    kinds = []
    for d in steps:
        g = DataflowGraph.load(os.path.join(b.out_dir, "steps", d))
        assert np.array_equal(g.execute(x), want), d
        kinds.append(sorted({l.kind for l in g.layers}))
    assert "FIFO" not in kinds[3] and "FIFO" in kinds[4]
    assert [l.folding for l in DataflowGraph.load(os.path.join(b.out_dir, "steps", "01_fold")).layers] == \
           [l.folding for l in final.layers if l.kind not in ("FIFO", "WidthConverter", "Duplicate")]


def _rtl(out):
    d = os.path.join(out, "rtl")
    return {fn: Path(d, fn).read_bytes() for fn in sorted(os.listdir(d))}


def test_folding_json_rebuilds_the_same_design(spec_onnx, tiny_onnx, tmp_path):
    """OUT/folding.json, given back as the folding, builds the same Verilog: a CNN (window generators
    tied to their consumers) at a target, and an MLP folded for a device (memory styles chosen)."""
    _, cnn = spec_onnx("stride2_nonsquare_dw")
    for i, (path, kw) in enumerate(((cnn, {"fps": 2e4}), (tiny_onnx, {"device": "xc7z010"}))):
        a = hwgen.build(path, str(tmp_path / f"a{i}"), progress=False, **kw)
        doc = json.loads(Path(a.out_dir, "folding.json").read_text())
        assert set(doc) == {l.name for l in a.graph.layers if l.folding and l.kind not in ("FIFO", "WidthConverter")}
        b = hwgen.build(path, str(tmp_path / f"b{i}"), folding=os.path.join(a.out_dir, "folding.json"), progress=False)
        assert _rtl(b.out_dir) == _rtl(a.out_dir)
        assert json.loads(Path(b.out_dir, "folding.json").read_text()) == doc


def test_run_until_stops_at_the_step(tiny_onnx):
    _, lowered = run_until(tiny_onnx, "lower")
    _, sized = run_until(tiny_onnx, "size FIFOs", fps=1e5)
    assert all(l.kind == "MVAU" for l in lowered.layers)
    assert any(l.kind == "FIFO" for l in sized.layers)
    try:
        run_until(tiny_onnx, "generate Verilog")
    except hwgen.HwgenError as e:
        assert str(e) == "step must be one of lower, fold, constant weights, plumb, size FIFOs, not 'generate Verilog'"
    else:
        raise AssertionError("no error")
