"""End to end: Brevitas MLPs -> QONNX -> hwgen build -> RTL simulation, every word.

Each spec of :data:`models.SPECS` (any mix of the MLP features, layer by layer)
is built with a throughput target and verified on Verilator and Icarus with
random valid gaps and ready back-pressure: 0 mismatching words, the RTL equals
the IR reference, the floats after the tail equal Brevitas' own outputs, and
the measured interval between frames is within 2 % of the estimate.
"""

import numpy as np
import pytest
from refs import assert_matches_brevitas

from models import SPECS

pytestmark = [pytest.mark.sim, pytest.mark.e2e, pytest.mark.filterwarnings("ignore")]

FPS = {"w4a4_relu_bn": 4e6, "bipolar_w_mixed": 5e6, "w8a8_channel": 2e6, "po2_quantbias": 1e7,
       "hardtanh_narrow_bn": 3e6, "bipolar_acts": 1e7, "a2_relu_w2": 5e6, "quant_output": 1e7}


@pytest.mark.parametrize("sim", ["verilator", "icarus"])
@pytest.mark.parametrize("name", sorted(SPECS))
def test_build_and_verify(spec_onnx, spec_build, name, sim):
    import hwgen
    from hwgen.host import random_inputs

    model, _ = spec_onnx(name)
    b = spec_build(name, fps=FPS[name])
    seed = 1000 + sorted(SPECS).index(name)
    print(f"seed {seed}")
    x = random_inputs(b.graph.head, 40, np.random.default_rng(seed)).astype(np.float32)
    r = hwgen.verify(b.out_dir, inputs=x, sim=sim, seed=seed, progress=False)
    assert r.mismatches == 0 and r.ok
    np.testing.assert_array_equal(r.outputs_int, r.expected_int)
    assert abs(r.cycles_per_frame - r.estimated_cycles_per_frame) <= 0.02 * r.estimated_cycles_per_frame
    assert r.estimated_cycles_per_frame <= 100e6 / FPS[name]
    assert_matches_brevitas(model, x, r.outputs, 1e-5 * max(1.0, float(np.abs(r.outputs).max())))


def test_folding_file_partial_and_full(spec_onnx, tmp_path):
    """PE/SIMD at 1, partial and full through a folding file; every word checked on Verilator."""
    import hwgen
    _, path = spec_onnx("w4a4_relu_bn")       # 12 -> 10 -> 6
    folding = {"fc0": {"pe": 10, "simd": 12}, "fc1": {"pe": 2, "simd": 5}}
    b = hwgen.build(path, tmp_path / "b", folding=folding, progress=False)
    assert [(l.folding) for l in b.graph.compute_layers] == [{"pe": 10, "simd": 12}, {"pe": 2, "simd": 5}]
    r = hwgen.verify(b.out_dir, frames=60, sim="verilator", seed=5, progress=False)
    assert r.ok and r.mismatches == 0
    assert r.cycles_per_frame == pytest.approx(b.cycles_per_frame, rel=0.02)
    b1 = hwgen.build(path, tmp_path / "b1", folding={"fc0": {"pe": 1, "simd": 1}, "fc1": {"pe": 1, "simd": 1}}, progress=False)
    assert b1.cycles_per_frame == 120
    r1 = hwgen.verify(b1.out_dir, frames=12, sim="icarus", seed=6, progress=False)
    assert r1.ok and r1.cycles_per_frame == pytest.approx(120, rel=0.02)
