"""The hwgen demo: a mixed-precision MLP on scikit-learn digits, end to end.

Trains (seeded, seconds) a 64→64→32→10 MLP in float and then with Brevitas
quantisation-aware training at different bit widths per layer, exports QONNX,
builds the accelerator, verifies it on Verilator over the whole held-out set
and prints float / Brevitas / hardware accuracy, mismatches, cycles per frame
measured vs estimated, throughput and the per-layer resource estimates.

    python examples/digits_mlp.py [--out build/digits_mlp] [--sim verilator|icarus]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from digits import run_demo

# (weight bits, activation bits) per layer: mixed on purpose
CONFIG = {"in_bits": 4, "layers": [(64, 4, 4), (32, 3, 3), (10, 4, None)]}


def float_mlp():
    import torch.nn as nn
    return nn.Sequential(nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(),
                         nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(),
                         nn.Linear(32, 10))


def quant_mlp(config=CONFIG, float_model=None):
    """Brevitas MLP with per-layer weight/activation bits; copies float weights when given."""
    import brevitas.nn as qnn
    import torch.nn as nn
    from brevitas.quant import Uint8ActPerTensorFloat

    mods = [qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, bit_width=config["in_bits"], return_quant_tensor=True)]
    fan_in = 64
    for out_f, wb, ab in config["layers"]:
        mods.append(qnn.QuantLinear(fan_in, out_f, bias=True, weight_bit_width=wb))
        if ab is not None:
            mods += [nn.BatchNorm1d(out_f), qnn.QuantReLU(bit_width=ab, return_quant_tensor=True)]
        fan_in = out_f
    model = nn.Sequential(*mods)
    if float_model is not None:
        fl = [m for m in float_model if isinstance(m, (nn.Linear, nn.BatchNorm1d))]
        ql = [m for m in model if isinstance(m, (nn.Linear, nn.BatchNorm1d))]
        for f, q in zip(fl, ql):
            q.load_state_dict(f.state_dict(), strict=False)
    return model


def main(argv=None):
    return run_demo("digits_mlp", float_mlp, lambda f: quant_mlp(CONFIG, f), (64,), __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
