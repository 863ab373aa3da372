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
                       epochs_float=2, epochs_qat=1, sens_samples=4, sim="icarus", synth=False, progress=lines.append)
    print("\n".join(lines))
    print(res.table() + "\n\n" + res.timing_table())
    kinds = [r.kind for r in res.rows]
    assert kinds.count("uniform") == 1 and 1 <= kinds.count("mixed") <= 2
    for r in res.rows:
        assert r.mismatches == 0, r.name
        assert r.hardware_accuracy == r.brevitas_accuracy and r.agreement == 1.0, r.name
        assert r.synth_lut is None and r.lut == r.estimated_lut > 0
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
    assert (tmp_path / "frontier.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_dominated_and_summary():
    from hwgen.mixed.search import Row, SearchResult, _mark_dominated

    def row(name, kind, lut, acc, omega, drop):
        return Row(name, kind, {"fc0": (lut, None)}, omega, lut, lut, None, acc, acc, 1.0, 0, 1.0, {}, name,
                   measured_drop=drop)
    rows = [row("mixed_0", "mixed", 100, 0.90, 5.0, 0.2), row("mixed_1", "mixed", 300, 0.95, 3.0, 0.01),
            row("mixed_2", "mixed", 500, 0.97, 1.0, 0.02), row("w2a2", "uniform", 200, 0.95, 4.0, 0.1),
            row("w4a4", "uniform", 400, 0.96, 2.0, 0.05)]
    _mark_dominated(rows)
    assert [r.dominated_by for r in rows[:3]] == [None, "w2a2", None]
    res = SearchResult(rows, 0.98, {}, "out", False, 1e6, 100.0)
    assert res.summary() == [
        "mixed configurations dominated by a uniform baseline: mixed_1 (by w2a2)",
        "cheapest mixed configuration within 0.5% of w4a4's hardware accuracy: mixed_2, 97.00% vs 96.00%, "
        "500 vs 400 LUT (+25.0%)",
        # losses 0.08 0.03 0.01 0.03 0.02 against Ω 5 3 1 4 2 and drops .2 .01 .02 .1 .05
        "predictiveness, Spearman ρ with the accuracy lost after QAT over 5 configurations: "
        "Hessian sensitivity Σ Ω +0.97, one-layer-at-a-time measured drop +0.56"]


def test_cli_unknown_example(tmp_path, capsys):
    from hwgen.cli import main
    code = main(["search", "--example", "mnist", "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == ["hwgen: error: --example must be one of digits-mlp, digits-cnn, not 'mnist'"]
    assert not os.path.exists(tmp_path / "out")
