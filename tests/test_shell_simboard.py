"""The board bridge (sim/tb_uart_pty.cpp) on its own: a loop-back board top whose uart_tx echoes
uart_rx one cycle late, driven through real pyserial on the bridge's pty — bytes come back as sent,
the injected faults change exactly the bytes named, and the packet log stamps FLAG-delimited packets."""

import json
import random
import zlib

import pytest

from hwgen import bulk
from hwgen.shell import protocol, uart
from hwgen.shell.simboard import HARNESS, SimBoard, link_figures
from hwgen.simulators import prepare

serial = pytest.importorskip("serial")

pytestmark = pytest.mark.sim

LOOPBACK = """module hwgen_board_sim(input clk_in, input btn_n, input uart_rx, output uart_tx, output [7:0] led);
  reg echo = 1'b1;
  reg [7:0] starts = 8'd0;
  reg prev = 1'b1;
  always @(posedge clk_in) begin
    echo <= uart_rx;
    prev <= uart_rx;
    if (prev && !uart_rx && btn_n) starts <= starts + 8'd1;
  end
  assign uart_tx = echo;
  assign led = starts;
endmodule
"""


@pytest.fixture(scope="module")
def loop_out(tmp_path_factory):
    """A minimal build folder whose 'core' is nothing and whose simulation top is the loop-back."""
    out = tmp_path_factory.mktemp("loop")
    (out / "rtl").mkdir()
    (out / "board").mkdir()
    (out / "rtl" / "empty.v").write_text("module hwgen_top; endmodule\n")
    (out / "board" / "hwgen_board_sim.v").write_text(LOOPBACK)
    manifest = {"format": "hwgen-build/1", "top": "hwgen_top", "verilog": ["rtl/empty.v"],
                "input": {k: 1 for k in ("shape", "dtype", "lanes", "lane_bits", "tdata_bits", "words_per_frame")},
                "output": {k: 1 for k in ("shape", "dtype", "lanes", "lane_bits", "tdata_bits", "words_per_frame")}}
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out / "board" / "board.json").write_text(json.dumps({"divisor": 6, "clock_hz": 18_000_000, "top": "hwgen_board"}))
    return out


@pytest.fixture
def rng(request):
    seed = zlib.crc32(request.node.name.encode()) % 10**6
    print(f"seed {seed}")
    return random.Random(seed)


def _exchange(port, data, n):
    with serial.Serial(port, 3_000_000, timeout=10) as s:
        s.write(data)
        return s.read(n)


def test_bytes_come_back_through_pyserial(loop_out, rng):
    data = bytes(rng.randrange(256) for _ in range(300))
    with SimBoard(loop_out) as board:
        got = _exchange(board.port, data, len(data))
    res = board.results
    assert got == data
    assert res["bytes_in"] == res["bytes_out"] == 300
    assert res["framing_errors_out"] == 0
    levels = [1] + uart.line(data, 6)                # the board counts the line's falling edges
    assert res["led"] == sum(a and not b for a, b in zip(levels, levels[1:])) % 256


def test_faults_change_exactly_the_named_bytes(loop_out):
    data = bytes(range(40))
    faults = {"corrupt_in": [3], "drop_in": [5], "corrupt_out": [10], "drop_out": [20]}
    with SimBoard(loop_out, faults=faults) as board:
        got = _exchange(board.port, data, 38)
    line = bytearray(data)
    line[3] ^= 0x10
    del line[5]                                      # the board never saw byte 5
    line[10] ^= 0x10                                 # board → host counts the bytes the board sent
    del line[20]
    assert got == bytes(line)
    r = board.results
    assert (r["corrupted_in"], r["dropped_in"], r["corrupted_out"], r["dropped_out"]) == (1, 1, 1, 1)
    assert (r["bytes_in"], r["bytes_out"]) == (40, 39)


def test_packets_are_logged_with_their_cycles(loop_out):
    pkts = protocol.packet(protocol.DATA, 1, b"\x7e\x10") + protocol.packet(protocol.INFO, 2)
    with SimBoard(loop_out) as board:
        got = _exchange(board.port, pkts, len(pkts))
    assert got == pkts
    r = board.results
    assert [p[0] for p in r["packets_in"]] == [protocol.DATA, protocol.INFO]
    assert [p[0] for p in r["packets_out"]] == [protocol.DATA, protocol.INFO]
    n1 = len(protocol.packet(protocol.DATA, 1, b"\x7e\x10"))
    (t0, s0, e0), (t1, s1, e1) = r["packets_in"]
    assert e0 - s0 == n1 * 10 * 6 - 1                # bytes back to back, 10 bits of 6 cycles each
    assert s1 == e0 + 1
    # the echo register takes uart_rx at the edge each bit starts on: uart_tx falls in the same cycle
    assert [p[1] for p in r["packets_out"]] == [s0, s1]
    figs = link_figures(r, 18e6, result_type=protocol.DATA)
    assert figs["frames"] == 1


def test_unknown_fault_is_refused(loop_out):
    with pytest.raises(Exception, match=r"^simulated board: unknown fault 'flip'; accepted: corrupt_in, drop_in, "
                                        r"corrupt_out, drop_out$"):
        SimBoard(loop_out, faults={"flip": [1]})


def test_bridge_is_cached_by_hash(loop_out):
    sim = prepare("verilator")
    src = [loop_out / "rtl" / "empty.v", loop_out / "board" / "hwgen_board_sim.v"]
    b1, _ = bulk.build(sim, loop_out, "hwgen_board_sim", src, progress=False, build_dir=loop_out / "sim" / "verilator-board",
                       harness=HARNESS)
    b2, secs = bulk.build(sim, loop_out, "hwgen_board_sim", src, progress=False,
                          build_dir=loop_out / "sim" / "verilator-board", harness=HARNESS)
    assert b1 == b2 and secs == 0.0 and b1.name == "tb_uart_pty"
