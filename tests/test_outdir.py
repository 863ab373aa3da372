"""Output safety (hwgen.outdir): a build never destroys a user's files.

Every case ends in the user's files surviving byte for byte, exit 2 with one line, or
the correct build; none may leave a staging directory behind.
"""

import json
import os
from pathlib import Path
import subprocess
import sys

import pytest

from clirun import run_cli


pytestmark = pytest.mark.filterwarnings("ignore")

ACCEPTED = "accepted: a new path or a directory hwgen build wrote"


@pytest.fixture(scope="module")
def model_path(tiny_onnx):
    return tiny_onnx




def one_error(code, err):
    """The one ``hwgen: error:`` line of a refused command (asserting there is exactly one, and no traceback)."""
    lines = [l for l in err.splitlines() if l.startswith("hwgen: error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert not any(l.startswith("[hwgen] load") for l in err.splitlines()), "refused only after work had started"
    return lines[0][len("hwgen: error: "):]


def snapshot(d):
    """{relative path: bytes} of every file below ``d`` (and the set of folders)."""
    files, dirs = {}, set()
    for root, ds, fs in os.walk(d):
        for x in ds:
            dirs.add(os.path.relpath(os.path.join(root, x), d))
        for x in fs:
            p = os.path.join(root, x)
            with open(p, "rb") as f:
                files[os.path.relpath(p, d)] = f.read()
    return files, dirs


def no_staging(parent):
    assert not [p for p in os.listdir(parent) if p.startswith(".hwgen-")], os.listdir(parent)


@pytest.fixture
def user_dir(tmp_path, model_path):
    """A user's working directory: their model and some files of theirs."""
    d = tmp_path / "work"
    d.mkdir()
    (d / "m.onnx").write_bytes(Path(model_path).read_bytes())
    (d / "notes.txt").write_text("my notes\n")
    (d / "data").mkdir()
    (d / "data" / "x.npy").write_bytes(b"\x93NUMPY fake")
    return d


def test_directory_of_user_files_is_refused(user_dir, tmp_path, capsys):
    out = tmp_path / "results"
    out.mkdir()
    (out / "thesis.tex").write_text("chapter 1\n")
    before = snapshot(out)
    code, _, err = run_cli(["build", user_dir / "m.onnx", "-o", out], capsys)
    assert one_error(code, err) == (f"-o {out}: is a directory holding files hwgen did not write (no hwgen "
                                    f"manifest.json; e.g. thesis.tex); {ACCEPTED} (--force replaces it)")
    assert snapshot(out) == before
    no_staging(tmp_path)


def test_dot_holding_the_model_is_refused_even_with_force(user_dir, capsys, monkeypatch):
    monkeypatch.chdir(user_dir)
    before = snapshot(user_dir)
    for extra in ([], ["--force"]):
        code, _, err = run_cli(["build", "m.onnx", "-o", "."] + extra, capsys)
        assert one_error(code, err) == (f"-o .: contains the input m.onnx; {ACCEPTED} that holds none of the "
                                        "build's inputs")
        assert snapshot(user_dir) == before


def test_dot_is_refused(user_dir, tmp_path, capsys, monkeypatch):
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    monkeypatch.chdir(other)
    code, _, err = run_cli(["build", user_dir / "m.onnx", "-o", "."], capsys)
    assert one_error(code, err) == f"-o .: is the current directory; {ACCEPTED} (--force replaces it)"
    assert (other / "keep.txt").read_text() == "x"


def test_existing_file_is_refused(user_dir, capsys):
    before = snapshot(user_dir)
    code, _, err = run_cli(["build", user_dir / "m.onnx", "-o", user_dir / "notes.txt"], capsys)
    assert one_error(code, err) == f"-o {user_dir / 'notes.txt'}: is an existing file; {ACCEPTED} (--force replaces it)"
    assert snapshot(user_dir) == before


@pytest.mark.parametrize("force", [False, True])
def test_input_model_itself_is_refused(user_dir, capsys, force):
    before = snapshot(user_dir)
    m = user_dir / "m.onnx"
    code, _, err = run_cli(["build", m, "-o", m] + (["--force"] if force else []), capsys)
    assert one_error(code, err) == f"-o {m}: is the input {m}; {ACCEPTED} that holds none of the build's inputs"
    assert snapshot(user_dir) == before


def test_directory_containing_the_model_is_refused_even_with_force(user_dir, capsys):
    before = snapshot(user_dir.parent)
    m = user_dir / "m.onnx"
    code, _, err = run_cli(["build", m, "-o", user_dir.parent, "--force"], capsys)
    assert one_error(code, err) == (f"-o {user_dir.parent}: contains the input {m}; {ACCEPTED} that holds none "
                                    "of the build's inputs")
    assert snapshot(user_dir.parent) == before


def test_folding_file_inside_out_is_refused(user_dir, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, _ = run_cli(["build", user_dir / "m.onnx", "-o", out, "-q"], capsys)
    assert code == 0
    (tmp_path / "fold.json").write_text(json.dumps({"fc0": {"pe": 2}}))
    inside = out / "rtl" / "fold.json"
    inside.write_text(json.dumps({"fc0": {"pe": 2}}))
    code, _, err = run_cli(["build", user_dir / "m.onnx", "-o", out, "--folding", inside], capsys)
    assert one_error(code, err) == f"-o {out}: contains the input {inside}; {ACCEPTED} that holds none of the build's inputs"


def test_rebuild_replaces_own_build(user_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert run_cli(["build", user_dir / "m.onnx", "-o", out, "-q", "--fps", "1e6"], capsys)[0] == 0
    (out / "synth").mkdir()                     # what `make -C OUT synth` writes
    (out / "synth" / "xilinx.json").write_text("{}")
    assert run_cli(["build", user_dir / "m.onnx", "-o", out, "-q", "--fps", "2e6"], capsys)[0] == 0
    man = json.loads((out / "manifest.json").read_text())
    assert man["fps_target"] == 2e6 and not (out / "synth").exists()
    no_staging(tmp_path)


def test_own_build_with_a_foreign_file_is_refused(user_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert run_cli(["build", user_dir / "m.onnx", "-o", out, "-q"], capsys)[0] == 0
    (out / "measurements.csv").write_text("1,2,3\n")
    before = snapshot(out)
    code, _, err = run_cli(["build", user_dir / "m.onnx", "-o", out], capsys)
    assert one_error(code, err) == (f"-o {out}: is a hwgen build that also holds 'measurements.csv', which hwgen "
                                    "did not write; move it out or pass --force to replace the whole directory")
    assert snapshot(out) == before


def test_force_replaces_a_foreign_directory_and_file(user_dir, tmp_path, capsys):
    d = tmp_path / "d"
    d.mkdir()
    (d / "old.txt").write_text("x")
    f = tmp_path / "f"
    f.write_text("a file")
    for out in (d, f):
        code, _, err = run_cli(["build", user_dir / "m.onnx", "-o", out, "-q", "--force"], capsys)
        assert code == 0, err
        assert {"Makefile", "flows", "manifest.json", "folding.json", "rtl"} <= set(os.listdir(out))
        assert not (out / "old.txt").exists()
    no_staging(tmp_path)


def test_missing_parents_are_made_and_removed_on_failure(user_dir, tmp_path, capsys):
    out = tmp_path / "a" / "b" / "out"
    (tmp_path / "bad.json").write_text(json.dumps({"fc0": {"pe": 5}}))
    code, _, err = run_cli(["build", user_dir / "m.onnx", "-o", out, "--folding", tmp_path / "bad.json"], capsys)
    assert code == 2 and not (tmp_path / "a").exists(), err
    code, _, err = run_cli(["build", user_dir / "m.onnx", "-o", out, "-q"], capsys)
    assert code == 0 and (out / "manifest.json").is_file()


def test_parent_that_is_a_file_or_unwritable_is_refused_before_work(user_dir, tmp_path, capsys):
    code, _, err = run_cli(["build", user_dir / "m.onnx", "-o", user_dir / "notes.txt" / "out"], capsys)
    assert one_error(code, err) == (f"-o {user_dir / 'notes.txt' / 'out'}: {user_dir / 'notes.txt'} is not a "
                                    "directory; accepted: a path whose parent is a writable directory")
    code, _, err = run_cli(["build", user_dir / "m.onnx", "-o", "/proc/hwgen-out"], capsys)
    assert one_error(code, err).startswith("-o /proc/hwgen-out: cannot write in /proc (")


def test_failed_or_interrupted_build_keeps_the_previous_one(user_dir, tmp_path, capsys, monkeypatch):
    import hwgen
    B = sys.modules["hwgen.build"]              # (hwgen.build is the function)
    assert hwgen.build is B.build
    out = tmp_path / "out"
    assert run_cli(["build", user_dir / "m.onnx", "-o", out, "-q"], capsys)[0] == 0
    before = snapshot(out)

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(B, "make_report", interrupted)     # late: in the report step, rtl/ and manifest written
    code, _, err = run_cli(["build", user_dir / "m.onnx", "-o", out], capsys)
    assert code == 130 and "hwgen: interrupted" in err
    assert snapshot(out) == before
    no_staging(tmp_path)


def test_second_build_into_the_same_out_says_so(user_dir, tmp_path, capsys):
    """A build that is running holds OUT's staging directory; a second one stops at once."""
    out = tmp_path / "out"
    staging = tmp_path / ".hwgen-out.building"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        staging.mkdir()
        (staging / "owner.json").write_text(json.dumps({"pid": holder.pid}))
        code, _, err = run_cli(["build", user_dir / "m.onnx", "-o", out], capsys)
        assert one_error(code, err) == (f"-o {out}: another hwgen build (process {holder.pid}) is writing it; "
                                        f"wait for it to finish (its work is in {staging})")
        assert not out.exists() and staging.is_dir()
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: its leftover is taken over
    code, _, err = run_cli(["build", user_dir / "m.onnx", "-o", out, "-q"], capsys)
    assert code == 0, err
    no_staging(tmp_path)


def test_concurrent_builds_one_wins_whole(user_dir, tmp_path):
    """Two real processes build into one OUT at once: one writes it whole, the other says why it stopped
    (or, when the first has already finished, replaces it whole)."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "hwgen", "build", str(user_dir / "m.onnx"), "-o", str(out), "-q"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(c for c, _ in results)
    assert codes in ([0, 0], [0, 2]), results
    for c, err in results:
        if c == 2:
            # the other build's owner file names its process, or is not written yet ("starting")
            assert err.strip().splitlines()[-1].startswith((f"hwgen: error: -o {out}: another hwgen build (process ",
                                                            f"hwgen: error: -o {out}: another hwgen build (starting)"))
    man = json.loads((out / "manifest.json").read_text())
    assert man["format"] == "hwgen-build/1" and (out / "rtl" / "hwgen_top.v").is_file()
    no_staging(tmp_path)


def test_build_directory_gets_the_users_umask(user_dir, tmp_path, capsys):
    old = os.umask(0o027)
    try:
        out = tmp_path / "out"
        assert run_cli(["build", user_dir / "m.onnx", "-o", out, "-q"], capsys)[0] == 0
        assert os.stat(out).st_mode & 0o777 == 0o750
    finally:
        os.umask(old)
