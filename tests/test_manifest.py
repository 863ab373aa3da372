"""The build manifest (hwgen.manifest): made once, loaded checked, the layers' Verilog module names."""

import json
from pathlib import Path
import shutil
from types import SimpleNamespace

import pytest

from hwgen import manifest
from hwgen.errors import HwgenError, ManifestError
from hwgen.hdl.top import module_names


def test_build_manifest_modules_and_load(spec_build):
    b = spec_build("quant_output")
    assert b.manifest["format"] == manifest.FORMAT == "hwgen-build/1"
    assert b.manifest["modules"] == {l["name"]: f"hwgen_top.{l['name']}" for l in b.report["layers"]}
    assert b.manifest["modules"] == module_names(b.graph, "hwgen_top")
    assert manifest.load(b.out_dir) == b.manifest
    verilog = Path(b.out_dir, "rtl/hwgen_top.v").read_text()
    for mod in b.manifest["modules"].values():
        assert f"module \\{mod} (" in verilog
    from hwgen.build import MANIFEST_FORMAT
    assert MANIFEST_FORMAT == manifest.FORMAT


def test_module_names_as_top_names_them():
    graph = SimpleNamespace(layers=[SimpleNamespace(name=n) for n in ("/fc/MatMul", "_fc_MatMul", "0x", "fc1")])
    assert module_names(graph, "top") == {"/fc/MatMul": "top._fc_MatMul", "_fc_MatMul": "top._fc_MatMul_1",
                                          "0x": "top.l_0x", "fc1": "top.fc1"}


def _dir(tmp_path, doc=None, text=None):
    d = tmp_path / "b"
    d.mkdir(exist_ok=True)
    (d / "manifest.json").write_text(text if text is not None else json.dumps(doc))
    return d


def test_load_errors(spec_build, tmp_path):
    good = spec_build("quant_output").manifest
    with pytest.raises(ManifestError, match=r"^build directory .*nope: not found; accepted: a directory written by"):
        manifest.load(tmp_path / "nope")
    with pytest.raises(ManifestError, match=r": no manifest.json, it is not a hwgen build directory; accepted: "):
        manifest.load(tmp_path)
    cases = [
        (None, "[1", r"manifest.json: not valid JSON"),
        ([1], None, r"manifest.json: must be a JSON object, not list"),
        ({**good, "format": "hwgen-build/0"}, None, r"format must be 'hwgen-build/1', not 'hwgen-build/0'"),
        ({k: v for k, v in good.items() if k != "verilog"}, None, r"key 'verilog' missing"),
        ({**good, "output": {k: v for k, v in good["output"].items() if k != "lanes"}}, None, r"output\.lanes missing"),
        (good, None, r"Verilog source .*rtl/hwgen_top.v listed in manifest.json not found$"),
        ({**good, "verilog": [], "memfiles": ["rtl/x.mem"]}, None, r"ROM file .*rtl/x.mem listed in manifest.json not found$"),
    ]
    for doc, text, match in cases:
        d = _dir(tmp_path, doc, text)
        with pytest.raises(ManifestError, match=match) as e:
            manifest.load(d)
        assert isinstance(e.value, HwgenError) and "\n" not in str(e.value)
    assert manifest.load(d, files=False)["memfiles"] == ["rtl/x.mem"]


def test_old_manifest_without_modules(spec_build, tmp_path):
    """A build written before the ``modules`` key: flows take ``<top>.<layer name>``."""
    from hwgen.flows.cli import main
    b = spec_build("quant_output")
    out = tmp_path / "old"
    shutil.copytree(b.out_dir, out)
    man = {k: v for k, v in b.manifest.items() if k != "modules"}
    manifest.write(out, man)
    assert manifest.layer_modules(manifest.load(out)) is None
    names = [l["name"] for l in b.report["layers"]]
    hier = {"modules": {"\\hwgen_top": {"num_cells_by_type": {f"hwgen_top.{n}": 1 for n in names}},
                        **{f"\\hwgen_top.{n}": {"num_cells_by_type": {"LUT4": 2}} for n in names}}}
    flat = {"modules": {"\\hwgen_top": {"num_cells_by_type": {"LUT4": 2 * len(names)}}}}
    (out / "synth").mkdir()
    (out / "synth/h.json").write_text(json.dumps(hier))
    (out / "synth/f.json").write_text(json.dumps(flat))
    argv = ["summarize-synth", "--family", "ecp5", "--report", str(out / "report.json"), "--hier",
            str(out / "synth/h.json"), "--flat", str(out / "synth/f.json"), "-o", str(out / "synth/ecp5.json")]
    assert main(argv) == 0
    doc = json.loads((out / "synth/ecp5.json").read_text())
    assert [l["module"] for l in doc["layers"]] == [f"hwgen_top.{n}" for n in names]
    # the manifest's names win: here they point elsewhere
    manifest.write(out, {**man, "modules": {n: f"hwgen_top.{n}" if i else "hwgen_top.other" for i, n in enumerate(names)}})
    assert main(argv + ["--manifest", str(out / "manifest.json")]) == 0
    doc = json.loads((out / "synth/ecp5.json").read_text())
    assert doc["layers"][0]["module"] is None and doc["layers"][1]["module"] == f"hwgen_top.{names[1]}"
    assert "# hwgen build report" in (out / "report.md").read_text() and "synthesised (synth_ecp5)" in (out / "report.md").read_text()
