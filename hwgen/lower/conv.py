"""Lowering of Conv: a SlidingWindow (im2col) followed by an MVAU, or by a VVAU
for a depthwise convolution (groups = channels)."""

import numpy as np

from ..dataflow import MVAU, VVAU, SlidingWindow
from ..errors import UnsupportedError
from .context import channel_vector
from .quant import _attr, quantised_weights
from .values import Acc, IntTensor

__all__ = ["lower_conv", "window_attrs"]


def _ints(node, name, default):
    for a in node.attribute:
        if a.name == name:
            return [int(v) for v in a.ints]
    return default


def window_attrs(node, kernel_default=None):
    """(kernel, stride, pads (top, left, bottom, right)) of a Conv/Pool node; rejects what is not supported."""
    where = f"node {node.name} ({node.op_type})"
    auto_pad = _attr(node, "auto_pad", "NOTSET")
    if auto_pad not in ("NOTSET", "VALID", b"NOTSET"):
        raise UnsupportedError(f"{where}: auto_pad must be NOTSET or VALID, not {auto_pad}")
    kernel = _ints(node, "kernel_shape", kernel_default)
    if kernel is None or len(kernel) != 2:
        raise UnsupportedError(f"{where}: only 2-D windows are supported, not kernel {kernel}")
    if min(kernel) < 1:
        raise UnsupportedError(f"{where}: kernel_shape must be 2 positive integers, not {kernel}")
    dil = _ints(node, "dilations", [1, 1])
    if any(d != 1 for d in dil):
        raise UnsupportedError(f"{where}: dilation {dil} is not supported; accepted: 1")
    stride = _ints(node, "strides", [1, 1])
    if len(stride) != 2 or min(stride) < 1:
        raise UnsupportedError(f"{where}: strides must be 2 positive integers, not {stride}")
    pads = _ints(node, "pads", [0, 0, 0, 0])
    if len(pads) != 4 or min(pads) < 0:
        raise UnsupportedError(f"{where}: pads must be 4 non-negative integers (top, left, bottom, right), not {pads}")
    return tuple(kernel), tuple(stride), (pads[0], pads[1], pads[2], pads[3])


def _int_tensor_4d(ctx, node, x):
    if not isinstance(x, IntTensor):
        raise UnsupportedError(f"node {node.name} ({node.op_type}): input must be the output of a quantiser (QuantIdentity/QuantReLU/…), not a float tensor")
    if len(x.shape) != 4:
        raise UnsupportedError(f"node {node.name} ({node.op_type}): input must be 4-D (N, C, H, W), not of shape {x.shape}")
    return x


def _pad_value(node, x):
    zp = np.asarray(x.zero_point, dtype=np.float64)
    if zp.size != 1:
        raise UnsupportedError(f"node {node.name}: the input zero point must be per tensor")
    return int(zp.reshape(()))


def lower_conv(ctx, node):
    x = _int_tensor_4d(ctx, node, ctx.get(node.input[0], node))
    where = f"node {node.name} (Conv)"
    w = quantised_weights(ctx, node, node.input[1])
    Wq = w.q.astype(np.int64)
    if Wq.ndim != 4:
        raise UnsupportedError(f"{where}: only 2-D convolutions are supported, not weights of shape {Wq.shape}")
    oc, icg, kh, kw = Wq.shape
    kernel, stride, pads = window_attrs(node, [kh, kw])
    if kernel != (kh, kw):
        raise UnsupportedError(f"{where}: kernel_shape {list(kernel)} does not match the weights of shape {tuple(Wq.shape)}")
    n, c, ih, iw = x.shape
    group = int(_attr(node, "group", 1))
    depthwise = group > 1
    if group == 1 and icg != c:
        raise UnsupportedError(f"{where}: weights of shape {tuple(Wq.shape)} read {icg} input channels, but the input "
                               f"{node.input[0]} has {c} (shape {tuple(x.shape)})")
    if group != 1 and not (group == c and oc == c and icg == 1):
        raise UnsupportedError(f"{where}: groups={group} is not supported; accepted: 1 or the number of channels ({c}) with one filter per channel")
    ws = np.broadcast_to(w.scale, Wq.shape)
    if not np.all(ws == ws[:, :1, :1, :1]):
        raise UnsupportedError(f"node {w.node} (Quant): weight scale must be per-tensor or per-output-channel")
    s_w = ws[:, 0, 0, 0].astype(np.float64)
    s_w = float(s_w[0]) if np.all(s_w == s_w[0]) else s_w.copy()
    s_x = np.asarray(x.scale, dtype=np.float64)
    if s_x.size != 1 and not depthwise:
        raise UnsupportedError(f"{where}: the input quantiser must be per-tensor, not per-channel; accepted: a per-channel "
                               f"input scale only into a depthwise convolution (groups = channels)")
    # a depthwise layer keeps each channel apart: a per-channel input scale commutes with it and joins
    # that channel's own output stage (its thresholds)
    s_x = float(s_x.reshape(())) if s_x.size == 1 else np.asarray(channel_vector(s_x, x.shape, f"{where}: input scale"))
    pad_value = _pad_value(node, x)
    if any(pads) and not x.dt.allowed(np.array([pad_value])):
        raise UnsupportedError(f"{where}: zero padding of a {x.dt} input is not representable (0 is not a {x.dt} value); accepted: no padding for bipolar inputs")

    pointwise = kernel == (1, 1) and stride == (1, 1) and not any(pads) and not depthwise
    if pointwise:          # a 1×1 convolution reads the feature map stream as it is
        swg, (oh, ow) = x, (ih, iw)
    else:
        swg = SlidingWindow(ctx.new_name("swg"), ifm=(ih, iw), channels=c, kernel=kernel, stride=stride, pad=pads,
                            pad_value=pad_value, dt=x.dt, depthwise=depthwise)
        swg.validate()
        oh, ow = swg.ofm
        ctx.add_layer(swg, node.name, x)
    if depthwise:
        layer = VVAU(ctx.new_name("dw"), channels=c, kernel_elems=kh * kw, in_dt=x.dt, wdt=w.dt, out_dt=None,
                     weights=Wq.reshape(c, kh * kw), spatial=(oh, ow))
        lo, hi = layer.channel_acc_range
        rowsum = layer.weights.sum(axis=1)
    else:
        W = Wq.transpose(0, 2, 3, 1).reshape(oc, kh * kw * c)        # columns in (kh, kw, c) order
        layer = MVAU(ctx.new_name("conv"), mw=kh * kw * c, mh=oc, in_dt=x.dt, wdt=w.dt, out_dt=None,
                     weights=W, spatial=(oh, ow))
        from ..dataflow import accumulator_range
        lo, hi = accumulator_range(W, x.dt)
        rowsum = W.sum(axis=1)
    ctx.add_layer(layer, node.name, swg, open=True)
    ops = []
    if pad_value != 0:
        ops.append({"op": "add", "value": -pad_value * rowsum.astype(np.float64)})
    ops.append({"op": "mul", "value": s_x * np.asarray(s_w)})
    if len(node.input) > 2 and node.input[2]:
        b = ctx.const(node.input[2], node, "bias")
        ops.append({"op": "add", "value": channel_vector(b.reshape(1, -1), (1, oc), f"{where}: bias")})
    ctx.values[node.output[0]] = Acc((n, oc, oh, ow), layer, lo, hi, ops, node.name)
