"""hwgen.mixed with residual adds: ``Residual(body, act)`` blocks in the float model.

* names: the body's layers are named like any other, the add as hwgen names its AddStreams
  (``add0, add1, …``, checked against the build), its assignment entry is ``(None, a_bits)``;
* a residual MLP (the ``digits-res-mlp`` example) and a residual CNN (two stacked blocks, one
  after a max-pool, Hardtanh and identity joins), briefly trained, quantised at uniform and mixed
  assignments (1-bit skips, bodies and adds included) build into IR graphs whose outputs equal
  Brevitas'; one assignment of each is simulated (Icarus) with 0 mismatches (``sim``);
* the sensitivity has Ω_a (no Ω_w) for the add; the cost table prices the add per
  ``(a_skip, a_body, a)`` within 10 % of the built AddStreams; the allocation frontier of a real
  residual model is consistent and quantises;
* every unsupported model or assignment is a one-line HwgenError, tested in full text.
"""

import copy

import numpy as np
import pytest

from refs import assert_matches_brevitas

pytestmark = pytest.mark.filterwarnings("ignore")

BITS = (1, 2, 3, 4)


def res_cnn():
    """1×8×8 → conv 4 ch → Residual(conv, conv; identity join) → pool → Residual(1×1 conv; Hardtanh join)
    → FC 10."""
    import torch.nn as nn

    from hwgen.mixed import Residual
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        Residual(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                               nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)), act=None),
        nn.MaxPool2d(2),
        Residual(nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)), act="hardtanh"),
        nn.Flatten(), nn.Linear(64, 10))


def _models():
    from hwgen.mixed.models import float_res_mlp
    return {"mlp": (float_res_mlp, (64,), 1e6), "cnn": (res_cnn, (1, 8, 8), 1.5e5)}


CASES = {
    "mlp-w3a3": ("mlp", {"fc0": (3, 3), "fc1": (3, 3), "fc2": (3, 3), "add0": (None, 3), "fc3": (3, None)}),
    "mlp-1bit-skip-and-add": ("mlp", {"fc0": (2, 1), "fc1": (3, 3), "fc2": (4, 2), "add0": (None, 1),
                                      "fc3": (4, None)}),
    "mlp-1bit-body": ("mlp", {"fc0": (4, 4), "fc1": (1, 1), "fc2": (2, 8), "add0": (None, 2), "fc3": (1, None)}),
    "cnn-w4a3": ("cnn", {"conv0": (4, 3), "conv1": (4, 3), "conv2": (4, 3), "add0": (None, 3), "conv3": (4, 3),
                         "add1": (None, 3), "fc0": (4, None)}),
    "cnn-mixed-1bit": ("cnn", {"conv0": (2, 4), "conv1": (3, 2), "conv2": (4, 1), "add0": (None, 1),
                               "conv3": (1, 1), "add1": (None, 2), "fc0": (2, None)}),
}


SOURCES = {"mlp": {"add0": ("fc0", "fc2")}, "cnn": {"add0": ("conv0", "conv2"), "add1": ("add0", "conv3")}}


@pytest.fixture(scope="module")
def trained():
    """kind -> (float model trained 3 epochs on digits, train inputs, held-out inputs); each trained once."""
    import torch

    from hwgen.mixed.train import load_digits_split, seed_everything, train
    torch.set_num_threads(1)
    cache = {}

    def get(kind):
        if kind not in cache:
            make, shape, _ = _models()[kind]
            seed_everything(0)
            xtr, ytr, xte, _ = load_digits_split(0, input_shape=shape)
            cache[kind] = train(make(), xtr, ytr, epochs=3, seed=0), xtr, ytr, xte
        return cache[kind]
    return get


def _quantised(fmodel, assignment, xcal):
    """The Brevitas model, its quantisers' scales initialised on ``xcal`` (as QAT's first steps do)."""
    import torch

    from hwgen.mixed import quantize
    q = quantize(fmodel, assignment, in_bits=4)
    with torch.no_grad():
        q.train()(torch.from_numpy(xcal))
    return q.eval()


def _build(kind, case, tmp_path, trained):
    import torch

    import hwgen
    fmodel, xtr, _, xte = trained(kind)
    q = _quantised(fmodel, CASES[case][1], xtr[:256])
    path = str(tmp_path / f"{case}.onnx")
    hwgen.export_brevitas(q, torch.from_numpy(xte[:1]), path)
    return q, xte, hwgen.build(path, str(tmp_path / case), fps=_models()[kind][2], progress=False)


