"""Fuzzing the validator: generated malformed packs never escape the clean error path.

Each case starts from a valid pack (the shipped ones, and one with weights) and breaks
it in one or a few random ways: keys deleted, renamed or invented, values of the wrong
type or out of range (NaN, infinities, huge numbers, long strings), bad paths (``..``,
absolute, backslashes, control characters, links out of the folder, loops, folders,
dangling links), garbage bytes in pack.toml or in the files it names, truncation,
deep nesting, stray files. ``load_pack`` must then either load the pack (and the
loaded pack must compile its timeline and start states) or raise ``EngineError`` whose
lines are each a non-empty message; any other exception is a bug.
"""

import copy
import json
import math
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from neural_engine.errors import EngineError
from neural_engine.packs import load_pack

from .conftest import ROOT, SHIPPED

CASES = 400
BAD_VALUES = [7, -1, 0, 2**63 - 1, -(2**63), 1e308, -1e-308, math.nan, math.inf, -math.inf,
              "", "x" * 5000, "\u0000", "é🙂", [], [1, "a"], [[[]]], {}, {"x": 1}, True,
              False, 0.5, "maze", "forward", "left ctrl", "rolling"]
BAD_PATHS = ["../outside.png", "/etc/passwd", "C:/x.png", "a\\b.png", "", " ", ".",
             "sub/../../x.toml", "\u0000.png", "nope.png", "pack.toml", "x" * 300 + ".png",
             "link_out.png", "loop.png", "dir.png", "dangling.png", "hall.png",
             "attract.toml", "w.safetensors", "./hall.png", "hall.PNG"]


def dump_toml(data: dict) -> str:
    """A small TOML writer for the shapes packs use (tables, arrays of tables, values)."""
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) \
                else repr(v)
        if isinstance(v, int):
            return str(v)
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{json.dumps(k)} = {value(x)}" for k, x in v.items()) + "}"
        raise TypeError(type(v))

    def is_tables(v):
        return isinstance(v, list) and v and all(isinstance(x, dict) for x in v)

    lines = []

    def table(d, prefix):
        for k, v in d.items():
            if not isinstance(v, dict) and not is_tables(v):
                lines.append(f"{json.dumps(k)} = {value(v)}")
        for k, v in d.items():
            name = prefix + [json.dumps(k)]
            if isinstance(v, dict):
                lines.append(f"[{'.'.join(name)}]")
                table(v, name)
            elif is_tables(v):
                for item in v:
                    lines.append(f"[[{'.'.join(name)}]]")
                    table(item, name)

    table(data, [])
    return "\n".join(lines) + "\n"


