"""``report.md`` of a build re-rendered with what the tools measured: for every
``synth/<family>.json`` the synthesised resources next to the estimates, and with
``pnr/<family>.json`` the achieved Fmax (:func:`hwgen.report.render_markdown` renders both)."""

import json
import os
from pathlib import Path

from ..devices import FAMILIES
from ..files import write_text

__all__ = ["write_synth_report", "read_json"]


def read_json(path):
    with open(path) as f:
        return json.load(f)


def _read_optional(path):
    """The JSON document at ``path``, None when it is missing or unreadable."""
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None


def write_synth_report(out_dir):
    """Regenerate ``report.md`` of build ``out_dir`` from its ``report.json`` with, for every
    ``synth/<family>.json`` present, the synthesised resources next to the estimates (per layer
    and in total) and, with ``pnr/<family>.json`` (the family of ``board/board.json``), the place-and-route line.  Returns the path of
    ``report.md`` (None, writing nothing, when the build has no readable ``report.json``)."""
    from ..report import render_markdown
    out = Path(os.fspath(out_dir))
    rep = _read_optional(out / "report.json")
    if rep is None:
        return None
    docs = {fam: doc for fam in FAMILIES if (out / "synth" / f"{fam}.json").exists()
            for doc in [_read_optional(out / "synth" / f"{fam}.json")] if doc is not None}
    family = (_read_optional(out / "board" / "board.json") or {}).get("family", "ecp5")
    pnr = _read_optional(out / "pnr" / f"{family}.json")
    text = render_markdown(rep, synth=docs or None, pnr=pnr)
    write_text(out / "report.md", text)
    return out / "report.md"
