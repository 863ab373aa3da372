"""hwgen.mixed.search: the orchestration of ``hwgen search`` end to end on the digits MLP.

* two frontier configurations and one uniform baseline are trained (a couple of epochs),
  built and verified on Icarus over a held-out subset: 0 mismatches and the hardware
  accuracy equal to the Brevitas accuracy, for every configuration;
* search.md, search.json, frontier.png and the checkpoints/QONNX files are written;
* ``hwgen search`` with an unknown example is a one-line error.
"""

import json
import os

import pytest

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.mark.e2e
def test_search_digits_mlp(tmp_path):
    import torch
    torch.set_num_threads(1)

    import hwgen
    from hwgen.mixed.models import float_mlp
    from hwgen.mixed.train import load_digits_split, seed_everything

    seed_everything(0)
    xtr, ytr, xte, yte = load_digits_split(0)
    lines = []
    res = hwgen.search(float_mlp(), (xtr, ytr, xte[:64], yte[:64]), out=tmp_path, n_points=2, baselines=((4, 4),),
                       epochs_float=2, epochs_qat=1, qat_restarts=2, sens_samples=4, sim="icarus", synth=False,
                       progress=lines.append)
    print("\n".join(lines))
    print(res.table() + "\n\n" + res.timing_table())
    kinds = [r.kind for r in res.rows]
    assert kinds.count("uniform") == 1 and 1 <= kinds.count("mixed") <= 2
    for r in res.rows:
        assert r.mismatches == 0, r.name
        assert r.hardware_accuracy == r.brevitas_accuracy and r.agreement == 1.0, r.name
        assert r.synth_lut is None and r.lut == r.estimated_lut > 0
        # two QAT restarts (seeds 0, 1); the one kept is the best on the validation set and is what was built
        assert [x["seed"] for x in r.restarts] == [0, 1]
        kept = max(r.restarts, key=lambda x: x["val_accuracy"])       # first of equals, as the search keeps
        assert r.brevitas_accuracy == kept["test_accuracy"]
        assert all(os.path.exists(tmp_path / f"{r.build}{ext}") for ext in (".pt", ".onnx", "/manifest.json"))
    w4a4 = res.rows[-1]
    assert w4a4.name == "w4a4" and w4a4.label == "fc0 W4A4 · fc1 W4A4 · fc2 W4"
    assert res.timings["search"] == pytest.approx(
        res.timings["sensitivity"] + res.timings["cost"] + res.timings["allocation"], abs=0.02)
    doc = json.loads((tmp_path / "search.json").read_text())
    assert [r["name"] for r in doc["rows"]] == [r.name for r in res.rows]
    assert doc["rows"][-1]["assignment"] == {"fc0": [4, 4], "fc1": [4, 4], "fc2": [4, None]}
    md = (tmp_path / "search.md").read_text()
    assert "| w4a4 | fc0 W4A4 · fc1 W4A4 · fc2 W4 |" in md and "search time" in md
    n_val = len(ytr) - len(ytr) * 4 // 5
    assert f"train {len(ytr) - n_val:,}, validation {n_val:,}, test 64 inputs" in md
    assert (tmp_path / "frontier.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.e2e
def test_search_from_a_brevitas_model(tmp_path):
    """A trained Brevitas model as the starting point: its float weights seed the search and the model
    itself, untouched, is built and verified as row ``start`` (its hardware accuracy = its own)."""
    import torch
    torch.set_num_threads(1)

    import hwgen
    from hwgen.mixed.models import float_mlp
    from hwgen.mixed.quantize import quantize
    from hwgen.mixed.train import accuracy, load_digits_split, logits, seed_everything, train

    seed_everything(1)
    xtr, ytr, xte, yte = load_digits_split(1)
    given = {"fc0": (3, 3), "fc1": (2, 3), "fc2": (3, None)}
    q = train(quantize(train(float_mlp(), xtr, ytr, epochs=2), given, 3), xtr, ytr, epochs=1, lr=5e-3)
    state = {k: v.clone() for k, v in q.state_dict().items()}
    own = accuracy(logits(q, xte[:48]), yte[:48])
    res = hwgen.search(q, (xtr, ytr, xte[:48], yte[:48]), out=tmp_path, n_points=1, baselines=(), epochs_qat=1,
                       qat_restarts=1, sens_samples=4, sim="icarus", synth=False, progress=None)
    print(res.table())
    assert [r.kind for r in res.rows] == ["mixed", "start"]
    start = res.rows[1]
    assert start.name == "start" and start.assignment == given and start.restarts == []
    assert start.mismatches == 0 and start.brevitas_accuracy == start.hardware_accuracy == own
    assert all(torch.equal(v, state[k]) for k, v in q.state_dict().items())
    assert any(line.startswith("the given model (fc0 W3A3 · fc1 W2A3 · fc2 W3): ") for line in res.summary())
    # the input bits came from the given model's input quantiser (3), not the default 4
    assert json.loads((tmp_path / "start" / "manifest.json").read_text())["head"]["quant"]["dtype"] == "UINT3"


def test_dominated_and_summary():
    from hwgen.mixed.result import Row, SearchResult, mark_dominated as _mark_dominated

    def row(name, kind, lut, acc, omega, drop):
        return Row(name, kind, {"fc0": (lut, None)}, omega, lut, lut, None, acc, acc, 1.0, 0, 1.0, {}, name,
                   measured_drop=drop)
    rows = [row("mixed_0", "mixed", 100, 0.90, 5.0, 0.2), row("mixed_1", "mixed", 300, 0.95, 3.0, 0.01),
            row("mixed_2", "mixed", 500, 0.97, 1.0, 0.02), row("w2a2", "uniform", 200, 0.95, 4.0, 0.1),
            row("w4a4", "uniform", 400, 0.96, 2.0, 0.05)]
    _mark_dominated(rows)
    assert [r.dominated_by for r in rows[:3]] == [None, "w2a2", None]
    res = SearchResult(rows, 0.98, {}, "out", False, 1e6, 100.0)
    assert [r.name for r in res.frontier()] == ["mixed_0", "mixed_2"]
    assert res.summary() == [
        "frontier (the allocation's configurations no uniform baseline dominates, proven): mixed_0, mixed_2",
        "mixed configurations dominated by a uniform baseline: mixed_1 (by w2a2)",
        "cheapest mixed configuration within 0.5% of w4a4's hardware accuracy: mixed_2, 97.00% vs 96.00%, "
        "500 vs 400 LUT (+25.0%)",
        # losses 0.08 0.03 0.01 0.03 0.02 against Ω 5 3 1 4 2 and drops .2 .01 .02 .1 .05
        "predictiveness, Spearman ρ with the accuracy lost after QAT over 5 configurations: "
        "Hessian sensitivity Σ Ω +0.97, one-layer-at-a-time measured drop +0.56"]


def test_chosen_for_a_budget_or_an_accuracy_floor():
    from hwgen.mixed.result import Row, SearchResult

    def row(name, kind, lut, acc):
        return Row(name, kind, {"fc0": (lut, None)}, 1.0, lut, lut, None, acc, acc, 1.0, 0, 1.0, {}, name,
                   measured_drop=0.0)
    rows = [row("mixed_0", "mixed", 100, 0.90), row("mixed_1", "mixed", 300, 0.95), row("mixed_2", "mixed", 500, 0.97),
            row("w2a2", "uniform", 200, 0.95), row("w4a4", "uniform", 400, 0.96)]
    res = SearchResult(rows, 0.98, {}, "out", False, 1e6, 100.0, max_lut=350)
    assert res.chosen() == (rows[3], "the most accurate within 350 LUT")      # 95 % at 200 beats 95 % at 300
    assert res.summary()[-1] == ("chosen (the most accurate within 350 LUT, estimated LUT): w2a2 (fc0 W200), "
                                 "95.00%, 200 LUT")
    res = SearchResult(rows, 0.98, {}, "out", True, 1e6, 100.0, min_accuracy=0.96)
    assert res.chosen() == (rows[4], "the cheapest at 96.00% accuracy or more")
    res = SearchResult(rows, 0.98, {}, "out", True, 1e6, 100.0, min_accuracy=0.99)
    assert res.summary()[-1] == ("chosen (the cheapest at 99.00% accuracy or more, synthesised LUT): "
                                 "none qualifies")
    assert SearchResult(rows, 0.98, {}, "out", True, 1e6, 100.0).chosen() is None


@pytest.mark.parametrize("kw, message", [
    ({"device": "ecp5-25k"}, "search: device must be a Xilinx part (the cost table prices LUT6), not ecp5-25k (ecp5); "
                             "give --max-lut in LUT6 instead"),
    ({"device": "xc9"}, "device must be one of xc7z010, xc7z020, xc7a35t, xc7a100t, ecp5-12k, ecp5-25k, ecp5-45k, "
                        "ecp5-85k, ice40-up5k, ice40-hx8k, xczu7ev, xcu280, xcu250, not 'xc9'"),
    ({"max_lut": 0}, "search: max_lut must be a positive LUT count, not 0"),
    ({"min_accuracy": 97.5}, "search: min_accuracy must be a fraction in (0, 1], not 97.5"),
    ({"qat_restarts": 0}, "search: qat_restarts must be a whole number ≥ 1, not 0"),
    ({"val_fraction": 1.0}, "search: val_fraction must be between 0 and 1, not 1.0"),
    ({"data": (1, 2, 3)}, "search: data must be (x_train, y_train, x_test, y_test) or (x_train, y_train, x_val, "
                          "y_val, x_test, y_test), not tuple of 3"),
])
def test_search_argument_errors(tmp_path, kw, message):
    import numpy as np

    import hwgen
    from hwgen.errors import HwgenError
    y = np.arange(20) % 2
    data = kw.pop("data", (np.zeros((20, 4), np.float32), y, np.zeros((4, 4), np.float32), y[:4]))
    with pytest.raises(HwgenError) as e:
        hwgen.search(None, data, out=tmp_path / "out", **kw)
    assert str(e.value) == message
    assert not os.path.exists(tmp_path / "out")


def test_cli_unknown_example(tmp_path, capsys):
    from hwgen.cli import main
    code = main(["search", "--example", "mnist", "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == ["hwgen: error: --example must be one of digits-mlp, digits-cnn, digits-res-mlp, not 'mnist'"]
    assert not os.path.exists(tmp_path / "out")


def test_cli_start_errors(tmp_path, capsys):
    from hwgen.cli import main
    missing = str(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    cases = [(["--start", missing], f"--start must be a file saved with torch.save(model), not {missing!r} (no such file)"),
             (["--start", str(tmp_path / "junk.pt")], f"--start {tmp_path / 'junk.pt'}: cannot be loaded ("),
             (["--test-fraction", "1.5"], "--test-fraction must be between 0 and 1, not 1.5")]
    for extra, message in cases:
        code = main(["search", "--example", "digits-mlp", "-o", str(tmp_path / "out")] + extra)
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and err[0].startswith("hwgen: error: " + message), err
    assert not os.path.exists(tmp_path / "out")


@pytest.mark.parametrize("val, expect, clamped", [
    ({"w2a2": 0.90, "w3a3": 0.95, "w4a4": 0.955, "w8a8": 0.96}, "w3a3", False),   # w3a3 within 0.5 points
    ({"w2a2": 0.96, "w3a3": 0.94, "w4a4": 0.955, "w8a8": 0.96}, "w3a3", True),    # w2a2 by noise: clamped
    ({"w2a2": 0.90, "w3a3": 0.94, "w4a4": 0.955, "w8a8": 0.96}, "w4a4", False),   # only w4a4 and up: w4a4
])
def test_sweep_calibration(val, expect, clamped):
    """How far the frontier sweeps: down to Σ Ω of the least precise baseline reaching W4A4's validation
    accuracy, but at least to the most precise baseline cheaper than W4A4; a budget sweeps LUTs."""
    import torch.nn as nn

    from hwgen.mixed.cost import CostTable
    from hwgen.mixed.quantize import uniform
    from hwgen.mixed.search import BASELINES, _key, _sweep

    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    names = ["fc0", "fc1", "fc2"]
    bits = (2, 3, 4, 8)
    costs = CostTable(names, 4, bits, 1e6, 100.0, "xilinx")
    sens = {}
    for i, n in enumerate(names):
        outs = (None,) if i == 2 else bits
        ins = (4,) if i == 0 else bits
        costs.lut[n] = {(p, w, a): 10 * p * w + 5 * (a or 1) for p in ins for w in bits for a in outs}
        sens[n] = {(w, a): 1.0 / (w * (a or 8)) ** 2 for w in bits for a in outs}
    done = {_key("uniform", uniform(model, w, a)): {"val_accuracy": val[f"w{w}a{a}"]} for w, a in BASELINES}
    ctx = {"budgets": None, "limit": None, "baselines": BASELINES}
    kw, why = _sweep(ctx, model, sens, costs, done, 180)
    loss = sum(sens[n][wa] for n, wa in uniform(model, int(expect[1]), int(expect[3])).items())
    ref = sum(sens[n][wa] for n, wa in uniform(model, 4, 4).items())
    assert kw == {"min_loss": pytest.approx(ref), "extra_losses": (pytest.approx(loss),)}
    assert why.startswith("calibration: ") and why.endswith(
        f"the frontier sweeps Σ Ω down to w4a4's {ref:.3g}, with a point at {loss:.3g}")
    assert ("at least as far as w3a3, the most precise baseline cheaper than w4a4" in why) == clamped
    assert _sweep({**ctx, "limit": 5000}, model, sens, costs, done, 180) == ({"max_lut": 5000}, None)


def test_failed_synthesis_leaves_the_rest(monkeypatch):
    """A synthesis that fails is recorded (the table says "failed", the estimate stands in) instead of
    ending the search."""
    import hwgen.flows as flows
    from hwgen.errors import HwgenError
    from hwgen.mixed.result import Row, SearchResult
    from hwgen.mixed.search import _synthesise

    def fail(*a, **k):
        raise HwgenError("synth-xilinx: failed (yosys); log OUT/synth/xilinx.log")
    monkeypatch.setattr(flows, "write_flows", lambda *a, **k: None)
    monkeypatch.setattr(flows, "run", fail)
    m, lines = {"build": "w8a8", "seconds": {}, "synth_lut": None}, []
    _synthesise(m, "OUT", {}, lines.append)
    assert m["synth_error"] == "synth-xilinx: failed (yosys); log OUT/synth/xilinx.log" and m["synth_lut"] is None
    assert lines == ["w8a8: synthesis failed, the estimate stands in: synth-xilinx: failed (yosys); "
                     "log OUT/synth/xilinx.log"]
    r = Row("w8a8", "uniform", {"fc0": (8, None)}, 1.0, 900, 1000, None, 0.9, 0.9, 1.0, 0, 1.0, {}, "w8a8",
            synth_error=m["synth_error"])
    assert r.lut == 1000
    assert "| 1,000 | failed | 90.00% |" in SearchResult([r], 0.95, {}, "out", True, 1e6, 100.0).table()
