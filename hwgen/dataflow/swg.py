"""SlidingWindow: the im2col generator of a convolution or pooling window.

Input: a feature map ``(IH, IW, C)`` streamed channels-last in words of
``simd`` lanes.  Output: for every output pixel ``(oy, ox)`` (row-major) the
window ``x[oy·SH + kh − PT, ox·SW + kw − PL, c]`` with out-of-image positions
set to ``pad_value``, ordered

* ``(kh, kw, c)`` (``depthwise=False``, the order an MVAU's weight columns use), or
* ``(c // simd, kh, kw, c % simd)`` (``depthwise=True``: a word's lanes are
  ``simd`` channels of one kernel position, all K positions of a channel group
  before the next group — the order a VVAU or a Pool consumes).

Cycles per frame: one word in or out per cycle, so
``max(OH·OW·KH·KW·C, IH·IW·C) / SIMD``.
"""

import math
from dataclasses import dataclass

import numpy as np

from ..dtypes import DType
from ..errors import FoldingError, HwgenError
from .base import Layer, register, rom_resources

__all__ = ["SlidingWindow", "im2col"]


def im2col(x, kernel, stride, pad, pad_value, depthwise=False, simd=1):
    """Reference window generator: (N, IH, IW, C) -> (N, OH, OW, KH·KW·C)."""
    x = np.asarray(x, dtype=np.int64)
    n, ih, iw, c = x.shape
    kh, kw = kernel
    sh, sw = stride
    pt, pl, pb, pr = pad
    xp = np.full((n, ih + pt + pb, iw + pl + pr, c), pad_value, dtype=np.int64)
    xp[:, pt:pt + ih, pl:pl + iw, :] = x
    oh = (ih + pt + pb - kh) // sh + 1
    ow = (iw + pl + pr - kw) // sw + 1
    out = np.empty((n, oh, ow, kh, kw, c), dtype=np.int64)
    for i in range(kh):
        for j in range(kw):
            out[:, :, :, i, j, :] = xp[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw, :]
    if depthwise:
        out = out.reshape(n, oh, ow, kh * kw, c // simd, simd).transpose(0, 1, 2, 4, 3, 5)
    return out.reshape(n, oh, ow, kh * kw * c)


@register
@dataclass
class SlidingWindow(Layer):
    kind = "SlidingWindow"

    ifm: tuple = (1, 1)              # (IH, IW)
    channels: int = 1
    kernel: tuple = (1, 1)           # (KH, KW)
    stride: tuple = (1, 1)           # (SH, SW)
    pad: tuple = (0, 0, 0, 0)        # (top, left, bottom, right)
    pad_value: int = 0
    dt: DType = None
    simd: int = 1
    depthwise: bool = False
    mem_style: str = "auto"

    @property
    def idt(self):
        return self.dt

    @property
    def odt(self):
        return self.dt

    @property
    def ofm(self):
        (ih, iw), (kh, kw), (sh, sw) = self.ifm, self.kernel, self.stride
        pt, pl, pb, pr = self.pad
        return ((ih + pt + pb - kh) // sh + 1, (iw + pl + pr - kw) // sw + 1)

    @property
    def in_shape(self):
        return tuple(self.ifm) + (self.channels,)

    @property
    def out_shape(self):
        return tuple(self.ofm) + (self.kernel[0] * self.kernel[1] * self.channels,)

    @property
    def in_lanes(self):
        return self.simd

    out_lanes = in_lanes

    @property
    def folding(self):
        return {"simd": self.simd}

    def validate(self):
        (ih, iw), (kh, kw), (sh, sw) = self.ifm, self.kernel, self.stride
        pt, pl, pb, pr = self.pad
        if min(kh, kw, sh, sw, ih, iw) < 1 or min(self.pad) < 0:
            raise HwgenError(f"layer {self.name}: kernel, stride and image sizes must be positive and padding non-negative")
        if kh > ih + pt + pb or kw > iw + pl + pr:
            raise HwgenError(f"layer {self.name}: kernel {kh}×{kw} must fit the padded input {ih + pt + pb}×{iw + pl + pr}")
        if max(pt, pb) >= kh or max(pl, pr) >= kw:
            raise HwgenError(f"layer {self.name}: padding {self.pad} must be smaller than the kernel {kh}×{kw}")
        if not isinstance(self.simd, int) or self.simd < 1 or self.channels % self.simd:
            raise FoldingError(f"layer {self.name}: SIMD={self.simd} must divide C={self.channels}")
        if not self.dt.allowed(np.array([self.pad_value])) and any(self.pad):
            raise HwgenError(f"layer {self.name}: padding value {self.pad_value} is not a {self.dt} value")

    def execute(self, x):
        x = self.check_input(x)
        return im2col(x, self.kernel, self.stride, self.pad, self.pad_value, self.depthwise, self.simd)

    def cycles(self):
        (oh, ow), (kh, kw) = self.ofm, self.kernel
        out_words = oh * ow * kh * kw * self.channels // self.simd
        in_words = self.ifm[0] * self.ifm[1] * self.channels // self.simd
        return max(out_words, in_words)

    def resources(self):
        w = self.simd * self.dt.bits
        rows = self.kernel[0] + self.stride[0]
        depth = rows * (self.ifm[1] + self.pad[1] + self.pad[3]) * (self.channels // self.simd)
        mem = rom_resources(w, depth, self.mem_style)
        ctr = 6 * 12
        return {"LUT": 60 + ctr + mem["LUT"] + 2 * w, "FF": 80 + 2 * w, "BRAM18": mem["BRAM18"], "DSP": 0}
