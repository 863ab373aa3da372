"""Board shells (hwgen.shell.boards, .pll, .top, .render) and the flows that place and route them.

PLL settings are checked against values computed by hand from the documented formulas (and
equal to what prjtrellis' ecppll and icestorm's icepll choose); the pins against the boards'
official constraint files (ULX3S ``ulx3s_v20.lpf``, iCEBreaker ``icebreaker.pcf``), copied
below by hand.  One real bitstream per family: ULX3S-85F (≈60 s) and iCEBreaker (≈15 s).
"""

import hashlib
import json
import os
from pathlib import Path
import re
import shutil
import subprocess
import sys

import pytest

from hwgen import flows
from hwgen.cli import main as cli_main
from hwgen.errors import HwgenError
from hwgen.shell import boards, pll
from hwgen.shell.top import choose_baud

pytestmark = pytest.mark.filterwarnings("ignore")

#: the official files' sites of the signals the shell uses: {official name: site}
ULX3S_V20 = {"clk_25mhz": "G2", "ftdi_txd": "M1", "ftdi_rxd": "L4", "btn[0]": "D6", "wifi_gpio0": "L2",
             "led[0]": "B2", "led[1]": "C2", "led[2]": "C1", "led[3]": "D2", "led[4]": "D1", "led[5]": "E2",
             "led[6]": "E1", "led[7]": "H3"}
ICEBREAKER_PCF = {"CLK": "35", "RX": "6", "TX": "9", "BTN_N": "10", "LEDR_N": "11", "LEDG_N": "37"}


# --------------------------------------------------------------------------- PLL
@pytest.mark.parametrize("target, clki, fb, op, hz", [
    (100e6, 1, 4, 6, 100e6),                 # 25 / 1 * 4 = 100, VCO 600
    (50e6, 1, 2, 12, 50e6),                  # 25 * 2 = 50, VCO 600
    (57e6, 7, 16, 11, 25e6 * 16 / 7),        # 57.142857: PFD 3.571 ≥ 3.125; VCO 628.57 (571.43 ties, faster wins)
    (12e6, 2, 1, 48, 12.5e6),                # 12 needs PFD 1 MHz (too low): 12.5 is the nearest
    (200e6, 1, 8, 3, 200e6),
])
def test_ecp5_pll(target, clki, fb, op, hz):
    p = pll.ecp5_pll(25_000_000, target)
    assert (p["CLKI_DIV"], p["CLKFB_DIV"], p["CLKOP_DIV"]) == (clki, fb, op)
    assert p["clock_hz"] == pytest.approx(hz) and p["clock_hz"] == pytest.approx(25e6 / clki * fb)
    assert 400e6 <= p["vco_hz"] <= 800e6 and p["pfd_hz"] >= 3.125e6
    assert p["CLKOP_CPHASE"] == (op - 1) // 2 and p["FEEDBK_PATH"] == "CLKOP"


@pytest.mark.parametrize("target, divr, divf, divq, rng, hz", [
    (50e6, 0, 66, 4, 1, 12e6 * 67 / 16),     # 50.25 MHz (icepll -i 12 -o 50)
    (30e6, 0, 79, 5, 1, 30e6),               # 12 * 80 / 32
    (25e6, 0, 66, 5, 1, 25.125e6),           # 12 * 67 / 32
    (100e6, 0, 66, 3, 1, 100.5e6),
])
def test_ice40_pll(target, divr, divf, divq, rng, hz):
    p = pll.ice40_pll(12_000_000, target)
    assert (p["DIVR"], p["DIVF"], p["DIVQ"], p["FILTER_RANGE"]) == (divr, divf, divq, rng)
    assert p["clock_hz"] == pytest.approx(hz)
    assert p["clock_hz"] == pytest.approx(12e6 / (divr + 1) * (divf + 1) / 2 ** divq)
    assert 533e6 <= p["vco_hz"] <= 1066e6 and 10e6 <= p["pfd_hz"] <= 133e6


