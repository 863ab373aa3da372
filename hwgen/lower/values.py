"""Abstract values that lowering tracks for every tensor of the QONNX graph.

* :class:`Const` — a float constant (initialiser or folded).
* :class:`IntConst` — a quantised constant (weights, quantised bias):
  ``real = scale · (q − zero_point)``.
* :class:`FloatInput` — the model's float input, before its first quantiser, with the float
  ops the host applies to it first (:mod:`.host_ops`).
* :class:`IntTensor` — an exact integer activation stream with its scale; it
  is produced by the host head (``producer is None``) or by a hardware layer.
* :class:`Acc` — an integer tensor (an MVAU's accumulator, or an
  :class:`IntTensor`) followed by a pending chain of per-channel monotone float
  ops; the next quantiser turns it into thresholds.
* :class:`PendingConcat` — a Concat of differently quantised tensors (or raw
  accumulators): nothing is built until the next quantiser, which requantises
  each part with its own channels' parameters, then concatenates the results.
"""

from dataclasses import dataclass, field

import numpy as np

from ..dtypes import DType

__all__ = ["Const", "IntConst", "FloatInput", "IntTensor", "Acc", "PendingConcat"]


@dataclass
class Const:
    value: np.ndarray

    @property
    def shape(self):
        return tuple(self.value.shape)


@dataclass
class IntConst:
    q: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray
    dt: DType
    node: str

    @property
    def shape(self):
        return tuple(self.q.shape)

    def real(self):
        return self.scale * (self.q - self.zero_point)


@dataclass
class FloatInput:
    shape: tuple
    name: str
    transpose: tuple = None     # host-side permutation applied before reshaping
    ops: tuple = ()             # float work of the head before the quantiser (hwgen.host.eval_pre), ONNX layout


@dataclass
class IntTensor:
    shape: tuple                # ONNX shape, batch axis included
    dt: DType
    scale: np.ndarray           # broadcastable to shape
    zero_point: np.ndarray
    producer: object = None     # IR layer, or None for the host head
    node: str = ""
    perm: object = None         # flattened from a feature map: IR element i is ONNX element perm[i]

    @property
    def channels(self):
        return int(self.shape[1]) if len(self.shape) > 1 else 1

    @property
    def ir_shape(self):
        """Channels-last shape of the stream: (C,) or (H, W, C)."""
        if len(self.shape) == 4:
            return (int(self.shape[2]), int(self.shape[3]), int(self.shape[1]))
        if len(self.shape) == 2:
            return (int(self.shape[1]),)
        raise ValueError(f"tensor of rank {len(self.shape)}")


@dataclass
class Acc:
    shape: tuple
    base: object                # MVAU layer or IntTensor
    lo: np.ndarray              # (C,) exact range of the base integers
    hi: np.ndarray
    ops: list = field(default_factory=list)
    node: str = ""


@dataclass
class PendingConcat:
    shape: tuple                # ONNX shape of the concatenation, batch axis included
    parts: list                 # an Acc per input, in channel order
    node: str = ""              # the Concat node
    finish: object = None       # finish(ctx, node, pending, q, dt, out_scale, out_zp) -> IntTensor (lower/branch.py)
