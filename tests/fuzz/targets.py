"""What the fuzzers feed: the pack loader, the action-script loader, the weights check.

Each target takes one input (bytes) and must either accept it or refuse it with an
``EngineError``; any other exception, and (under the fuzzer's limits) any blow-up of
time or memory, is a finding. The pack target's first byte says which of the pack's
files the rest replaces (pack.toml, its timeline file, its start image); the others
take the whole input as their file. Both TOML targets also check the pre-scan's
promise: text the TOML parser accepts is text the scan followed to its end.

Plain Python (no fuzzer needed), so the committed corpus also replays in ordinary
tests: ``tests/fuzz/test_fuzz.py``. ``tests/fuzz/fuzz.py`` drives them with atheris.
"""

from __future__ import annotations

import shutil
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACK_FILES = ("pack.toml", "t.toml", "hall.png")
BASE_PACK = '''game = "maze"
title = "fuzz"
weights = "w.safetensors"
[[start]]
name = "hall"
image = "hall.png"
[[start]]
name = "b"
seed = 3
pose = [1.5, 3.5, 0.0]
[timeline]
file = "t.toml"
loop = true
[kiosk]
attract_after = 5.0
'''
BASE_TIMELINE = '''[[cue]]
t = 0.0
hold = ["forward"]
caption = "hello"
[[cue]]
t = 0.5
mouse = [40.0, 0.0]
over = 0.5
start = "b"
'''


class Workspace:
    """A pack folder, an action script and a weights file, rewritten for each input."""

    def __init__(self, weights: Path):
        self.root = Path(tempfile.mkdtemp(prefix="ne-fuzz-"))
        self.pack = self.root / "pack"
        self.pack.mkdir()
        self.files = {"pack.toml": BASE_PACK.encode(), "t.toml": BASE_TIMELINE.encode(),
                      "hall.png": (ROOT / "games/maze/packs/snapshot/hall.png").read_bytes()}
        shutil.copy(weights, self.pack / "w.safetensors")
        self.script = self.root / "script.toml"
        self.weights = self.root / "w.safetensors"

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _scan_follows(text: str) -> None:
    from neural_engine.tomlscan import Scanner

    try:
        tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError):
        return
    scanner = Scanner(text, "fuzz")
    try:
        scanner.run()
    except Exception:        # a refused bound: the parser accepted it, but it is too big
        return
    assert scanner.complete, f"the scan stopped short of text tomllib accepts: {text[:200]!r}"


def pack(data: bytes, space: Workspace) -> None:
    from neural_engine.errors import EngineError
    from neural_engine.packs import load_pack

    if not data:
        return
    which = PACK_FILES[data[0] % len(PACK_FILES)]
    for name, content in space.files.items():
        (space.pack / name).write_bytes(data[1:] if name == which else content)
    if which != "hall.png":
        _scan_follows(data[1:].decode("utf-8", "replace"))
    try:
        loaded = load_pack(space.pack)
    except EngineError as error:
        assert str(error).strip(), "an empty error message"
        return
    loaded.timeline()
    for start in loaded.starts:
        loaded.start_state(start.name)


def script(data: bytes, space: Workspace) -> None:
    from neural_engine.errors import EngineError
    from neural_engine.games import load_spec
    from neural_engine.input.script import load_script

    space.script.write_bytes(data)
    _scan_follows(data.decode("utf-8", "replace"))
    spec = load_spec("maze")
    try:
        loaded = load_script(space.script, spec.actions, "maze")
    except EngineError as error:
        assert str(error).strip(), "an empty error message"
        return
    assert len(loaded.actions(spec.actions, spec.tick_rate)) >= 1


def weights(data: bytes, space: Workspace) -> None:
    from neural_engine.errors import EngineError
    from neural_engine.model.weights import check_weights, load_world_model

    space.weights.write_bytes(data)
    try:
        check_weights(space.weights)
        load_world_model(space.weights)
    except EngineError as error:
        assert str(error).strip(), "an empty error message"


TARGETS = {"pack": pack, "script": script, "weights": weights}
CORPUS = Path(__file__).resolve().parent / "corpus"


def tiny_weights(folder: Path) -> Path:
    """The weights the pack target's pack names: the tiny model, fixed seed."""
    import torch

    from neural_engine.model.config import named_config
    from neural_engine.model.weights import save_world_model
    from neural_engine.model.world import WorldModel

    torch.manual_seed(0)
    path = folder / "tiny.safetensors"
    save_world_model(path, WorldModel(named_config("tiny", "maze", 128, 128, 8)))
    return path


def seed_corpus() -> None:
    """Write the starting corpus (run once by hand; the fuzzer adds to it)."""
    out = {name: CORPUS / name for name in TARGETS}
    for folder in out.values():
        folder.mkdir(parents=True, exist_ok=True)
    packs = ROOT / "games/maze/packs"
    for i, path in enumerate(sorted(packs.glob("*/*.toml"))):
        prefix = b"\x01" if path.name != "pack.toml" else b"\x00"
        (out["pack"] / f"shipped-{i}").write_bytes(prefix + path.read_bytes())
    (out["pack"] / "base").write_bytes(b"\x00" + BASE_PACK.encode())
    (out["pack"] / "base-timeline").write_bytes(b"\x01" + BASE_TIMELINE.encode())
    (out["pack"] / "hall-png").write_bytes(b"\x02" + (packs / "snapshot/hall.png").read_bytes())
    for i, path in enumerate(sorted((ROOT / "games/maze/eval").glob("*.toml"))):
        (out["script"] / f"eval-{i}").write_bytes(path.read_bytes())
    (out["script"] / "timeline").write_bytes(BASE_TIMELINE.encode())
    with tempfile.TemporaryDirectory() as tmp:
        (out["weights"] / "tiny").write_bytes(tiny_weights(Path(tmp)).read_bytes())


if __name__ == "__main__":
    seed_corpus()