@pytest.mark.parametrize("call, message", [
    (lambda: pll.ecp5_pll(25_000_000, 1e9), "pll: ECP5 EHXPLLL cannot make a 1000 MHz clock from 25 MHz; "
     "accepted: 3.125 to 400 MHz (--clock-mhz)"),
    (lambda: pll.ice40_pll(12_000_000, 10e6), "pll: iCE40 SB_PLL40_PAD cannot make a 10 MHz clock from 12 MHz; "
     "accepted: 16 to 275 MHz (--clock-mhz)"),
    (lambda: pll.pll_for("xilinx", 1, 1), "pll: family must be ecp5 or ice40, not 'xilinx'"),
    (lambda: boards.board("arty"), "board must be one of ulx3s, ulx3s-12f, ulx3s-25f, ulx3s-45f, icebreaker, "
     "not 'arty'"),
])
def test_errors(call, message):
    with pytest.raises(HwgenError) as e:
        call()
    assert str(e.value) == message


def test_baud():
    b = boards.BOARDS["icebreaker"]
    # 3 Mbaud at 25.125 MHz: divisor 8 is 4.7 % off, 2 Mbaud 3.4 %: 1.5 Mbaud, divisor 17
    assert choose_baud(25.125e6, b) == (25.125e6 / 17, 17)
    assert choose_baud(100e6, boards.BOARDS["ulx3s"]) == (100e6 / 33, 33)
    assert choose_baud(50e6, b, baud=115200) == (50e6 / 434, 434)
    with pytest.raises(HwgenError, match=r"^uart: 3,000,000 baud at 25.125 MHz: the nearest divisor 8 gives"):
        choose_baud(25.125e6, b, baud=3_000_000)


def test_board_table():
    assert set(boards.BOARDS) == {"ulx3s", "ulx3s-12f", "ulx3s-25f", "ulx3s-45f", "icebreaker"}
    for name, b in boards.BOARDS.items():
        official = ICEBREAKER_PCF if b["family"] == "ice40" else ULX3S_V20
        assert {p["official"]: p["site"] for p in b["pins"].values()} == official, name
        assert {"clk_in", "btn_n", "uart_rx", "uart_tx"} <= set(b["pins"])
    assert boards.BOARDS["ulx3s"]["device"] == "LFE5U-85F" and boards.BOARDS["ulx3s-12f"]["nextpnr_device"] == "12k"
    assert boards.BOARDS["ulx3s"]["pins"]["uart_rx"]["official"] == "ftdi_txd"     # the bridge's TXD is our input


# --------------------------------------------------------------------------- board files
@pytest.fixture(scope="module")
def tiny(spec_build, tmp_path_factory):
    pytest.importorskip("hwgen.shell.link")
    b = spec_build("quant_output")
    out = tmp_path_factory.mktemp("shell") / "tiny"
    shutil.copytree(b.out_dir, out)
    return out, b.manifest


def _pins(text, family):
    if family == "ecp5":
        return {m[0]: (m[1], m[2]) for m in re.findall(r'LOCATE COMP "([^"]+)" SITE "(\w+)"; # (\S+)', text)}
    return {m[0]: (m[1], m[2]) for m in re.findall(r"set_io -nowarn (\S+) (\d+) # (\S+)", text)}


