"""The fuzzers in CI: the committed corpus replayed, then a bounded coverage-guided run.

The replay needs nothing but the targets, so every input a fuzzer ever kept (and any
finding, once fixed and added) is checked on every run. The bounded run needs atheris
(a test extra) and costs about ten seconds a target; longer runs are made by hand
(``tests/fuzz/fuzz.py``). Both run in a child or a fresh workspace so a blow-up or a
hang fails the test under the fuzzer's own memory and per-input limits.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .targets import CORPUS, TARGETS, Workspace, tiny_weights

HERE = Path(__file__).resolve().parent
RUNS = {"pack": 1500, "script": 3000, "weights": 600}


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    workspace = Workspace(tiny_weights(tmp_path_factory.mktemp("fuzz-weights")))
    yield workspace
    workspace.close()


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_the_committed_corpus_replays_cleanly(name, space):
    inputs = sorted((CORPUS / name).iterdir())
    assert inputs, f"no corpus for {name}"
    for path in inputs:
        TARGETS[name](path.read_bytes(), space)


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None,
                    reason="atheris (a test extra) is not installed")
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_a_bounded_fuzzing_run_finds_nothing(name, tmp_path):
    new = tmp_path / "new"
    new.mkdir()
    proc = subprocess.run(
        [sys.executable, str(HERE / "fuzz.py"), name, f"-runs={RUNS[name]}",
         "-rss_limit_mb=2048", "-timeout=60", "-seed=1", f"-artifact_prefix={tmp_path}/",
         str(new), str(CORPUS / name)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={**os.environ, "TMPDIR": str(tmp_path), "OMP_NUM_THREADS": "1"})
    tail = "\n".join(proc.stderr.splitlines()[-15:])
    assert proc.returncode == 0, tail
    assert f"Done {RUNS[name]} runs" in proc.stderr, tail
    assert not list(tmp_path.glob("crash-*")) and not list(tmp_path.glob("oom-*"))