def test_names_uniform_and_example():
    from hwgen.mixed import quant_layers, uniform
    from hwgen.mixed.models import EXAMPLES, float_res_mlp
    assert quant_layers(float_res_mlp()) == ["fc0", "fc1", "fc2", "add0", "fc3"]
    assert quant_layers(res_cnn()) == ["conv0", "conv1", "conv2", "add0", "conv3", "add1", "fc0"]
    assert uniform(float_res_mlp(), 4, 3) == {"fc0": (4, 3), "fc1": (4, 3), "fc2": (4, 3), "add0": (None, 3),
                                              "fc3": (4, None)}
    ex = EXAMPLES["digits-res-mlp"]
    assert ex["fps"] == 1e6 and ex["input_shape"] == (64,) and ex["model"] is float_res_mlp


def test_float_residual_forward():
    import torch
    import torch.nn as nn

    from hwgen.mixed import Residual
    body = nn.Sequential(nn.Linear(3, 3))
    x = torch.randn(5, 3)
    for act, f in (("relu", torch.relu), ("hardtanh", nn.functional.hardtanh), (None, lambda t: t)):
        torch.testing.assert_close(Residual(body, act)(x), f(x + body(x)))


@pytest.mark.parametrize("case", sorted(CASES))
def test_build_equals_brevitas(case, tmp_path, trained):
    """Quantise, export, build: the IR graph's outputs equal Brevitas'; the layers carry the assigned names
    and types, the adds read their producers' bits."""
    from hwgen.host import apply_head, apply_tail

    kind, assignment = CASES[case]
    q, xte, b = _build(kind, case, tmp_path, trained)
    g, x = b.graph, xte[:32]
    out = apply_tail(g.tail, g.execute(apply_head(g.head, x)))
    assert len(np.unique(out, axis=0)) > len(x) // 2, "a nearly constant network proves little"
    assert_matches_brevitas(q, x, out, 1e-5 * max(1.0, float(np.abs(out).max())))
    named = [l.name for l in g.layers if l.kind in ("MVAU", "ConstMVAU", "VVAU", "AddStreams")]
    assert named == list(assignment)

    def dt_ok(dt, bits):
        return dt.name == "BIPOLAR" if bits == 1 else dt.bits == bits
    for name, (w, a) in assignment.items():
        layer = g.layer(name)
        if layer.kind == "AddStreams":
            skip, body = SOURCES[kind][name]
            assert dt_ok(layer.in_dt, assignment[skip][1]) and dt_ok(layer.in_dt_b, assignment[body][1]), name
            assert dt_ok(layer.odt, a), name
            assert layer.n_thresholds == (1 if a == 1 else 2 ** a - 1)
            assert layer.ka & (layer.ka - 1) == 0 and layer.kb & (layer.kb - 1) == 0, "power-of-two scales"
        else:
            assert layer.wdt.name == "BIPOLAR" if w == 1 else layer.wdt.bits <= w, name


@pytest.mark.sim
@pytest.mark.parametrize("case", ["mlp-w3a3", "mlp-1bit-skip-and-add", "cnn-w4a3", "cnn-mixed-1bit"])
def test_verify_on_icarus(case, tmp_path, trained):
    import hwgen
    kind, _ = CASES[case]
    _, xte, b = _build(kind, case, tmp_path, trained)
    r = hwgen.verify(b.out_dir, inputs=xte[:12], sim="icarus", seed=0, progress=False)
    assert r.ok and r.mismatches == 0


def test_sensitivity_of_the_add(trained):
    from hwgen.mixed import measured_drop, sensitivity
    fmodel, xtr, ytr, _ = trained("mlp")
    before = copy.deepcopy(fmodel.state_dict())
    s = sensitivity(fmodel, xtr[:128], ytr[:128], bits=(1, 2, 4, 8), n_samples=4, seed=0)
    assert list(s.table) == ["fc0", "fc1", "fc2", "add0", "fc3"]
    assert set(s.table["add0"]) == {(None, b) for b in (1, 2, 4, 8)}
    assert "add0" not in s.weight and "add0" in s.act and "add0" in s.act_trace
    assert all(s.table["add0"][(None, b)] == s.act["add0"][b] for b in (1, 2, 4, 8))
    assert s.act["add0"][8] < s.act["add0"][2] and s.act_trace["add0"] > 0
    assert set(s.table["fc2"]) == {(w, a) for w in (1, 2, 4, 8) for a in (1, 2, 4, 8)}
    assert "add0   A" in s.format()
    drop = measured_drop(fmodel, xtr[:256], ytr[:256], "add0", None, 1)
    assert -1.0 <= drop <= 1.0 and measured_drop(fmodel, xtr[:256], ytr[:256], "add0", None, None) == 0.0
    for k, v in fmodel.state_dict().items():
        assert (v == before[k]).all(), k