@pytest.mark.parametrize("name", ["ulx3s", "ulx3s-25f", "icebreaker"])
def test_write_shell(tiny, tmp_path, name):
    from hwgen.shell import write_shell
    src, man = tiny
    out = tmp_path / "b"
    shutil.copytree(src, out)
    b = boards.BOARDS[name]
    ext = b["pin_file"]
    files = write_shell(out, man, name)
    assert files == sorted([f"board/{name}.{ext}", "board/board.json", "board/hwgen_board.v",
                            "board/hwgen_board_sim.v"])
    doc = json.loads((out / "board/board.json").read_text())
    expect_id = int.from_bytes(hashlib.sha256((out / "rtl/hwgen_top.v").read_bytes()).digest()[:4], "little")
    target = man["clock_mhz"] * 1e6
    p = pll.pll_for(b["family"], b["oscillator_hz"], target)
    assert doc["format"] == "hwgen-board/1" and doc["board"] == name and doc["design_id"] == expect_id
    assert doc["family"] == b["family"] and doc["device"] == b["device"] and doc["package"] == b["package"]
    # clock and baud in whole Hz, as the board's INFO reply gives them
    assert doc["clock_hz"] == round(p["clock_hz"]) and doc["pll"] == p and doc["top"] == "hwgen_board"
    assert doc["baud"] == round(p["clock_hz"] / doc["divisor"]) and doc["buffer_frames"] == 2
    assert doc["bitstream"] == f"bitstream/hwgen_top.{'bit' if b['family'] == 'ecp5' else 'bin'}"
    assert set(doc["leds"]) == {str(i) for i in range(b["leds"])}
    # pins: the port names of the shell, the sites and names of the official file
    pins = _pins((out / f"board/{name}.{ext}").read_text(), b["family"])
    official = ICEBREAKER_PCF if b["family"] == "ice40" else ULX3S_V20
    assert {o: s for s, o in pins.values()} == official
    assert set(pins) == set(doc["ports"]) == set(b["pins"])
    v = (out / "board/hwgen_board.v").read_text()
    sim = (out / "board/hwgen_board_sim.v").read_text()
    prim = "EHXPLLL" if b["family"] == "ecp5" else "SB_PLL40_PAD"
    assert f"  {prim} #(" in v and prim not in sim
    assert "  hwgen_top core (" in v and "  hwgen_top core (" in sim and "module hwgen_top" not in v
    ports = re.search(r"module hwgen_board\(([^)]*)\)", v).group(1)
    sim_ports = re.search(r"module hwgen_board_sim\(([^)]*)\)", sim).group(1)
    assert sorted(ports.replace(" ", "").split(",")) == sorted(sim_ports.replace(" ", "").split(","))
    assert {"clk_in", "btn_n", "uart_rx", "uart_tx", "led"} <= set(ports.replace(" ", "").split(","))
    # deterministic: the same bytes again
    before = {f: (out / f).read_bytes() for f in files}
    write_shell(out, man, name)
    assert before == {f: (out / f).read_bytes() for f in files}


def test_flows_rerender_for_another_board(tiny, tmp_path):
    src, man = tiny
    out = tmp_path / "b"
    shutil.copytree(src, out)
    assert (out / "board/ulx3s.lpf").exists()
    flows.run(out, "clean", progress=False, board="icebreaker")
    assert json.loads((out / "board/board.json").read_text())["board"] == "icebreaker"
    assert not (out / "board/ulx3s.lpf").exists() and (out / "board/icebreaker.pcf").exists()
    mk = (out / "Makefile").read_text()
    assert re.search(r"^PINS\s+\?= board/icebreaker.pcf$", mk, re.M) and "pnr/ice40.json: synth/ice40.json" in mk
    assert "read_verilog board/hwgen_board.v" in (out / "flows/synth_ice40.ys").read_text()
    assert "hwgen_board" not in (out / "flows/synth_ecp5.ys").read_text()
    with pytest.raises(HwgenError) as e:
        flows.run(out, "clean", progress=False, board="nope")
    assert str(e.value) == "board must be one of ulx3s, ulx3s-12f, ulx3s-25f, ulx3s-45f, icebreaker, not 'nope'"


def test_cli_bad_board(tiny_onnx, tmp_path, capsys):
    assert cli_main(["build", tiny_onnx, "-o", str(tmp_path / "o"), "--board", "arty", "-q"]) == 2
    assert capsys.readouterr().err == ("hwgen: error: board must be one of ulx3s, ulx3s-12f, ulx3s-25f, ulx3s-45f, "
                                       "icebreaker, not 'arty'\n")
    assert cli_main(["build", tiny_onnx, "-o", str(tmp_path / "o"), "--board", "icebreaker", "--clock-mhz", "300",
                     "-q"]) == 2
    assert capsys.readouterr().err == ("hwgen: error: pll: iCE40 SB_PLL40_PAD cannot make a 300 MHz clock from "
                                       "12 MHz; accepted: 16 to 275 MHz (--clock-mhz)\n")
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------- real bitstreams
def _make(out, target):
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(flows.__file__))) + os.pathsep + \
        env.get("PYTHONPATH", "")
    p = subprocess.run(["make", "-C", str(out), "--no-print-directory", target, f"PYTHON={sys.executable}", "QUIET=1"],
                       env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]


