#!/usr/bin/env python3
"""Coverage-guided fuzzing of the pack loader, the script loader and the weights check.

    python tests/fuzz/fuzz.py pack [libFuzzer options] [corpus folders]

runs the target (``tests/fuzz/targets.py``) under atheris (libFuzzer for Python) with
the engine's modules and ``tomllib`` instrumented for coverage. Without folders it
reads and extends the committed corpus, ``tests/fuzz/corpus/<target>/``; CI passes an
empty folder first (new inputs go there) and the committed one after it, for a
bounded number of runs (``tests/fuzz/test_fuzz.py``). A longer run by hand, say an
hour with the memory and per-input limits that count as findings::

    python tests/fuzz/fuzz.py pack -max_total_time=3600 -rss_limit_mb=2048 -timeout=30

Crashes are written as ``crash-*`` files to the current folder (``-artifact_prefix``
moves them); replay one with ``python tests/fuzz/fuzz.py pack crash-...``. To fold a
long run's finds into the committed corpus (only the inputs that add coverage)::

    python tests/fuzz/fuzz.py pack -merge=1 NEW tests/fuzz/corpus/pack RUN-FOLDER
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

import atheris  # noqa: E402

import numpy  # noqa: E402,F401  - heavy libraries first, uninstrumented
import pygame  # noqa: E402,F401
import safetensors  # noqa: E402,F401
import torch  # noqa: E402

torch.set_num_threads(1)

with atheris.instrument_imports(include=["neural_engine", "tomllib", "targets"]):
    import targets  # noqa: E402
    from neural_engine.packs import load_pack  # noqa: E402,F401
    from neural_engine.model import weights  # noqa: E402,F401
    from neural_engine.input import script  # noqa: E402,F401


TARGET_ENV = "NEURAL_ENGINE_FUZZ_TARGET"   # for the processes libFuzzer starts itself (-merge)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in targets.TARGETS:
        os.environ[TARGET_ENV] = sys.argv.pop(1)
    name = os.environ.get(TARGET_ENV)
    if name not in targets.TARGETS:
        sys.exit(f"usage: fuzz.py {{{','.join(targets.TARGETS)}}} [libFuzzer options] [corpus]")
    target = targets.TARGETS[name]
    if not any(not a.startswith("-") for a in sys.argv[1:]):
        sys.argv.append(str(targets.CORPUS / name))
    import atexit
    import tempfile

    tmp = tempfile.TemporaryDirectory()
    space = targets.Workspace(targets.tiny_weights(Path(tmp.name)))
    atexit.register(tmp.cleanup)
    atexit.register(space.close)
    atheris.Setup(sys.argv, lambda data: target(data, space))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