@pytest.fixture(scope="module")
def res_costs(trained):
    import torch

    from hwgen.mixed.cost import cost_table
    fmodel, xtr, _, _ = trained("mlp")
    return cost_table(fmodel, torch.from_numpy(xtr[:512]), 4, 1e6, bits=BITS)


def test_cost_table_of_the_add(res_costs):
    t = res_costs
    assert t.layers == ["fc0", "fc1", "fc2", "add0", "fc3"]
    assert t.sources == {"fc0": (None,), "fc1": ("fc0",), "fc2": ("fc1",), "add0": ("fc0", "fc2"), "fc3": ("add0",)}
    assert set(t.lut["add0"]) == {(s, b, a) for s in BITS for b in BITS for a in BITS}
    assert {k[0] for k in t.lut["fc1"]} == set(BITS) and {k[0] for k in t.lut["fc0"]} == {4}
    assert set(t.lut["fc3"]) == {(p, w, None) for p in BITS for w in BITS}
    a = {"fc0": (2, 1), "fc1": (3, 3), "fc2": (4, 2), "add0": (None, 4), "fc3": (3, None)}
    assert [t.triple(a, i) for i in range(5)] == [(4, 2, 1), (1, 3, 3), (3, 4, 2), (1, 2, 4), (4, 3, None)]
    assert t.total(a) == sum(t.lut[n][t.triple(a, i)] for i, n in enumerate(t.layers))
    assert t.lut["add0"][(4, 4, 4)] > t.lut["add0"][(1, 1, 1)]


@pytest.mark.parametrize("case", ["mlp-w3a3", "mlp-1bit-skip-and-add"])
def test_cost_prices_the_built_add(case, res_costs, tmp_path, trained):
    """The built AddStreams (its real scales' multipliers and thresholds) at its own cheapest PE costs within
    10 % of the table's entry, and so does every built MVAU."""
    from hwgen.dataflow.folding import cycle_budget
    from hwgen.mixed.cost import _cheapest, _cheapest_pe

    t = res_costs
    _, assignment = CASES[case]
    _, _, b = _build("mlp", case, tmp_path, trained)
    budget = cycle_budget(t.fps, t.clock_mhz)
    for i, name in enumerate(t.layers):
        layer = copy.deepcopy(b.graph.layer(name))
        real, _ = _cheapest_pe(layer, budget, t.family) if name == "add0" else _cheapest([layer], budget, t.family)
        est = t.lut[name][t.triple(assignment, i)]
        assert abs(est - real) <= 0.10 * real, (name, est, real)


def test_frontier_of_a_residual_model(res_costs, trained):
    from hwgen.mixed import quantize, sensitivity
    from hwgen.mixed.allocate import frontier
    fmodel, xtr, ytr, _ = trained("mlp")
    s = sensitivity(fmodel, xtr[:128], ytr[:128], bits=BITS, n_samples=2, seed=0)
    front = frontier(s, res_costs, n=4)
    assert len(front) >= 2
    for al in front:
        a = al.assignment
        assert list(a) == res_costs.layers and a["add0"][0] is None and a["fc3"][1] is None
        assert al.predicted_lut == res_costs.total(a)
        assert " add0 A" in al.describe() and "WNone" not in al.describe()
        quantize(fmodel, a)


