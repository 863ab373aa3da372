"""The whole board, proven without a board: the digits MLP built for the ULX3S, its board top
(UART → link → core → link → UART; PLL bypassed, hwgen.shell.simboard) simulated in Verilator
with its UART pins on a pseudo-terminal, driven by the real host driver (hwgen.driver) through real
pyserial.  Every output frame is compared with the IR reference (and the float outputs with the
host tail of it), link faults are injected on the line — a corrupted byte, a dropped byte, each
way — and a board whose output link is slower than its input is flooded past its frame buffer:
each fault is detected (NAK or CRC), the frame is sent again, and no frame is lost or duplicated.
Frames/s and latency are measured in simulated time.
"""

import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))

pytest.importorskip("serial")

pytestmark = [pytest.mark.sim, pytest.mark.e2e, pytest.mark.filterwarnings("ignore")]

FRAMES = 6
TIMEOUT_S = 3.0            # wall seconds a frame may go unanswered: the simulation runs slower than a board


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """(build dir, held-out images, labels): the examples' digits MLP (briefly trained), built for the ULX3S."""
    import torch

    import hwgen
    from digits import load_digits_split, seed_everything, train
    from digits_mlp import CONFIG, float_mlp, quant_mlp
    torch.set_num_threads(1)
    seed_everything(0)
    xtr, ytr, xte, yte = load_digits_split(0)
    f = train(float_mlp(), xtr, ytr, epochs=8, seed=0)
    q = train(quant_mlp(CONFIG, f), xtr, ytr, epochs=4, lr=5e-3, seed=0)
    d = tmp_path_factory.mktemp("board")
    onnx_path = str(d / "digits_mlp.onnx")
    hwgen.export_brevitas(q, torch.from_numpy(xte[:1]), onnx_path)
    out = d / "out"
    hwgen.build(onnx_path, str(out), fps=1e6, board="ulx3s", progress=False)
    return out, xte, yte


def _reference(out, x):
    """The IR reference's integer outputs and float outputs for float inputs ``x``."""
    from hwgen.dataflow import DataflowGraph
    from hwgen.host import apply_head, apply_tail
    graph = DataflowGraph.load(str(out))
    x_int = apply_head(graph.head, x)
    y_int = graph.execute(x_int)
    return x_int, y_int, apply_tail(graph.tail, y_int)


def _run(out, x_int, faults=None, **driver):
    from hwgen.driver import Accelerator
    from hwgen.shell.simboard import SimBoard
    with SimBoard(out, faults=faults) as board:
        with Accelerator(out, port=board.port, timeout=TIMEOUT_S, **driver) as acc:
            y = acc.predict_int(x_int)
            stats = acc.stats
    return y, stats, board


def test_board_classifies_over_pyserial(digits):
    from hwgen.shell.simboard import link_figures
    out, xte, yte = digits
    x = xte[:FRAMES]
    x_int, y_int, y_float = _reference(out, x)
    y, stats, board = _run(out, x_int)
    assert y.shape == y_int.shape
    assert int((y != y_int).sum()) == 0                      # every output word of every frame
    assert stats.retries == stats.timeouts == sum(stats.naks.values()) == 0
    figs = link_figures(board.results, board.clock_hz)
    assert figs["frames"] == FRAMES
    meta = json.loads((out / "board" / "board.json").read_text())
    # link-bound: a frame takes its DATA packet's bytes on the line, 10 bits each, divisor cycles per bit
    data = [p for p in board.results["packets_in"] if p[0] == 0x01]
    per_frame = (data[-1][2] - data[0][1]) / (len(data) - 1)
    assert figs["cycles"] / FRAMES >= 0.9 * per_frame
    print(f"digits MLP over the simulated UART ({meta['baud']:,} baud, {board.clock_hz / 1e6:g} MHz): "
          f"{figs['fps']:.0f} frames/s simulated, latency {figs['latency_us_min']:.0f}–{figs['latency_us_max']:.0f} µs")


def test_float_outputs_through_the_driver(digits):
    """predict(): host head → words → board → words → host tail, equal to the reference floats."""
    from hwgen.driver import Accelerator
    from hwgen.shell.simboard import SimBoard
    out, xte, _ = digits
    x = xte[FRAMES:FRAMES + 3]
    _, _, y_float = _reference(out, x)
    with SimBoard(out) as board, Accelerator(out, port=board.port, timeout=TIMEOUT_S) as acc:
        got = acc.predict(x)
    np.testing.assert_array_equal(got, y_float)


def _packet_bounds(out, x_int):
    """Byte offsets (start, end) of each DATA packet the driver sends for ``x_int`` in order, and
    the same of each RESULT packet the board sends back, when nothing goes wrong (INFO first)."""
    from hwgen.driver import Codec, load_dir
    from hwgen.shell import protocol as P
    manifest, board, _ = load_dir(out)
    codec = Codec(manifest)
    params = P.LinkParams.from_manifest(manifest, buffer_frames=int(board["buffer_frames"]),
                                        design_id=int(board["design_id"]), clock_hz=int(board["clock_hz"]),
                                        baud=int(board["baud"]))
    sent = [P.packet(P.INFO, 0)]
    for j, words in enumerate(codec.frames(x_int)):
        sent.append(P.packet(P.DATA, (1 + j) % 256, Codec.to_bytes(words, params.in_word_bytes)))
    pos, bounds = 0, []
    for pk in sent:
        bounds.append((pos, pos + len(pk)))
        pos += len(pk)
    return bounds


