"""Lowering of pooling on integer tensors: MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool.

Max-pooling runs on the quantised integers (it commutes with the
non-decreasing quantiser before it).  Average pooling becomes an integer sum
whose division by the window size stays in the tensor's scale, to be resolved
exactly by the next quantiser or Trunc.
"""

import numpy as np

from ..dataflow import GlobalPool, Pool, SlidingWindow
from ..dataflow.pool import pool_dtype
from ..errors import UnsupportedError
from .conv import _int_tensor_4d, _pad_value, window_attrs
from .quant import _attr
from .values import Acc, IntTensor

__all__ = ["lower_pool", "POOL_OPS"]

POOL_OPS = ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceMax")


def _reduce_axes(ctx, node):
    axes = [int(v) for a in node.attribute if a.name == "axes" for v in a.ints]
    if not axes and len(node.input) > 1 and node.input[1]:
        axes = [int(v) for v in np.asarray(ctx.const(node.input[1], node, "axes")).ravel()]
    return sorted(a % 4 for a in axes)


def lower_pool(ctx, node):
    op = node.op_type
    x = ctx.get(node.input[0], node)
    where = f"node {node.name} ({op})"
    if isinstance(x, Acc):
        raise UnsupportedError(f"{where}: pooling before the activation quantiser is not supported; accepted: pooling of a quantised tensor (put the pool after QuantReLU/QuantIdentity)")
    x = _int_tensor_4d(ctx, node, x)
    if x.perm is not None:
        raise UnsupportedError(f"{where}: pooling a flattened tensor is not supported")
    n, c, ih, iw = x.shape
    out = node.output[0]
    if op in ("ReduceMean", "ReduceMax"):
        if _reduce_axes(ctx, node) != [2, 3]:
            raise UnsupportedError(f"{where}: only a reduction over the spatial axes (2, 3) is supported, not axes {_reduce_axes(ctx, node)}")
        op = "GlobalAveragePool" if op == "ReduceMean" else "GlobalMaxPool"
    if op in ("GlobalAveragePool", "GlobalMaxPool"):
        mode = "sum" if op == "GlobalAveragePool" else "max"
        k = ih * iw
        layer = GlobalPool(ctx.new_name("gpool"), channels=c, ifm=(ih, iw), mode=mode, in_dt=x.dt,
                           out_dt=pool_dtype(mode, x.dt, k))
        ctx.add_layer(layer, node.name, x)
        shape = tuple(ctx.shape(out))          # (N, C, 1, 1), or (N, C) without keepdims
    else:
        if int(_attr(node, "ceil_mode", 0)):
            raise UnsupportedError(f"{where}: ceil_mode=1 is not supported; accepted: 0")
        kernel, stride, pads = window_attrs(node)
        mode = "max" if op == "MaxPool" else "sum"
        if mode == "max":
            pad_value = x.dt.min if x.dt.name != "BIPOLAR" else -1
        else:
            if any(pads) and not int(_attr(node, "count_include_pad", 0)):
                raise UnsupportedError(f"{where}: average pooling with padding must count the padding (count_include_pad=1)")
            pad_value = _pad_value(node, x)
            if any(pads) and not x.dt.allowed(np.array([pad_value])):
                raise UnsupportedError(f"{where}: zero padding of a {x.dt} input is not representable")
        swg = SlidingWindow(ctx.new_name("swg"), ifm=(ih, iw), channels=c, kernel=kernel, stride=stride, pad=pads,
                            pad_value=pad_value, dt=x.dt, depthwise=True)
        swg.validate()
        ctx.add_layer(swg, node.name, x)
        k = kernel[0] * kernel[1]
        oh, ow = swg.ofm
        layer = Pool(ctx.new_name("pool"), channels=c, kernel_elems=k, mode=mode, in_dt=x.dt,
                     out_dt=pool_dtype(mode, x.dt, k), spatial=(oh, ow))
        ctx.add_layer(layer, node.name, swg)
        shape = (n, c, oh, ow)
    if mode == "max":
        ctx.values[out] = IntTensor(shape, x.dt, x.scale, x.zero_point, layer, node.name)
    else:   # mean = scale · (sum − k·zp) / k
        ctx.values[out] = IntTensor(shape, layer.odt, np.asarray(x.scale, dtype=np.float64) / k,
                                    np.asarray(x.zero_point, dtype=np.float64) * k, layer, node.name)
