"""The Brevitas/FINN reference zoo as shipped in ``brevitas_examples``: exported unmodified, lowered exactly
against the Brevitas module run in float64, built with no target, verified in RTL.

The default run takes TFC-w1a1 through RTL and CNV-w1a1 through the IR; ``make zoo`` (marker ``zoo``)
takes every network of ``bench/zoo.py`` (the big ones under ``slow``).  The networks and their
preparation (their own initialisation, batch-norm affine parameters randomised, a calibration pass)
are ``bench/zoo.py``'s, so the table and the tests see the same models."""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
import zoo

SEED = 0
DEFAULT_IR = ("tfc_1w1a", "cnv_1w1a")
SMALL = [n for n, spec in zoo.NETWORKS.items() if spec[4]]


@pytest.fixture(scope="session")
def zoo_onnx(tmp_path_factory):
    """name -> (prepared Brevitas module, exported QONNX path); each exported once per session."""
    d = tmp_path_factory.mktemp("zoo")
    cache = {}

    def get(name):
        if name not in cache:
            model = zoo.make(name, SEED)
            path = str(d / f"{name}.onnx")
            zoo.export(name, model, path)
            cache[name] = (model, path)
        return cache[name]
    return get


def _ir(zoo_onnx, name, frames):
    print("network", name, "seed", SEED)
    model, path = zoo_onnx(name)
    x = zoo.inputs(name, frames, seed=SEED + 1)
    bad, levels, g = zoo.ir_check(path, model, x)
    assert bad == 0, f"{name}: {bad} outputs differ from the float64 Brevitas module"
    assert levels is not None and levels >= 2, f"{name}: a quantised layer saw only {levels} level(s)"
    return g


@pytest.mark.zoo
@pytest.mark.parametrize("name", DEFAULT_IR)
def test_zoo_exact_in_the_ir(zoo_onnx, name):
    g = _ir(zoo_onnx, name, 8)
    assert g.head.get("pre"), "the network's 2·x − 1 runs in the host head"


@pytest.mark.zoo
@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in zoo.NETWORKS if n not in DEFAULT_IR])
def test_zoo_exact_in_the_ir_all(zoo_onnx, name):
    _ir(zoo_onnx, name, 2 if name.startswith(("mobilenet", "proxyless")) else 8)


def _build_and_verify(zoo_onnx, name, tmp_path, frames, sim="verilator", folding=None):
    import hwgen
    model, path = zoo_onnx(name)
    b = hwgen.build(path, tmp_path / name, folding=folding, progress=False)
    assert b.manifest["cycles_per_frame"] > 0
    x = zoo.inputs(name, frames, seed=SEED + 2)
    r = hwgen.verify(b.out_dir, inputs=x, sim=sim, seed=SEED, progress=False)
    assert r.ok and r.mismatches == 0
    assert zoo.mismatches(r.outputs, zoo.reference(model, x)) == 0
    assert r.cycles_per_frame == pytest.approx(b.manifest["cycles_per_frame"], rel=0.05)
    return b, r


@pytest.mark.zoo
@pytest.mark.sim
@pytest.mark.e2e
def test_tfc_w1a1_as_shipped_in_rtl(zoo_onnx, tmp_path):
    """TFC-w1a1 from brevitas_examples at FINN's folding: exact in RTL at FINN's 64 cycles per frame;
    with no target it builds too (the default folding)."""
    import hwgen
    b, r = _build_and_verify(zoo_onnx, "tfc_1w1a", tmp_path, 16, folding=zoo.FINN_FOLDINGS["tfc_1w1a"])
    assert b.manifest["cycles_per_frame"] == zoo.NETWORKS["tfc_1w1a"][3] == 64
    d = hwgen.build(zoo_onnx("tfc_1w1a")[1], tmp_path / "default", progress=False)
    assert d.manifest["cycles_per_frame"] > 0


@pytest.mark.zoo
@pytest.mark.sim
@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in SMALL if n != "tfc_1w1a"])
def test_zoo_small_in_rtl(zoo_onnx, tmp_path, name):
    _build_and_verify(zoo_onnx, name, tmp_path, 8)


@pytest.mark.zoo
@pytest.mark.sim
@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize("name", ["lfc_1w1a", "cnv_1w1a", "cnv_2w2a"])
def test_zoo_big_in_rtl(zoo_onnx, tmp_path, name):
    _build_and_verify(zoo_onnx, name, tmp_path, 2)


@pytest.mark.zoo
@pytest.mark.slow
@pytest.mark.parametrize("name", list(zoo.NETWORKS))
def test_zoo_default_build(zoo_onnx, tmp_path, name):
    """No target: every network builds (the fastest folding that fits the default device) and says what it reached."""
    import hwgen
    _, path = zoo_onnx(name)
    b = hwgen.build(path, tmp_path / name, progress=False)
    assert b.manifest["cycles_per_frame"] > 0 and np.isfinite(b.manifest["fps"])


@pytest.mark.zoo
@pytest.mark.sim
@pytest.mark.e2e
@pytest.mark.slow
def test_mobilenet_v1_one_frame_in_rtl(zoo_onnx, tmp_path):
    """Quant MobileNet-v1 4b at 224×224, no target (the fastest folding that fits the U250): one whole frame
    exact in Verilator against float64 Brevitas, at the estimated cycles per frame (about 30 minutes)."""
    _build_and_verify(zoo_onnx, "mobilenet_v1_4b", tmp_path, 1)
