"""End to end for CNNs: Brevitas -> QONNX -> build -> RTL simulation, every word.

Each CNN spec (padding, stride, non-square kernels, depthwise, max and average
pooling, global pooling, 1×1 and kernel = input size, bipolar) is built and
verified on Verilator and Icarus under random valid gaps and back-pressure:
0 mismatches, floats equal to Brevitas, measured cycles within 2 % of the estimate.
"""

import numpy as np
import pytest
from refs import assert_matches_brevitas

from models import CNN_SPECS

pytestmark = [pytest.mark.sim, pytest.mark.e2e, pytest.mark.filterwarnings("ignore")]

FPS = {"conv_pad_bn_maxpool_fc": 1.5e5, "stride2_nonsquare_dw": 3e5, "avgpool_gap_k1": 2e5, "kernel_is_input_bipolar": 1e6,
       "k5_s3_pad2_pointwise_s2": 2e5, "k7_maxpool_pad_k2": 2.5e4}


@pytest.mark.parametrize("sim", ["verilator", "icarus"])
@pytest.mark.parametrize("name", sorted(CNN_SPECS))
def test_cnn_build_and_verify(spec_onnx, spec_build, name, sim):
    import hwgen
    from hwgen.host import random_inputs

    model, _ = spec_onnx(name)
    b = spec_build(name, fps=FPS[name])
    seed = 2000 + sorted(CNN_SPECS).index(name)
    print(f"seed {seed}")
    x = random_inputs(b.graph.head, 12, np.random.default_rng(seed)).astype(np.float32)
    r = hwgen.verify(b.out_dir, inputs=x, sim=sim, seed=seed, progress=False)
    assert r.mismatches == 0 and r.ok
    np.testing.assert_array_equal(r.outputs_int, r.expected_int)
    assert abs(r.cycles_per_frame - r.estimated_cycles_per_frame) <= 0.02 * r.estimated_cycles_per_frame
    assert_matches_brevitas(model, x, r.outputs, 1e-5 * max(1.0, float(np.abs(r.outputs).max())))