def _bad_models():
    import torch.nn as nn

    from hwgen.mixed import Residual

    def R(*body, act="relu"):
        return Residual(nn.Sequential(*body), act)
    lin = nn.Linear(4, 4)
    return [
        (nn.Sequential(nn.Linear(4, 4), R(lin, R(nn.Linear(4, 4))), nn.Linear(4, 2)),
         "module 1.body.1 (Residual): a Residual inside another Residual's body is not supported; "
         "accepted: Residual blocks in the top-level nn.Sequential"),
        (nn.Sequential(nn.Conv2d(1, 4, 3), R(nn.Conv2d(4, 4, 3, padding=1), nn.MaxPool2d(2)), nn.Flatten()),
         "module 1.body.1 (MaxPool2d): not supported inside a Residual body; accepted: Linear, Conv2d, "
         "BatchNorm1d/2d, ReLU, Hardtanh, Dropout, Identity, starting with Linear or Conv2d"),
        (nn.Sequential(nn.Linear(4, 4), R(nn.ReLU(), nn.Linear(4, 4)), nn.Linear(4, 2)),
         "module 1.body.0 (ReLU): not supported at the start of a Residual body; accepted: Linear, Conv2d, "
         "BatchNorm1d/2d, ReLU, Hardtanh, Dropout, Identity, starting with Linear or Conv2d"),
        (nn.Sequential(nn.Linear(4, 4), R(nn.Linear(4, 3)), nn.Linear(3, 2)),
         "module 1 (Residual): the body's output must have the 4 features of its input, not 3 (Linear fc1)"),
        (nn.Sequential(nn.Conv2d(1, 4, 3), R(nn.Conv2d(4, 4, 3, stride=2, padding=1))),
         "layer conv1: a Residual body must keep the feature map's size: stride must be 1 with an odd kernel and "
         "padding (kernel - 1) / 2 = [1, 1], not stride [2, 2], kernel [3, 3], padding [1, 1]"),
        (nn.Sequential(nn.Linear(4, 4), R(nn.Linear(4, 4))),
         "model: the last layer must be a Linear or Conv2d, not the Residual at 1 (add0)"),
        (nn.Sequential(nn.Linear(4, 4), R(nn.Linear(4, 4)), nn.ReLU(), nn.Linear(4, 2)),
         "layer add0: ReLU at 2 is out of order; accepted: Residual, then "
         "MaxPool2d/AvgPool2d/Flatten/Dropout/Identity"),
        (nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), R(nn.Linear(4, 4)), nn.Linear(4, 2)),
         "module 2 (Residual): its input must be a feature map or a Linear layer's output, not the flattened "
         "feature map of conv0 (Flatten at 1)"),
    ]


@pytest.mark.parametrize("i", range(8))
def test_unsupported_models(i):
    from hwgen.errors import HwgenError
    from hwgen.mixed import quant_layers
    model, message = _bad_models()[i]
    with pytest.raises(HwgenError) as e:
        quant_layers(model)
    assert str(e.value) == message


def test_bad_blocks_and_assignments():
    import torch.nn as nn

    from hwgen.errors import HwgenError
    from hwgen.mixed import Residual, measured_drop, quantize
    from hwgen.mixed.models import float_res_mlp
    with pytest.raises(HwgenError) as e:
        Residual(nn.Sequential(nn.Linear(2, 2)), act="sigmoid")
    assert str(e.value) == "Residual: act must be 'relu', 'hardtanh' or None, not 'sigmoid'"
    with pytest.raises(HwgenError) as e:
        Residual(nn.Linear(2, 2))
    assert str(e.value) == "Residual: body must be an nn.Sequential, not Linear"
    good = {"fc0": (4, 4), "fc1": (4, 4), "fc2": (4, 4), "add0": (None, 4), "fc3": (4, None)}
    for change, message in (
            ({"add0": (4, 4)}, "layer add0: weight bits must be None (a residual add has no weights), not 4"),
            ({"add0": (None, None)}, "layer add0: activation bits must be 1..8, not None"),
            ({"add0": (None, 9)}, "layer add0: activation bits must be 1..8, not 9"),
            ({"add0": 4}, "layer add0: bit widths must be a pair (None, a_bits), not 4"),
            ({"fc2": (4, None)}, "layer fc2: activation bits must be 1..8, not None (only the last layer may "
                                 "leave its output unquantised)")):
        with pytest.raises(HwgenError) as e:
            quantize(float_res_mlp(), {**good, **change})
        assert str(e.value) == message
    with pytest.raises(HwgenError) as e:
        quantize(float_res_mlp(), {k: v for k, v in good.items() if k != "add0"})
    assert str(e.value) == ("assignment: layer add0 has no bit widths; every layer needs (w_bits, a_bits), "
                            "every add (None, a_bits)")
    with pytest.raises(HwgenError) as e:
        measured_drop(float_res_mlp().eval(), np.zeros((4, 64), np.float32), np.zeros(4), "add0", 4, 4)
    assert str(e.value) == "layer add0: weight bits must be None (a residual add has no weights), not 4"
