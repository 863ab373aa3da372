"""The board and its link: Fmax and utilisation of the whole shell after nextpnr, and what the UART
allows against what the core allows, with latency per frame over the link (simulated board).

For the digits MLP and CNN (trained by the examples' demos, at the demos' foldings), built for a
board (default the ULX3S-85F at the demos' 100 MHz):

* ``make -C OUT pnr`` of ``hwgen_board`` (PLL, UART, link, core) — Fmax and the ECP5 cells used;
* the core's frames/s: the measured interval of ``hwgen verify`` at the PLL's clock;
* the link's frames/s: on paper (a frame's DATA and RESULT packets on the test set, stuffing and
  framing included, 10 bits a byte at the board's baud; the slower direction bounds it) and
  measured in simulated time — the board top in Verilator on a pseudo-terminal, driven by
  ``hwgen.driver`` through pyserial (``hwgen.shell.simboard``), frames pipelined;
* latency per frame over the link: one frame at a time (window 1), first bit of its DATA packet to
  the last bit of its RESULT, simulated; and the core's own latency from ``hwgen verify``.

    python bench/board_link.py [digits_mlp digits_cnn] [--out build/board_link] [--board ulx3s] [--frames 40]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

NETWORKS = ("digits_mlp", "digits_cnn")


def _model(name, out):
    """(.onnx path, folding file, held-out float inputs, labels) of an examples demo, trained once."""
    from verify_speed import _onnx
    from hwgen.mixed.train import load_digits_split
    path, inputs, folding = _onnx(name, out)
    _, _, xte, yte = load_digits_split(0)
    return path, Path(folding), inputs(len(xte)), yte


def _paper_fps(out, x):
    """Frames/s the UART allows on paper for inputs ``x``: the mean line bytes of a frame's DATA
    packet (host → board) and RESULT packet (board → host), stuffing and flags included; the link is
    full duplex, so the longer of the two bounds it."""
    from hwgen.dataflow import DataflowGraph
    from hwgen.driver import Codec, load_dir
    from hwgen.host import apply_head
    from hwgen.shell import protocol as P
    from hwgen.streams import pack
    manifest, meta, _ = load_dir(out)
    codec = Codec(manifest)
    g = DataflowGraph.load(str(out))
    xi = apply_head(g.head, x)
    yi = g.execute(xi)
    p = P.LinkParams.from_manifest(manifest)
    mo = manifest["output"]
    down = np.mean([len(P.packet(P.DATA, j % 256, Codec.to_bytes(w, p.in_word_bytes)))
                    for j, w in enumerate(codec.frames(xi))])
    up = np.mean([len(P.packet(P.RESULT, j % 256, Codec.to_bytes(w, p.out_word_bytes)))
                  for j, w in enumerate(pack(yi, mo["dtype"], int(mo["lanes"])))])
    baud = float(meta["baud"])
    return baud / 10 / max(down, up), down, up, baud


def _simulated(out, x, frames, window=None):
    from hwgen.driver import Accelerator
    from hwgen.shell.simboard import SimBoard, link_figures
    with SimBoard(out) as board:
        t = time.monotonic()
        with Accelerator(out, port=board.port, timeout=5.0, window=window) as acc:
            y = acc.predict(x[:frames])
        wall = time.monotonic() - t
    return y, link_figures(board.results, board.clock_hz), wall


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("networks", nargs="*", default=list(NETWORKS))
    ap.add_argument("--out", default="build/board_link")
    ap.add_argument("--board", default="ulx3s")
    ap.add_argument("--frames", type=int, default=40, help="frames through the simulated board (pipelined)")
    ap.add_argument("--no-pnr", action="store_true")
    a = ap.parse_args(argv)
    import hwgen
    from hwgen.flows import run as flow
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in a.networks:
        onnx, folding, x, y = _model(name, out)
        bdir = out / f"{name}-{a.board}"
        hwgen.build(str(onnx), str(bdir), folding=str(folding), board=a.board, progress=False, force=True)
        meta = json.loads((bdir / "board" / "board.json").read_text())
        clock = float(meta["clock_hz"])
        r = hwgen.verify(str(bdir), inputs=x, progress=False)
        core_fps = clock / r.cycles_per_frame
        paper, down, up, baud = _paper_fps(bdir, x)
        yp, piped, wall = _simulated(bdir, x, a.frames)
        ref = r.outputs[:a.frames]
        exact = bool(np.array_equal(yp, ref))
        _, one, _ = _simulated(bdir, x, 8, window=1)
        row = {"network": name, "board": a.board, "clock_mhz": clock / 1e6, "baud": baud,
               "core_fps": core_fps, "core_latency_us": r.latency_cycles / clock * 1e6,
               "line_bytes_in": down, "line_bytes_out": up, "link_fps_paper": paper,
               "link_fps_sim": piped["fps"], "link_latency_us": one["latency_us_min"],
               "link_latency_us_pipelined": piped["latency_us_max"], "frames_sim": piped["frames"],
               "sim_wall_s": wall, "exact": exact, "accuracy_hw": float((r.outputs.argmax(1) == y).mean())}
        if not a.no_pnr:
            t = time.monotonic()
            pnr = flow(str(bdir), "pnr", progress=False)
            row.update(pnr_s=time.monotonic() - t, fmax_mhz=pnr["fmax_mhz"],
                       util={k: v["used"] for k, v in pnr["utilization"].items()})
        rows.append(row)
        print(json.dumps(row), flush=True)
    print()
    print("| network | board | clock | Fmax (nextpnr) | cells (whole shell) | core frames/s | link frames/s "
          "(paper / simulated) | link-bound by | latency over link (1 frame) | core latency | outputs exact |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        util = ", ".join(f"{k} {v:,}" for k, v in r.get("util", {}).items())
        print(f"| {r['network']} | {r['board']} | {r['clock_mhz']:g} MHz | "
              f"{r.get('fmax_mhz', float('nan')):.1f} MHz | {util or '–'} | {r['core_fps']:,.0f} | "
              f"{r['link_fps_paper']:,.0f} / {r['link_fps_sim']:,.0f} | {r['core_fps'] / r['link_fps_sim']:,.0f}× | "
              f"{r['link_latency_us']:,.1f} µs | {r['core_latency_us']:,.2f} µs | {r['exact']} |")
    (out / "board_link.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
