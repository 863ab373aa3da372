"""Hand-made QONNX graphs (onnx.helper), for tests that need files no exporter writes.

:class:`GraphBuilder` appends nodes to a graph in the QONNX dialect: ``Quant``
/ ``BipolarQuant`` on activations and weights, ``MatMul``/``Gemm``, ``Mul`` /
``Add`` scaling (the hls4ml/QKeras style), ``BatchNormalization``, ``Relu``,
``MultiThreshold``… so that tests can produce foreign-looking models and
random networks quickly, without torch.
"""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["GraphBuilder", "QONNX_DOMAIN"]

QONNX_DOMAIN = "qonnx.custom_op.general"


class GraphBuilder:
    def __init__(self, in_shape, domain=QONNX_DOMAIN, opset=13, name="g"):
        self.nodes, self.inits = [], []
        self.domain, self.opset, self.name = domain, opset, name
        self.in_shape = tuple(in_shape)
        self.k = 0
        self.cur = "x"

    def _n(self, prefix):
        self.k += 1
        return f"{prefix}{self.k}"

    def const(self, value, prefix="c"):
        name = self._n(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def node(self, op, inputs, domain="", out=None, **attrs):
        out = out or self._n(op.lower() + "_")
        self.nodes.append(helper.make_node(op, inputs, [out], name=self._n(op + "_n"), domain=domain, **attrs))
        return out

    # ---------------------------------------------------------------- ops
    def quant(self, x, scale, zp=0.0, bits=4, signed=True, narrow=False, mode="ROUND", op="Quant"):
        if bits == 1 and op != "Quant":
            return self.node("BipolarQuant", [x, self.const(scale, "s")], domain=self.domain)
        return self.node(op, [x, self.const(scale, "s"), self.const(zp, "z"), self.const(bits, "b")], domain=self.domain,
                         signed=int(signed), narrow=int(narrow), rounding_mode=mode)

    def bipolar(self, x, scale=1.0):
        return self.node("BipolarQuant", [x, self.const(scale, "s")], domain=self.domain)

    def act(self, scale, zp=0.0, bits=4, signed=True, narrow=False, mode="ROUND"):
        self.cur = self.quant(self.cur, scale, zp, bits, signed, narrow, mode) if bits > 1 else self.bipolar(self.cur, scale)
        return self.cur

    def matmul(self, w_float, w_scale, bits, narrow=True, gemm=False, bias=None):
        """x @ Quant(W) with W of shape (in, out) (or (out, in) with Gemm transB)."""
        w = self.const(w_float, "w")
        wq = self.quant(w, w_scale, 0.0, bits, True, narrow) if bits > 1 else self.bipolar(w, w_scale)
        if gemm:
            ins = [self.cur, wq] + ([self.const(bias, "bias")] if bias is not None else [])
            self.cur = self.node("Gemm", ins, transB=1)
        else:
            self.cur = self.node("MatMul", [self.cur, wq])
            if bias is not None:
                self.cur = self.node("Add", [self.cur, self.const(bias, "bias")])
        return self.cur

    def mul(self, v):
        self.cur = self.node("Mul", [self.cur, self.const(v, "m")])
        return self.cur

    def add(self, v):
        self.cur = self.node("Add", [self.cur, self.const(v, "a")])
        return self.cur

    def relu(self):
        self.cur = self.node("Relu", [self.cur])
        return self.cur

    def batchnorm(self, gamma, beta, mean, var, eps=1e-5):
        ins = [self.cur] + [self.const(v, p) for v, p in ((gamma, "g"), (beta, "be"), (mean, "mu"), (var, "var"))]
        self.cur = self.node("BatchNormalization", ins, epsilon=eps)
        return self.cur

    def multithreshold(self, thresholds, out_dtype="UINT4", out_scale=1.0, out_bias=0.0):
        self.cur = self.node("MultiThreshold", [self.cur, self.const(thresholds, "thr")], domain=self.domain,
                             out_dtype=out_dtype, out_scale=float(out_scale), out_bias=float(out_bias))
        return self.cur

    def model(self, out_shape):
        g = helper.make_graph(self.nodes, self.name,
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(self.in_shape))],
                              [helper.make_tensor_value_info(self.cur, TensorProto.FLOAT, list(out_shape))],
                              initializer=self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", self.opset), helper.make_opsetid(self.domain, 1)])
        m.ir_version = 8
        return m
