"""Export a Brevitas module to a QONNX file."""

import contextlib
import io
import logging
import os
import warnings

from .. import progress as _progress
from ..errors import FrontendError
from ..files import publish, staging_dir
from ..validate import shown

__all__ = ["export_brevitas"]

_EXPORTERS = (("dynamo", True), ("torchscript", False))


@contextlib.contextmanager
def _hushed(verbose):
    """The exporters' own chatter (stdout, warnings, torch/brevitas logging) kept out of sight."""
    sink = io.StringIO()
    quiet = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(sink)
    loggers = [logging.getLogger(n) for n in ("", "torch", "torch.onnx", "torch.export", "brevitas")]
    levels = [lg.level for lg in loggers]
    with quiet, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, lv in zip(loggers, levels):
                lg.setLevel(lv)


def _embed_external_data(path):
    """Re-save ``path`` whole when the exporter left its tensors in side files.

    Brevitas re-saves the exported model with its tensors embedded, so the exporter's
    ``.onnx.data`` side file is a leftover (removed with the staging directory); this
    only acts should a future exporter keep tensors outside the file."""
    import onnx
    from onnx.external_data_helper import uses_external_data
    model = onnx.load(path, load_external_data=False)
    if any(uses_external_data(t) for t in model.graph.initializer):
        onnx.save(onnx.load(path), path)


def export_brevitas(module, example_input, path, *, verbose=False, progress=True):
    """Export ``module`` (a Brevitas ``nn.Module``) to QONNX at ``path``.

    Uses Brevitas' dynamo exporter and falls back to the TorchScript exporter
    where dynamo fails (e.g. residual adds of QuantTensors), each attempt shown
    as a progress line with its time (``progress=False``: none).  Everything is
    written in a hidden directory beside ``path`` that is removed afterwards
    (success or not): ``path`` appears only once complete, is the only file
    written, holds every tensor (no ``.onnx.data`` side file) and gets the
    user's umask.  Returns ``path``.
    """
    import torch
    from brevitas.export import export_qonnx

    if not isinstance(module, torch.nn.Module):
        raise FrontendError(f"module must be a torch nn.Module (a Brevitas model), not {shown(module)}")
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise FrontendError(f"path must be a file path, not {shown(path)}")
    path = os.fspath(path)
    if os.path.isdir(path):
        raise FrontendError(f"path {path}: is a directory; accepted: the path of the .onnx file to write")
    module = module.eval()
    name = os.path.basename(path) or "model.onnx"
    errors = []
    with staging_dir(path) as stage:
        for label, dynamo in _EXPORTERS:
            tmp = os.path.join(stage, f"{label}-{name}")
            what = f"export {module.__class__.__name__} ({label} exporter)"
            try:
                with _progress.task(what, enabled=progress), _hushed(verbose), torch.no_grad():
                    export_qonnx(module, input_t=example_input, export_path=tmp, dynamo=dynamo)
                    _embed_external_data(tmp)
            except Exception as e:  # noqa: BLE001 - an exporter fails in any way; try the other one
                first = str(e).splitlines()[0] if str(e) else ""
                errors.append(f"{label}: {e.__class__.__name__}: {first}")
                continue
            publish(tmp, path)
            return path
    raise FrontendError(f"module {module.__class__.__name__}: Brevitas QONNX export failed ({'; '.join(errors)})")
