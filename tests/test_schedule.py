"""FIFO sizing from the word-level schedule (hwgen.dataflow.schedule, InsertFIFOs).

Tiers: the max-plus helpers by hand; the schedule of whole built graphs against the
Amaranth simulation of their Top (every output word's cycle, with FIFOs deep enough
never to push back, the model must be exact); the sized FIFOs under the schedule's
own input (no FIFO overfull) and the depths of a CNV-shaped graph (timed, printed).
RTL proof with back-pressure and measured intervals is in the e2e tests
(tests/test_e2e*.py, tests/test_e2e_branch.py, tests/test_cnv.py), which build with these depths.
"""

import os
import sys

import numpy as np
import pytest

import hwgen
from hwgen.dataflow import DataflowGraph
from hwgen.dataflow.schedule import asap, fifo_occupancy, schedule

sys.path.insert(0, os.path.dirname(__file__))
import streamsim
from models import CNN_SPECS, SPECS, export, export_branchy, export_cnn, make_cnn, make_mlp
from hwgen.hdl import Top
from hwgen.streams import pack


def test_asap():
    assert list(asap([0, 0, 0, 5, 5, 2])) == [0, 1, 2, 5, 6, 7]
    assert list(asap([-np.inf, 3, -np.inf])) == [-np.inf, 3, 4] or list(asap([-np.inf, 3, -np.inf]))[1:] == [3, 4]


def test_fifo_occupancy():
    # words written at 0,1,2,3 and read at 5,6,7,8: all four held at cycle 3
    assert fifo_occupancy([0, 1, 2, 3], [5, 6, 7, 8]) == 4
    # read right after each write: one at a time
    assert fifo_occupancy([0, 2, 4], [1, 3, 5]) == 1
    # counted only up to `until`
    assert fifo_occupancy([0, 1, 2, 3], [5, 6, 7, 8], until=1) == 2
    # a word never read (inf) stays
    assert fifo_occupancy([0, 1], [np.inf, np.inf]) == 2


def _build(tmp_path_factory, kind, key):
    d = tmp_path_factory.mktemp(f"sched_{key}")
    onnx = str(d / "m.onnx")
    if kind == "mlp":
        export(make_mlp(SPECS[key], seed=1), SPECS[key], onnx)
        fps = 2e6
    elif kind == "cnn":
        export_cnn(make_cnn(CNN_SPECS[key], seed=1), CNN_SPECS[key], onnx)
        fps = 5e4
    else:
        export_branchy(key, onnx, seed=1)
        fps = 5e4
    b = hwgen.build(onnx, str(d / "out"), fps=fps, progress=False)
    return DataflowGraph.load(b.out_dir)


CASES = [("mlp", "w4a4_relu_bn"), ("cnn", "conv_pad_bn_maxpool_fc"), ("cnn", "stride2_nonsquare_dw"),
         ("cnn", "avgpool_gap_k1"), ("branch", "res_cnn"), ("branch", "concat_cnn")]


@pytest.mark.parametrize("kind,key", CASES, ids=[k for _, k in CASES])
def test_schedule_matches_amaranth(tmp_path_factory, kind, key):
    """With deep FIFOs (no back-pressure anywhere) and the input offered back to back, the
    model gives the cycle of every output word exactly (up to one constant offset)."""
    graph = _build(tmp_path_factory, kind, key)
    for l in graph.layers:
        if l.kind == "FIFO":
            l.depth = max(l.depth, l.out_words * 3 + 8)
    frames = 3
    rng = np.random.default_rng(0)
    first, last = graph.layers[0], graph.layers[-1]
    lo, hi = first.idt.min, first.idt.max
    x = rng.integers(lo, hi + 1, size=(frames,) + tuple(first.in_shape))
    if first.idt.name == "BIPOLAR":
        x = 2 * rng.integers(0, 2, size=x.shape) - 1
    top = Top(graph)
    in_words = [w for f in pack(x, first.idt, first.in_lanes) for w in f]
    expected = pack(graph.execute(x), last.odt, last.out_lanes)
    res = streamsim.run(top, streamsim.axis_in(top), streamsim.axis_out(top), in_words,
                        sum(len(f) for f in expected), gaps=0.0, backpressure=0.0, seed=0,
                        max_cycles=2 * (frames + 1) * graph.cycles() + 2000)
    streamsim.check_frames(res, expected, what="top")
    _, outs = schedule(graph, frames, source=np.zeros(len(in_words)))
    model = np.asarray(outs[last.name][0])
    rtl = np.asarray(res.out_cycles, dtype=float)
    assert model.shape == rtl.shape
    offset = rtl[0] - model[0]
    bad = np.nonzero(rtl - model != offset)[0]
    assert bad.size == 0, (f"{key}: model and RTL disagree from output word {bad[0]} on "
                           f"(model {model[bad[:5]]}, RTL {rtl[bad[:5]] - offset}, offset {offset})")


@pytest.mark.parametrize("kind,key", CASES, ids=[k for _, k in CASES])
def test_sized_fifos_hold_the_schedule(tmp_path_factory, kind, key):
    """Under the schedule the sizing used, no FIFO ever holds more than its depth."""
    graph = _build(tmp_path_factory, kind, key)
    frames = 6
    reads, _ = schedule(graph, frames)
    for f in (l for l in graph.layers if l.kind == "FIFO"):
        consumer, port = graph.consumers(f.name)[0]
        occ = fifo_occupancy(reads[f.name][0], reads[consumer.name][port], (frames - 1) * graph.cycles())
        assert occ <= f.depth, f"{f.name}: holds {occ} words, depth {f.depth}"


def test_cnv_sizing_time(tmp_path):
    """CNV-w1a1 with FINN's folding: the FIFO depths, computed in well under a second (printed,
    not asserted: wall-clock times are measured in bench/, never asserted)."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
    import cnv
    onnx = str(tmp_path / "cnv.onnx")
    cnv.export_cnv("w1a1", onnx)
    b = hwgen.build(onnx, str(tmp_path / "out"), folding=cnv.FOLDINGS["w1a1"], progress=False)
    fi = b.report["fifos"]
    graph = DataflowGraph.load(b.out_dir)
    fifos = [l for l in graph.layers if l.kind == "FIFO"]
    print(f"CNV-w1a1: {fi['count']} FIFOs sized in {b.graph.fifo_sizing['seconds']:.3f} s over {fi['frames']} frames, "
          f"{fi['bits']:,} bits: " + ", ".join(f"{f.name}={f.depth}" for f in fifos))
    assert fi["count"] == len(fifos) >= 15
    assert all(2 <= f.depth <= 4096 for f in fifos)
