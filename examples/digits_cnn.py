"""hwgen demo: a mixed-precision CNN on scikit-learn digits, end to end.

Input 1×8×8 (4-bit) → conv 3×3/pad 1, 8 ch (W4A4) → max-pool 2 → conv 3×3/pad 1,
16 ch (W3A3) → max-pool 2 → flatten 64 → FC 10 (W4).  Trains in float, then with
Brevitas QAT, exports QONNX, builds, verifies on Verilator over the whole
held-out set and prints float / Brevitas / hardware accuracy, mismatches,
cycles per frame measured vs estimated, throughput and resource estimates.

    python examples/digits_cnn.py [--out build/digits_cnn] [--sim verilator|icarus]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from digits import run_demo

# (out channels, weight bits, activation bits)
CONFIG = {"in_bits": 4, "convs": [(8, 4, 4), (16, 3, 3)], "fc_bits": 4}


def float_cnn():
    import torch.nn as nn
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64, 10))


def quant_cnn(float_model=None, config=CONFIG):
    import brevitas.nn as qnn
    import torch.nn as nn
    from brevitas.quant import Uint8ActPerTensorFloat

    mods = [qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, bit_width=config["in_bits"], return_quant_tensor=True)]
    cin = 1
    for cout, wb, ab in config["convs"]:
        mods += [qnn.QuantConv2d(cin, cout, 3, padding=1, bias=True, weight_bit_width=wb), nn.BatchNorm2d(cout),
                 qnn.QuantReLU(bit_width=ab, return_quant_tensor=True), nn.MaxPool2d(2)]
        cin = cout
    mods += [nn.Flatten(), qnn.QuantLinear(64, 10, bias=True, weight_bit_width=config["fc_bits"])]
    model = nn.Sequential(*mods)
    if float_model is not None:
        kinds = (nn.Conv2d, nn.Linear, nn.BatchNorm2d)
        for f, q in zip([m for m in float_model if isinstance(m, kinds)], [m for m in model if isinstance(m, kinds)]):
            q.load_state_dict(f.state_dict(), strict=False)
    return model


def main(argv=None):
    # the first layer's window generator streams one 1-channel pixel per cycle: 576 cycles per frame
    return run_demo("digits_cnn", float_cnn, quant_cnn, (1, 8, 8), __doc__, argv, epochs=30, fps=1.5e5)


if __name__ == "__main__":
    sys.exit(main())
