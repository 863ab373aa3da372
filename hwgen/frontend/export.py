"""Export a Brevitas module to a QONNX file."""

import contextlib
import io
import logging
import os
import tempfile
import warnings

from ..errors import FrontendError

__all__ = ["export_brevitas"]


def export_brevitas(module, example_input, path, *, verbose=False):
    """Export ``module`` (a Brevitas ``nn.Module``) to QONNX at ``path``.

    Uses Brevitas' dynamo exporter and falls back to the TorchScript exporter
    where dynamo fails (e.g. residual adds of QuantTensors).  The file appears
    at ``path`` only once complete.  Returns ``path``.
    """
    import torch
    from brevitas.export import export_qonnx

    module = module.eval()
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=d)
    os.close(fd)
    errors = []
    try:
        for dynamo in (True, False):
            sink = io.StringIO()
            quiet = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(sink)
            try:
                with quiet, warnings.catch_warnings(), torch.no_grad():
                    warnings.simplefilter("ignore")
                    loggers = [logging.getLogger(n) for n in ("", "torch", "torch.onnx", "torch.export", "brevitas")]
                    levels = [lg.level for lg in loggers]
                    for lg in loggers:
                        lg.setLevel(logging.ERROR)
                    try:
                        export_qonnx(module, input_t=example_input, export_path=tmp, dynamo=dynamo)
                    finally:
                        for lg, lv in zip(loggers, levels):
                            lg.setLevel(lv)
                os.replace(tmp, path)
                return path
            except Exception as e:  # try the other exporter
                errors.append(f"{'dynamo' if dynamo else 'torchscript'}: {e.__class__.__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        raise FrontendError(f"module {module.__class__.__name__}: Brevitas QONNX export failed ({'; '.join(errors)})")
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
