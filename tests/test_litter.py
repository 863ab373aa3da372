"""No litter: export and build write only where asked, with the user's umask (issue 12 part 4)."""

import os
import stat

import pytest

import hwgen
from hwgen import files
from hwgen.errors import FrontendError

UMASK = 0o027                       # not the usual 022, so that a hard-coded 0644 would show


@pytest.fixture
def umask():
    old = os.umask(UMASK)
    try:
        yield UMASK
    finally:
        os.umask(old)


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """An empty working directory that is not the destination's folder."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _model():
    from models import L, make_mlp
    spec = {"in": 6, "in_bits": 4, "layers": [L(5, 3), L(3, 3, act="identity", a=4)]}
    return make_mlp(spec, seed=2), spec


def test_umask_is_read_without_change(umask):
    assert files.umask() == UMASK
    assert files.umask() == UMASK                  # reading it did not reset it
    assert files.file_mode() == 0o640 and files.dir_mode() == 0o750


def test_export_writes_only_the_file(tmp_path, elsewhere, umask, capsys):
    import torch
    model, spec = _model()
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "mine.txt").write_text("the user's")
    path = dst / "m.onnx"
    assert hwgen.export_brevitas(model, torch.randn(1, spec["in"]), path) == str(path)
    assert sorted(os.listdir(dst)) == ["m.onnx", "mine.txt"]      # no tmp*.onnx, no .onnx.data, no staging dir
    assert os.listdir(elsewhere) == []
    assert _mode(path) == 0o666 & ~UMASK
    import onnx
    from onnx.external_data_helper import uses_external_data
    m = onnx.load(str(path), load_external_data=False)
    assert m.graph.initializer and not any(uses_external_data(t) for t in m.graph.initializer)   # embedded
    hwgen.load(str(path))                                             # a complete QONNX file
    err = capsys.readouterr().err
    assert "[hwgen] export Sequential (dynamo exporter) …" in err
    assert "[hwgen] export Sequential (dynamo exporter): " in err and " s\n" in err


def test_export_replaces_and_stays_quiet(tmp_path, elsewhere, umask, capsys):
    import torch
    model, spec = _model()
    path = tmp_path / "m.onnx"
    path.write_bytes(b"old")
    capsys.readouterr()
    hwgen.export_brevitas(model, torch.randn(1, spec["in"]), path, progress=False)
    assert path.read_bytes() != b"old"
    assert sorted(os.listdir(tmp_path)) == ["cwd", "m.onnx"] and os.listdir(elsewhere) == []
    assert capsys.readouterr().err == ""


class _Broken(__import__("torch").nn.Module):
    def forward(self, x):
        raise RuntimeError("no forward here")


def test_failed_export_leaves_nothing(tmp_path, elsewhere, capsys):
    import torch
    with pytest.raises(FrontendError, match=r"^module _Broken: Brevitas QONNX export failed \(dynamo: .*; torchscript: "):
        hwgen.export_brevitas(_Broken(), torch.randn(1, 3), tmp_path / "dst" / "m.onnx")
    assert os.listdir(tmp_path / "dst") == [] and os.listdir(elsewhere) == []
    err = capsys.readouterr().err
    assert "export _Broken (dynamo exporter): failed after" in err
    assert "export _Broken (torchscript exporter): failed after" in err


def test_build_directory_gets_the_umask(spec_onnx, tmp_path, elsewhere, umask):
    _, onnx_path = spec_onnx("quant_output")
    out = tmp_path / "out"
    hwgen.build(onnx_path, out, progress=False)
    assert _mode(out) == 0o777 & ~UMASK
    for rel in ("manifest.json", "Makefile", "flows/synth_ecp5.ys", "rtl/hwgen_top.v", "source.onnx"):
        assert _mode(out / rel) == 0o666 & ~UMASK, rel
    assert _mode(out / "flows") == 0o777 & ~UMASK
    assert sorted(os.listdir(tmp_path)) == ["cwd", "out"] and os.listdir(elsewhere) == []
    hwgen.build(onnx_path, out, progress=False)                    # a rebuild in place: same modes, no leftovers
    assert _mode(out) == 0o777 & ~UMASK
    assert sorted(os.listdir(tmp_path)) == ["cwd", "out"]


def test_write_text_and_staging(tmp_path, umask):
    p = tmp_path / "a" / "f.txt"
    files.write_text(p, "x\n")
    assert p.read_text() == "x\n" and _mode(p) == 0o640 and os.listdir(p.parent) == ["f.txt"]
    with pytest.raises(ZeroDivisionError):
        with files.staging_dir(tmp_path / "b" / "dest") as d:
            open(os.path.join(d, "half"), "w").close()
            raise ZeroDivisionError
    assert os.listdir(tmp_path / "b") == []