def test_board_survives_link_faults(digits):
    out, xte, _ = digits
    x_int, y_int, _ = _reference(out, xte[:FRAMES])
    bounds = _packet_bounds(out, x_int)
    # host → board: a payload byte of frame 1 corrupted, a byte of frame 3 dropped;
    # board → host: a byte of the second and the fourth answer corrupted and dropped
    # (positions in the middle of a payload: the driver's seq numbers may stuff a byte more or less)
    faults = {"corrupt_in": [(bounds[2][0] + bounds[2][1]) // 2], "drop_in": [(bounds[4][0] + bounds[4][1]) // 2],
              "corrupt_out": [40], "drop_out": [120]}
    y, stats, board = _run(out, x_int, faults=faults)
    r = board.results
    assert (r["corrupted_in"], r["dropped_in"], r["corrupted_out"], r["dropped_out"]) == (1, 1, 1, 1)
    assert y.shape == y_int.shape and int((y != y_int).sum()) == 0     # nothing lost, nothing twice
    assert stats.naks["CRC mismatch"] + stats.naks["wrong packet length"] >= 2    # the board saw both
    assert stats.bad_packets + stats.timeouts >= 1                     # the host saw the damaged answers
    assert stats.retries >= 3


def test_busy_board_refuses_and_recovers(tmp_path):
    """A core whose output frame is 8× its input (8 → 64 bytes): the board's TX is the bottleneck,
    the core stalls on its output, its one-frame buffer fills; a host sending 8 frames at once gets
    NAK "frame buffer full" for some, sends them again, and gets every frame right."""
    import hwgen
    from models import L, export, make_mlp
    spec = {"in": 8, "in_bits": 8, "layers": [L(64, 4, a=8)]}
    path = str(tmp_path / "wide.onnx")
    export(make_mlp(spec, 5), spec, path)
    out = tmp_path / "out"
    hwgen.build(path, str(out), board="ulx3s", progress=False)
    from hwgen.shell.render import write_shell
    from hwgen.manifest import load
    write_shell(out, load(out), "ulx3s", buffer_frames=1)
    rng = np.random.default_rng(7)
    x = rng.uniform(0, 1, size=(12, 8))
    x_int, y_int, _ = _reference(out, x)
    y, stats, _ = _run(out, x_int, window=8)
    assert int((y != y_int).sum()) == 0 and y.shape == y_int.shape
    assert stats.naks["frame buffer full"] >= 1


def test_hwgen_run_and_deploy_validate_on_the_simulated_board(digits, tmp_path):
    """The user's commands against the simulated board: `hwgen run OUT --port PTY`, and the
    deploy directory's validate.py (numpy and pyserial only) with the test labels."""
    import subprocess

    from hwgen.shell.simboard import SimBoard
    out, xte, yte = digits
    x, y = xte[:4], yte[:4]
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    _, _, y_float = _reference(out, x)
    subprocess.run([sys.executable, "-m", "hwgen", "deploy", str(out), "--no-bitstream"], check=True,
                   capture_output=True)
    with SimBoard(out) as board:
        r = subprocess.run([sys.executable, "-m", "hwgen", "run", str(out), "--port", board.port, "--inputs",
                            str(tmp_path / "x.npy"), "-o", str(tmp_path / "out.npy"), "--timeout", str(TIMEOUT_S)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        v = subprocess.run([sys.executable, "-I", str(out / "deploy" / "validate.py"), str(tmp_path / "x.npy"),
                            str(tmp_path / "y.npy"), "--port", board.port, "--timeout", str(TIMEOUT_S)],
                           capture_output=True, text=True, timeout=120, cwd=tmp_path)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), y_float)
    assert v.returncode == 0, v.stderr
    acc = float((y_float.argmax(1) == y).mean())
    assert f"accuracy: {100 * acc:.2f} % ({int(round(acc * len(y)))} of {len(y)})" in v.stdout, v.stdout


@pytest.mark.slow
def test_board_long_run_with_faults_both_ways(digits):
    """200 frames pipelined, a fault every ~15 packets in each direction: every frame right, once."""
    out, xte, _ = digits
    x_int, y_int, _ = _reference(out, xte[:200])
    bounds = _packet_bounds(out, x_int)
    mid = [(a + b) // 2 for a, b in bounds]
    faults = {"corrupt_in": mid[3::30], "drop_in": mid[18::30], "corrupt_out": [40 + 600 * k for k in range(8)],
              "drop_out": [330 + 600 * k for k in range(8)]}
    y, stats, board = _run(out, x_int, faults=faults)
    assert int((y != y_int).sum()) == 0 and y.shape == y_int.shape
    assert stats.retries >= len(faults["corrupt_in"]) + len(faults["drop_in"])