@pytest.mark.parametrize("board, clock, family, ext, pll_cell, io_cell", [
    ("ulx3s", 50, "ecp5", "bit", "EHXPLLL", "TRELLIS_IO"),
    ("icebreaker", 25, "ice40", "bin", "ICESTORM_PLL", "SB_IO"),
])
def test_bitstream(spec_onnx, tmp_path, board, clock, family, ext, pll_cell, io_cell):
    """`hwgen build --board B` then `make -C OUT bitstream`: the shell placed with its PLL and UART pins."""
    pytest.importorskip("hwgen.shell.link")
    _, onnx = spec_onnx("quant_output")
    out = tmp_path / board
    assert cli_main(["build", onnx, "-o", str(out), "--board", board, "--clock-mhz", str(clock), "-q"]) == 0
    _make(out, "bitstream")
    bit = out / f"bitstream/hwgen_top.{ext}"
    assert bit.stat().st_size > 50_000
    doc = json.loads((out / f"bitstream/{family}.json").read_text())
    assert doc["bytes"] == bit.stat().st_size and doc["board"] == board and doc["top"] == "hwgen_board"
    pnr = json.loads((out / f"pnr/{family}.json").read_text())
    b = json.loads((out / "board/board.json").read_text())
    assert pnr["board"] == board and pnr["clock_mhz"] == pytest.approx(b["clock_hz"] / 1e6, abs=1e-3)
    assert pnr["utilization"][pll_cell]["used"] == 1
    assert pnr["utilization"][io_cell]["used"] == len(b["ports"])
    assert pnr["fmax_mhz"] > 10
    log = (out / f"pnr/{family}.log").read_text()
    for port in ("uart_rx", "uart_tx", "clk_in", "btn_n"):
        assert re.search(rf"pin '{port}\$tr_io' constrained to Bel|constrained '{port}' to bel", log), port
    if family == "ecp5":
        assert f"Derived frequency constraint of {b['clock_hz'] / 1e6:.1f} MHz for net clk" in log
    else:
        assert "constrained PLL 'pll'" in log
    netlist = json.loads((out / f"synth/{family}_netlist.json").read_text())
    cells = [c["type"] for c in netlist["modules"]["hwgen_board"]["cells"].values()]
    assert ("EHXPLLL" if family == "ecp5" else "SB_PLL40_PAD") in cells and "hwgen_top" in netlist["modules"]
    assert Path(out / "report.md").read_text().count("place and route") == 1


def test_summarize_pnr_ice40():
    """pnr/ice40.json from nextpnr-ice40's --report (captured from the iCEBreaker bitstream above), and its
    report.md line."""
    from hwgen.report import render_pnr
    report = {"fmax": {"clk": {"achieved": 46.163787841796875, "constraint": 25.14078712463379}},
              "utilization": {"ICESTORM_LC": {"available": 5280, "used": 1158}, "ICESTORM_RAM": {"available": 30, "used": 0},
                              "ICESTORM_PLL": {"available": 1, "used": 1}, "SB_IO": {"available": 39, "used": 6},
                              "SB_I2C": {"available": 2, "used": 0}},
              "critical_paths": []}
    doc = flows.summarize_pnr(report, device="up5k", package="sg48", speed=None, clock_mhz=25.125, seed=1,
                              family="ice40", board="icebreaker")
    assert doc["tool"] == "nextpnr-ice40" and doc["fmax_mhz"] == 46.16 and doc["timing_met"] is True
    assert set(doc["utilization"]) == {"ICESTORM_LC", "ICESTORM_RAM", "ICESTORM_PLL", "SB_IO"}   # unused SB_I2C dropped
    assert doc["speed"] is None and doc["board"] == "icebreaker"
    assert render_pnr(doc) == ("- iCE40 place and route (nextpnr-ice40 up5k sg48) of the icebreaker shell: "
                               "**Fmax 46.2 MHz** (constraint 25.125 MHz, met); 1,158 ICESTORM_LC, 0 ICESTORM_RAM")
