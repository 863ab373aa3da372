"""Peer measurement: hls4ml's C simulation of a QONNX network, timed end to end.

Runs in hls4ml's own virtualenv, never in hwgen's (it imports only hls4ml, qonnx, onnx,
numpy and the standard library).  Setup, once:

    python3 -m venv /work/hls4ml-venv
    /work/hls4ml-venv/bin/pip install --upgrade pip
    /work/hls4ml-venv/bin/pip install 'hls4ml==1.3.0' qonnx onnx numpy

(no torch, TensorFlow or Keras is needed for the ONNX frontend; g++ must be on PATH for
the C simulation).  Use:

    /work/hls4ml-venv/bin/python bench/peers/hls4ml_csim.py MODEL.onnx INPUTS.npy --out DIR \\
        [--precision 'fixed<64,24>'] [--io io_parallel|io_stream] [--reference N] [--json RESULT.json]

Steps, each timed with time.monotonic():
  convert  load the QONNX file, clean it (qonnx cleanup, channels-last, Gemm -> MatMul, cleanup
           again, as hls4ml's QONNX frontend docs ask), build the config, convert with backend
           Vitis and write the HLS project to DIR/hls4ml_prj;
  compile  hls_model.compile(): the g++ build of the C simulation library;
  predict  hls_model.predict(x) over all frames (x is float64, as hls4ml's ctypes bridge takes).
Predictions go to DIR/predictions.npy; the figures are printed and written as JSON.  With
``--reference N`` the first N frames also run through qonnx's execute_onnx on the cleaned
QONNX file as given and the largest |hls4ml - qonnx| is reported (informational).
"""

import argparse
import json
import os
import sys
import time

import numpy as np


def clean_qonnx(path):
    """The QONNX model at ``path``, cleaned and made channels-last as hls4ml's frontend wants."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.transformation.gemm_to_matmul import GemmToMatMul
    from qonnx.util.cleanup import cleanup_model

    model = cleanup_model(ModelWrapper(path))
    model = model.transform(ConvertToChannelsLastAndClean())
    model = model.transform(GemmToMatMul())
    return cleanup_model(model)


def qonnx_reference(path, x):
    """Outputs of the QONNX file as given (channels-first, before hls4ml's cleaning) under
    qonnx's own executor, one frame at a time."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model

    model = cleanup_model(ModelWrapper(path))

    iname, oname = model.graph.input[0].name, model.graph.output[0].name
    ishape = model.get_tensor_shape(iname)
    outs = []
    for frame in x:
        res = execute_onnx(model, {iname: frame.reshape(ishape).astype(np.float32)})
        outs.append(np.asarray(res[oname]).reshape(-1))
    return np.stack(outs)


def to_channels_last(x, model):
    """Frames given channels-first (N, C, H, W) turned to the cleaned model's (N, H, W, C)."""
    ishape = model.get_tensor_shape(model.graph.input[0].name)
    if x.ndim == 4 and tuple(x.shape[1:]) != tuple(ishape[1:]):
        x = np.transpose(x, (0, 2, 3, 1))
    return np.ascontiguousarray(x)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="QONNX .onnx file")
    ap.add_argument("inputs", help=".npy of frames, (N, ...) in the ONNX model's (channels-first) layout")
    ap.add_argument("--out", required=True, help="work directory (HLS project, predictions.npy)")
    ap.add_argument("--precision", default="fixed<64,24>", help="default precision of the hls4ml config")
    ap.add_argument("--io", default="io_parallel", choices=["io_parallel", "io_stream"])
    ap.add_argument("--reuse", type=int, default=1, help="default reuse factor")
    ap.add_argument("--reference", type=int, default=0, metavar="N",
                    help="compare the first N frames with qonnx's execute_onnx")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)

    import hls4ml

    os.makedirs(args.out, exist_ok=True)
    x = np.load(args.inputs)

    t0 = time.monotonic()
    model = clean_qonnx(args.model)
    config = hls4ml.utils.config_from_onnx_model(
        model, granularity="name", backend="Vitis",
        default_precision=args.precision, default_reuse_factor=args.reuse)
    hls_model = hls4ml.converters.convert_from_onnx_model(
        model, output_dir=os.path.join(os.path.abspath(args.out), "hls4ml_prj"),
        backend="Vitis", io_type=args.io, hls_config=config)
    hls_model.write()
    t1 = time.monotonic()
    hls_model.compile()
    t2 = time.monotonic()
    xin = to_channels_last(x, model).astype(np.float64)
    y = np.asarray(hls_model.predict(xin))
    t3 = time.monotonic()

    y = y.reshape(len(x), -1)
    np.save(os.path.join(args.out, "predictions.npy"), y)
    frames = int(len(x))
    result = {
        "tool": "hls4ml", "hls4ml_version": hls4ml.__version__, "backend": "Vitis", "io_type": args.io,
        "precision": args.precision, "model": os.path.abspath(args.model), "frames": frames,
        "convert_s": round(t1 - t0, 4), "compile_s": round(t2 - t1, 4), "predict_s": round(t3 - t2, 4),
        "fps": round(frames / (t3 - t2), 1) if t3 > t2 else None, "total_s": round(t3 - t0, 4),
    }
    if args.reference:
        n = min(args.reference, frames)
        ref = qonnx_reference(args.model, x[:n])
        result["reference_frames"] = n
        result["max_abs_diff_vs_qonnx"] = float(np.abs(y[:n] - ref).max())
        result["same_argmax_vs_qonnx"] = float((y[:n].argmax(1) == ref.argmax(1)).mean())
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
