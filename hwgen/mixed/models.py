"""The float models of the digits examples, for ``hwgen search --example``.

``EXAMPLES[name]``: the float model builder, the input shape of one sample and the throughput
target the example is built at (the CNN's first window generator streams one 1-channel pixel
per cycle, 576 cycles per frame, so it runs slower than the MLP).  ``digits-res-mlp`` adds a
residual block (:class:`hwgen.mixed.Residual`) to an MLP.
"""

__all__ = ["float_mlp", "float_cnn", "float_res_mlp", "EXAMPLES"]


def float_mlp():
    """64 → 64 → 32 → 10 with BatchNorm and ReLU (examples/digits_mlp.py)."""
    import torch.nn as nn
    return nn.Sequential(nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(),
                         nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(),
                         nn.Linear(32, 10))


def float_cnn():
    """1×8×8 → conv 3×3 8 ch → pool 2 → conv 3×3 16 ch → pool 2 → FC 10 (examples/digits_cnn.py)."""
    import torch.nn as nn
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64, 10))


def float_res_mlp():
    """64 → 32, then a residual block 32 → 32 → 32 (+ the block input, ReLU), then → 10."""
    import torch.nn as nn

    from .quantize import _residual_class
    Residual = _residual_class()
    return nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(),
                         Residual(nn.Sequential(nn.Linear(32, 32), nn.BatchNorm1d(32), nn.ReLU(),
                                                nn.Linear(32, 32), nn.BatchNorm1d(32)), act="relu"),
                         nn.Linear(32, 10))


EXAMPLES = {
    "digits-mlp": {"model": float_mlp, "input_shape": (64,), "fps": 1e6},
    "digits-cnn": {"model": float_cnn, "input_shape": (1, 8, 8), "fps": 1.5e5},
    "digits-res-mlp": {"model": float_res_mlp, "input_shape": (64,), "fps": 1e6},
}
