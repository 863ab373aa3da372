"""Benchmark: the resource-aware folding search against FINN-style greedy folding.

For the digits MLP, TFC-W2A2, the digits CNN and CNV-w1a1 (random weights:
only shapes and bit widths matter here), at several frames/s targets: the
estimated LUT (xc7, plumbing included: width converters from the real pass,
FIFOs from the search's per-edge depth model) and cycles per frame of
``search_folding`` next to those of ``finn_greedy_folding`` (FINN's
``SetFolding`` order) for the same target, and the search time.  Where greedy
meets the target, the search must use no more LUTs (asserted).  ``via`` says
which candidate the search kept: its own (``search``) or the greedy folding
its safety net costs too (``finn-greedy``).  No synthesis: pure Python.

    python bench/folding.py [--nets digits tfc digits_cnn cnv_w1a1] [--clock-mhz 100] [--family xilinx]
                            [--fifos model|schedule]
"""

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "examples"))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, HERE)

# name: (title, fps targets)
NETS = {
    "digits": ("digits MLP 64-64-32-10 W4A4/W3A3", (1e4, 1e5, 1e6, 5e6, 2e7)),
    "tfc": ("TFC 784-64-64-64-10 W2A2", (1e3, 1e4, 1e5, 1e6, 3e6)),
    "digits_cnn": ("digits CNN 8x8 conv8-pool-conv16-pool-fc10", (1e3, 1e4, 5e4, 1e5, 1.5e5)),
    "cnv_w1a1": ("CNV-w1a1 (CIFAR-10 shaped)", (100, 1e3, 3e3, 1e4, 1.2e4)),
}


def export(key, path):
    if key in ("digits", "tfc"):
        from models import export as export_mlp
        from models import make_mlp
        from synth import NETS as SYNTH_NETS
        spec = SYNTH_NETS[key][2]
        export_mlp(make_mlp(spec, seed=0), spec, path)
    elif key == "digits_cnn":
        import digits_cnn
        import torch

        import hwgen
        hwgen.export_brevitas(digits_cnn.quant_cnn().eval(), torch.randn(1, 1, 8, 8), path)
    elif key == "cnv_w1a1":
        import cnv
        cnv.export_cnv("w1a1", path)
    else:
        raise ValueError(key)


def compare(graph, fps, clock_mhz=100.0, family="xilinx", fifos="model"):
    """One row: our search vs FINN-style greedy for ``fps`` on a lowered ``graph`` (not modified).
    ``fifos="schedule"`` costs both foldings with the real, schedule-sized FIFO pass afterwards."""
    from hwgen.dataflow.folding import copy_graph, cycle_budget, finn_greedy_folding, plumbed_resources, search_folding
    from hwgen.errors import FoldingError
    budget = cycle_budget(fps, clock_mhz)
    t = time.perf_counter()
    try:
        r = search_folding(copy_graph(graph), fps, clock_mhz, family=family, return_result=True)
        ours = (r.resources, r.cycles, r.source)
    except FoldingError:
        ours = None
    dt = time.perf_counter() - t
    if ours is not None:
        ours = (plumbed_resources(graph, family, r.folding, fifos, r.options)[0], r.cycles, r.source)
    g = finn_greedy_folding(copy_graph(graph), fps, clock_mhz)
    gres, gcyc = plumbed_resources(g, family, fifos=fifos)
    return {"fps": fps, "budget": budget, "ours": ours, "greedy": (gres, gcyc), "seconds": dt}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", nargs="+", default=list(NETS), choices=list(NETS))
    ap.add_argument("--clock-mhz", type=float, default=100.0)
    ap.add_argument("--family", default="xilinx", choices=["xilinx", "ecp5", "ice40"])
    ap.add_argument("--fifos", default="model", choices=["model", "schedule"],
                    help="cost FIFOs with the search's depth model (default) or the real schedule-sized pass")
    args = ap.parse_args(argv)

    import warnings
    warnings.filterwarnings("ignore")
    from hwgen.frontend import load
    from hwgen.lower import lower

    root = tempfile.mkdtemp(prefix="hwgen-bench-folding-")
    head = ["network", "target fps", "budget", "ours cycles", "ours LUT", "greedy cycles", "greedy LUT",
            "greedy meets", "LUT saved", "via", "search s"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    worst, failures = 0.0, []
    for key in args.nets:
        title, targets = NETS[key]
        path = os.path.join(root, f"{key}.onnx")
        export(key, path)
        graph = lower(load(path), name=key)
        for fps in targets:
            r = compare(graph, fps, args.clock_mhz, args.family, args.fifos)
            worst = max(worst, r["seconds"])
            gres, gcyc = r["greedy"]
            meets = gcyc <= r["budget"]
            if r["ours"] is None:
                ours = ["unreachable", "—"]
                saved, via = "—", "—"
            else:
                res, cyc, via = r["ours"]
                ours = [f"{cyc:,}", f"{res['LUT']:,}"]
                saved = f"{100 * (1 - res['LUT'] / gres['LUT']):.1f} %" if meets else "(greedy misses)"
                if meets and res["LUT"] > gres["LUT"]:
                    failures.append((key, fps, res["LUT"], gres["LUT"]))
            print("| " + " | ".join([title, f"{fps:,.0f}", f"{r['budget']:,}", *ours, f"{gcyc:,}", f"{gres['LUT']:,}",
                                     "yes" if meets else "no", saved, via, f"{r['seconds']:.2f}"]) + " |")
    print(f"\nslowest search (options + solve + exact costing): {worst:.2f} s")
    assert not failures, f"search used more LUTs than greedy: {failures}"
    return 0


if __name__ == "__main__":
    sys.exit(main())
