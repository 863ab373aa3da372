"""Branching graphs, classifier heads and wide precision, end to end.

Residual adds (two scales and bit widths re-aligned to one integer grid),
subtractions, channel concatenation, forks, ArgMax/top-k label select and
12–16-bit layers (proven-exact fixed-point requantisers): the IR equals QONNX
and Brevitas, and the RTL equals the IR word for word on Verilator and Icarus
under back-pressure, at the estimated throughput, without deadlock.
"""

import numpy as np
import pytest

from models import L, export, export_branchy, make_mlp
from refs import assert_matches_brevitas

pytestmark = pytest.mark.filterwarnings("ignore")

KINDS = ["res_mlp", "res_cnn", "concat_cnn"]
FPS = {"res_mlp": 2e6, "res_cnn": 1e5, "concat_cnn": 1e5, "wide": 5e5, "topk": 2e6}
WIDE = {"in": 10, "in_bits": 12, "layers": [L(8, 12, act="relu", a=16, bn=True, bias="float"),
                                             L(6, 16, act="identity", a=10, wq="channel"),
                                             L(4, 8, act="hardtanh", a=4), L(3, 10, act=None, bias="float")]}
TOPK = {"in": 12, "in_bits": 4, "layers": [L(10, 4, a=4, bn=True), L(7, 3, act="identity", a=6)]}


@pytest.fixture(scope="module")
def branch_build(tmp_path_factory):
    import hwgen
    d = tmp_path_factory.mktemp("branch")
    cache = {}

    def get(kind):
        if kind not in cache:
            path = str(d / f"{kind}.onnx")
            topk = None
            if kind == "wide":
                model = make_mlp(WIDE, seed=3)
                export(model, WIDE, path)
            elif kind == "topk":
                model = make_mlp(TOPK, seed=4)
                export(model, TOPK, path)
                topk = 3
            else:
                model, _ = export_branchy(kind, path, seed=0)
            b = hwgen.build(path, str(d / kind), fps=FPS[kind], topk=topk, progress=False)
            cache[kind] = (model, path, b)
        return cache[kind]
    return get


def _brevitas(model, x, topk=None):
    import torch
    with torch.no_grad():
        o = model(torch.from_numpy(x))
        o = (o.value if hasattr(o, "value") else o).numpy()
    if topk:
        o = np.argsort(-o, axis=1, kind="stable")[:, :topk]
    return o


@pytest.mark.parametrize("kind", KINDS + ["wide", "topk"])
def test_references_agree(branch_build, kind):
    from qonnx.core.onnx_exec import execute_onnx

    import hwgen
    from hwgen.host import apply_head, apply_tail, random_inputs
    model, path, b = branch_build(kind)
    g = b.graph
    x = random_inputs(g.head, 24, np.random.default_rng(7)).astype(np.float32)
    ir = apply_tail(g.tail, g.execute(apply_head(g.head, x)))
    if kind == "topk":
        np.testing.assert_array_equal(ir, _brevitas(model, x, topk=3))
        return
    w = hwgen.load(path)
    ref = np.concatenate([execute_onnx(w, {g.head["input_name"]: x[i:i + 1]})[g.tail["output_name"]] for i in range(len(x))])
    tol = 1e-5 * max(1.0, float(np.abs(ref).max()))
    np.testing.assert_allclose(ir, ref, rtol=0, atol=tol)
    assert_matches_brevitas(model, x, ir, tol)


def test_graph_shapes(branch_build):
    kinds = {k: [l.kind for l in branch_build(k)[2].graph.compute_layers] for k in KINDS + ["wide", "topk"]}
    assert kinds["res_mlp"].count("AddStreams") == 1 and "Duplicate" in [l.kind for l in branch_build("res_mlp")[2].graph.layers]
    assert kinds["res_cnn"].count("AddStreams") == 2
    assert "Concat" in kinds["concat_cnn"] and kinds["concat_cnn"][-1] == "LabelSelect"
    assert kinds["wide"].count("Requant") == 2
    assert kinds["topk"][-1] == "LabelSelect"
    sub = [l for l in branch_build("res_cnn")[2].graph.layers if l.kind == "AddStreams"][1]
    assert sub.ka * sub.kb < 0          # the subtraction


# every kind on both simulators; the two CNNs on Icarus (minutes each) only in the slow run
RTL_CASES = [pytest.param(k, s, id=f"{k}-{s}", marks=[pytest.mark.slow] if s == "icarus" and k.endswith("_cnn") else [])
             for s in ("verilator", "icarus") for k in KINDS + ["wide", "topk"]]


@pytest.mark.sim
@pytest.mark.e2e
@pytest.mark.parametrize("kind,sim", RTL_CASES)
def test_branchy_rtl(branch_build, kind, sim):
    import hwgen
    from hwgen.host import random_inputs
    model, _, b = branch_build(kind)
    seed = 3000 + (KINDS + ["wide", "topk"]).index(kind)
    print(f"seed {seed}")
    x = random_inputs(b.graph.head, 16, np.random.default_rng(seed)).astype(np.float32)
    r = hwgen.verify(b.out_dir, inputs=x, sim=sim, seed=seed, progress=False)
    assert r.ok and r.mismatches == 0
    np.testing.assert_array_equal(r.outputs_int, r.expected_int)
    assert abs(r.cycles_per_frame - r.estimated_cycles_per_frame) <= 0.02 * r.estimated_cycles_per_frame
    want = _brevitas(model, x, topk=3 if kind == "topk" else None)
    if kind in ("topk", "concat_cnn"):
        np.testing.assert_array_equal(r.outputs.astype(np.int64).reshape(want.shape), want)
    else:
        assert_matches_brevitas(model, x, r.outputs, 1e-5 * max(1.0, float(np.abs(want).max())))


@pytest.mark.sim
@pytest.mark.e2e
@pytest.mark.long
def test_tfc_w1a1_binary(tmp_path):
    """TFC-w1a1 (784-64-64-64-10, bipolar weights and activations): XNOR-popcount MVAUs, verified in RTL."""
    import hwgen
    spec = {"in": 784, "in_bits": 1, "layers": [L(64, 1, act="bipolar", bn=True)] * 3 + [L(10, 1, act=None)]}
    path = str(tmp_path / "tfc.onnx")
    export(make_mlp(spec, seed=0), spec, path)
    b = hwgen.build(path, tmp_path / "tfc", folding={"fc0": {"pe": 16, "simd": 49}, "fc1": {"pe": 16, "simd": 16},
                                                      "fc2": {"pe": 16, "simd": 16}, "fc3": {"pe": 10, "simd": 16}}, progress=False)
    assert all(l.wdt.name == "BIPOLAR" and l.idt.name == "BIPOLAR" for l in b.graph.compute_layers)
    r = hwgen.verify(b.out_dir, frames=20, sim="verilator", seed=9, progress=False)
    assert r.ok and r.mismatches == 0 and r.cycles_per_frame == pytest.approx(64, rel=0.02)