def paths_in(data, prefix=()):
    """Every (path to a value) in a nested dict/list document."""
    if isinstance(data, dict):
        for k, v in data.items():
            yield (*prefix, k)
            yield from paths_in(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield (*prefix, i)
            yield from paths_in(v, (*prefix, i))


def parent_of(data, path):
    for part in path[:-1]:
        data = data[part]
    return data


def mutate_document(rng: random.Random, data: dict) -> dict:
    data = copy.deepcopy(data)
    for _ in range(rng.randint(1, 3)):
        paths = list(paths_in(data))
        if not paths:
            break
        path = rng.choice(paths)
        parent, last = parent_of(data, path), path[-1]
        kind = rng.randrange(6)
        if kind == 0:                                        # delete
            del parent[last]
        elif kind == 1:                                      # wrong type or range
            parent[last] = copy.deepcopy(rng.choice(BAD_VALUES))
        elif kind == 2 and isinstance(last, str):            # rename (a typo)
            i = rng.randrange(len(last) + 1)
            parent[last[:i] + rng.choice("xe_") + last[i + 1:]] = parent.pop(last)
        elif kind == 3 and isinstance(parent, dict):         # an unknown key
            parent[rng.choice(["colour", "exec", "script", "python", "cmd"])] = "x"
        elif kind == 4:                                      # a bad path anywhere
            parent[last] = rng.choice(BAD_PATHS)
        elif kind == 5 and isinstance(parent, list):         # duplicate an entry
            parent.append(copy.deepcopy(parent[last]))
    for key in ("weights",):                                 # point file keys astray
        if key in data and rng.random() < 0.2:
            data[key] = rng.choice(BAD_PATHS)
    return data


def break_bytes(rng: random.Random, data: bytes) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:
        return data[:rng.randrange(len(data) + 1)]
    if kind == 1:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
    out = bytearray(data)
    for _ in range(rng.randint(1, 20)):
        i = rng.randrange(len(out) + 1)
        if kind == 2:
            out[i:i + 1] = bytes([rng.randrange(256)])
        else:
            out.insert(i, rng.choice(b'[]{}="\\\n\x00\xff.,#'))
    return bytes(out)


def add_traps(root: Path, outside: Path) -> None:
    """Files that bad paths can hit: a link out, a loop, a folder, a dangling link."""
    for name, target in (("link_out.png", outside / "secret.png"), ("loop.png", root / "loop.png"),
                         ("dangling.png", root / "gone.png")):
        if not (root / name).is_symlink():
            os.symlink(target, root / name)
    (root / "dir.png").mkdir(exist_ok=True)


def make_case(rng: random.Random, base: Path, folder: Path, outside: Path) -> str:
    shutil.copytree(base, folder, symlinks=True)
    text = (folder / "pack.toml").read_bytes()
    kind = rng.randrange(12)
    if kind <= 4:                                            # the document, as data
        document = mutate_document(rng, tomllib.loads(text.decode()))
        (folder / "pack.toml").write_text(dump_toml(document), encoding="utf-8")
        if rng.random() < 0.5:
            add_traps(folder, outside)
        what = "document"
    elif kind <= 6:                                          # pack.toml as bytes
        (folder / "pack.toml").write_bytes(break_bytes(rng, text))
        what = "bytes"
    elif kind <= 9:                                          # a file the pack names
        files = [p for p in folder.iterdir() if p.name != "pack.toml" and p.is_file()]
        if not files:
            (folder / "pack.toml").write_bytes(b"a = " + b"[" * 100_000)
            return "nesting"
        victim = rng.choice(files)
        if rng.random() < 0.7:
            victim.write_bytes(break_bytes(rng, victim.read_bytes()))
        else:
            victim.unlink()
            os.symlink(rng.choice([outside / "secret.png", folder / "dir.png", victim]), victim)
        what = "file"
    elif kind == 10:                                         # stray files, links out
        (folder / rng.choice(["run.py", "x.sh", "lib.so", "a.pickle", "b.pt"])).write_text("x")
        os.symlink(outside, folder / "escape")
        what = "stray"
    else:
        (folder / "pack.toml").write_bytes(b"x = " + b"[" * rng.randint(500, 20_000))
        what = "nesting"
    return what


@pytest.fixture(scope="module")
def bases(tmp_path_factory, tiny_weights):
    root = tmp_path_factory.mktemp("bases")
    names = ["tour", "attract", "southpaw", "snapshot"]
    out = [Path(shutil.copytree(SHIPPED / n, root / n)) for n in names]
    weighted = Path(shutil.copytree(SHIPPED / "southpaw", root / "weighted"))
    shutil.copy(tiny_weights, weighted / "w.safetensors")
    with open(weighted / "pack.toml", "a") as f:
        f.write('\n[kiosk]\nattract_after = 5.0\n')
    text = (weighted / "pack.toml").read_text().replace('game = "maze"',
                                                        'game = "maze"\nweights = "w.safetensors"')
    (weighted / "pack.toml").write_text(text)
    out.append(weighted)
    for base in out:
        load_pack(base)                                      # each base is valid
    return out


def test_malformed_packs_only_ever_raise_the_clean_error(bases, tmp_path):
    rng = random.Random(20240601)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    counts = {"loaded": 0, "refused": 0}
    kinds: dict[str, int] = {}
    for case in range(CASES):
        folder = tmp_path / f"case{case}"
        what = make_case(rng, rng.choice(bases), folder, outside)
        kinds[what] = kinds.get(what, 0) + 1
        try:
            pack = load_pack(folder)
        except EngineError as error:
            lines = str(error).splitlines()
            assert lines and all(line.strip() for line in lines), (case, what, str(error))
            counts["refused"] += 1
        except Exception as error:  # noqa: BLE001 - the point of the test
            pytest.fail(f"case {case} ({what}) escaped the clean error path: "
                        f"{type(error).__name__}: {error}")
        else:
            counts["loaded"] += 1
            pack.timeline()
            for start in pack.starts:
                pack.start_state(start.name)
        shutil.rmtree(folder)
    print(f"fuzz: {CASES} malformed packs tried ({kinds}); {counts}")
    assert counts["refused"] > CASES * 0.7         # most mutations do break a pack
    assert set(kinds) >= {"document", "bytes", "file", "stray", "nesting"}


def test_the_validate_command_reports_garbage_without_a_traceback(tmp_path):
    rng = random.Random(7)
    folders = []
    for i, payload in enumerate([bytes(rng.randrange(256) for _ in range(300)),
                                 b"a = " + b"[" * 50_000, b"\xff\xfe game = 1"]):
        folder = tmp_path / f"p{i}"
        folder.mkdir()
        (folder / "pack.toml").write_bytes(payload)
        folders.append(folder)
    script = ("import sys\nfrom neural_engine.cli.main import main\n"
              "sys.exit(max(main(['validate', p]) for p in sys.argv[1:]))")
    proc = subprocess.run([sys.executable, "-c", script, *map(str, folders)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("error: ") for line in lines), lines
