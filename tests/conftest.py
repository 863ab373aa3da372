"""Shared fixtures: exported Brevitas models and builds, made once per session."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory):
    """A two-layer MLP (8 -> 6 -> 4, W3A3 then W4 with no output quantiser) exported once: the model of
    the front-door tests (arguments, output directory)."""
    from models import L, export, make_mlp
    spec = {"in": 8, "in_bits": 4, "layers": [L(6, 3, a=3), L(4, 4, act=None)]}
    path = str(tmp_path_factory.mktemp("tiny") / "m.onnx")
    export(make_mlp(spec, 3), spec, path)
    return path


@pytest.fixture(scope="session")
def spec_onnx(tmp_path_factory):
    """spec name -> (brevitas model, path of its exported QONNX file); each exported once."""
    from models import CNN_SPECS, SPECS, export, export_cnn, make_cnn, make_mlp
    d = tmp_path_factory.mktemp("onnx")
    cache = {}

    def get(name):
        if name not in cache:
            path = str(d / f"{name}.onnx")
            if name in SPECS:
                model = make_mlp(SPECS[name], seed=1)
                export(model, SPECS[name], path)
            else:
                model = make_cnn(CNN_SPECS[name], seed=1)
                export_cnn(model, CNN_SPECS[name], path)
            cache[name] = (model, path)
        return cache[name]
    return get


@pytest.fixture(scope="session")
def spec_build(tmp_path_factory, spec_onnx):
    """(spec name, folding key) -> hwgen Build; each built once."""
    import hwgen
    d = tmp_path_factory.mktemp("builds")
    cache = {}

    def get(name, fps=None, folding=None, tag="default"):
        key = (name, tag)
        if key not in cache:
            _, path = spec_onnx(name)
            cache[key] = hwgen.build(path, str(d / f"{name}-{tag}"), fps=fps, folding=folding, progress=False)
        return cache[key]
    return get


@pytest.fixture
def fast(monkeypatch):
    """Progress heartbeats and counted lines as often as a test of them needs (hwgen.progress,
    hwgen.watch, and a child hwgen through HWGEN_HEARTBEAT_S)."""
    from hwgen import progress, watch
    monkeypatch.setattr(progress, "HEARTBEAT_S", 0.2)
    monkeypatch.setattr(progress, "UPDATE_S", 0.0)
    monkeypatch.setattr(watch, "POLL_S", 0.05)
    monkeypatch.setenv("HWGEN_HEARTBEAT_S", "0.2")


def pytest_collection_modifyitems(config, items):
    """The tests marked ``long`` first (stable otherwise): a worker that draws one at the end would
    leave the other idle for minutes."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


def pytest_terminal_summary(terminalreporter):
    """The front-door fuzzer's case count and outcomes (tests/test_front_door.py), gathered from the test
    reports' properties (so also from xdist workers)."""
    import json
    from collections import Counter
    runs = [json.loads(v) for reports in terminalreporter.stats.values() for r in reports
            for k, v in getattr(r, "user_properties", ()) if k == "front_door" and getattr(r, "when", "call") == "call"]
    if not runs:
        return
    outcomes, mutations = Counter(), Counter()
    for r in runs:
        outcomes.update(r["outcomes"])
        mutations.update(r["mutations"])
    terminalreporter.write_sep("-", "front-door fuzzer")
    seed = runs[0]["seed"]
    seed = f"HWGEN_FRONT_DOOR_SEED={seed}" if isinstance(seed, int) else f"HWGEN_FRONT_DOOR_CASE={seed}"
    terminalreporter.write_line(f"{sum(r['cases'] for r in runs)} cases ({seed}; "
                                f"{', '.join(str(r['front']) + ' ' + str(r['cases']) for r in runs)}) in "
                                f"{sum(r['seconds'] for r in runs):.1f} s: "
                                + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    terminalreporter.write_line("mutations: " + ", ".join(f"{k} {v}" for k, v in sorted(mutations.items())))
