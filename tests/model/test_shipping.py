"""`neural-engine ship`: training's outputs into assets/<game>/, checked, within budget."""

from __future__ import annotations

import json

import pytest
import torch

from neural_engine.cli.main import main
from neural_engine.errors import EngineError
from neural_engine.evaluation.probe import MotionProbe, load_probe, save_probe
from neural_engine.games import load_spec
from neural_engine.model import weights as weights_module
from neural_engine.shipping import ASSET_BUDGET, ship, shipped_bytes
from neural_engine.model.weights import (load_world_model, save_world_model, shipped_weights,
                                         verify_manifest)


@pytest.fixture
def root(tmp_path, monkeypatch):
    root = tmp_path / "assets"
    monkeypatch.setattr(weights_module, "ASSETS_ROOT", root)
    return root


@pytest.fixture
def probe_file(tmp_path):
    torch.manual_seed(0)
    scales = tuple(m.scale for m in load_spec("maze").control.motion)
    path = tmp_path / "probe.safetensors"
    save_probe(path, MotionProbe(scales, 8), {"steps": 12})
    return path


def test_a_shipped_game_loads_and_says_what_it_is(root, tiny_weights, probe_file):
    folder = ship("maze", tiny_weights, probe=probe_file, teacher=tiny_weights,
                  precision="int8", info={"evaluation": {"held_turn": 0.5}})
    assert sorted(p.name for p in folder.iterdir()) == [
        "manifest.json", "probe.safetensors", "teacher.safetensors", "world_model.safetensors"]
    verify_manifest(folder)
    assert shipped_weights("maze") == folder / "world_model.safetensors"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["game"] == "maze" and manifest["sampler"] == "rolling"
    assert manifest["evaluation"] == {"held_turn": 0.5}
    assert manifest["shipped"]["world_model.safetensors"]["precision"] == "int8"
    assert manifest["shipped"]["probe.safetensors"]["precision"] == "fp16"
    # the student in 8 bits is smaller than the teacher beside it, and loads close to it
    assert (folder / "world_model.safetensors").stat().st_size < \
        0.8 * (folder / "teacher.safetensors").stat().st_size
    student, teacher = (load_world_model(folder / n) for n in ("world_model.safetensors",
                                                               "teacher.safetensors"))
    w = dict(teacher.named_parameters())
    for name, p in student.named_parameters():
        assert (p - w[name]).norm() <= 0.02 * w[name].norm() + 1e-6, name
    original = load_probe(probe_file)
    shipped = load_probe(folder / "probe.safetensors")
    for a, b in zip(original.parameters(), shipped.parameters()):
        assert torch.allclose(a, b, atol=1e-3, rtol=1e-3)


def test_shipping_again_replaces_the_folder_whole(root, tiny_weights, probe_file):
    ship("maze", tiny_weights, probe=probe_file, teacher=tiny_weights)
    folder = ship("maze", tiny_weights)
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json",
                                                        "world_model.safetensors"]
    assert [p.name for p in root.iterdir()] == ["maze"]        # no staging left behind


def test_a_file_shipped_again_unchanged_keeps_its_bytes(root, tiny_weights, probe_file):
    # safetensors writes its metadata table in no fixed order: shipping the same files
    # again must not rewrite them (each rewrite would enter git's history once more)
    first = ship("maze", tiny_weights, probe=probe_file, teacher=tiny_weights)
    before = {p.name: p.read_bytes() for p in first.iterdir()}
    folder = ship("maze", first / "world_model.safetensors", probe=first / "probe.safetensors",
                  teacher=first / "teacher.safetensors", info={"note": "again"})
    for name in ("world_model.safetensors", "probe.safetensors", "teacher.safetensors"):
        assert (folder / name).read_bytes() == before[name], name
    verify_manifest(folder)
    # a changed file is written anew
    folder = ship("maze", tiny_weights, probe=probe_file, precision="int8")
    assert (folder / "world_model.safetensors").read_bytes() != before["world_model.safetensors"]


def test_past_the_budget_nothing_changes(root, tiny_weights, probe_file):
    folder = ship("maze", tiny_weights, probe=probe_file)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    other = root / "dungeon"
    other.mkdir()
    with open(other / "world_model.safetensors", "wb") as f:     # sparse: no disk used
        f.truncate(ASSET_BUDGET - 1000)
    with pytest.raises(EngineError, match="40 MiB budget"):
        ship("maze", tiny_weights, probe=probe_file, teacher=tiny_weights)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert sorted(p.name for p in root.iterdir()) == ["dungeon", "maze"]


def test_weights_of_another_game_are_refused(root, tmp_path, tiny_model):
    from neural_engine.model.config import named_config
    from neural_engine.model.weights import save_world_model
    from neural_engine.model.world import WorldModel

    spec = load_spec("dungeon")
    model = WorldModel(named_config("tiny", "dungeon", spec.height, spec.width,
                                    spec.actions.dim))
    path = save_world_model(tmp_path / "d.safetensors", model)
    with pytest.raises(EngineError, match="for game 'dungeon', not 'maze'"):
        ship("maze", path)
    assert not root.exists() or not any(root.iterdir())


@pytest.mark.parametrize("text, message", [("[1, 2]", "JSON table"), ("{", "not JSON"),
                                           ('{"files": 1}', "manifest's own keys")])
def test_the_command_refuses_a_bad_info_file_in_one_line(root, tmp_path, tiny_weights, capsys,
                                                         text, message):
    info = tmp_path / "info.json"
    info.write_text(text)
    code = main(["ship", "--game", "maze", "--weights", str(tiny_weights),
                 "--info", str(info)])
    err = capsys.readouterr().err
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1
    assert not (root / "maze").exists()


def test_the_command_ships_and_reports_the_budget(root, tiny_weights, capsys):
    assert main(["ship", "--game", "maze", "--weights", str(tiny_weights),
                 "--precision", "int8"]) == 0
    out = capsys.readouterr().out
    assert "shipped" in out and "of 40 MiB" in out
    assert shipped_weights("maze") is not None


def test_the_repository_s_shipped_weights_fit_the_budget():
    assert shipped_bytes() <= ASSET_BUDGET


def test_the_teacher_may_ship_in_8_bits_too(root, tiny_weights):
    from safetensors.torch import load_file

    folder = ship("maze", tiny_weights, teacher=tiny_weights, teacher_precision="int8")
    stored = load_file(folder / "teacher.safetensors")
    assert any(t.dtype == torch.int8 for t in stored.values())
    assert json.loads((folder / "manifest.json").read_text())[
        "shipped"]["teacher.safetensors"]["precision"] == "int8"
    load_world_model(folder / "teacher.safetensors")


def test_a_game_still_in_training_ships_its_teacher_alone_and_plays_the_simulator(
        root, tiny_weights, capsys):
    # a chain's checkpoint kept in assets/ (within the budget) before the world model
    # exists: nothing to play yet, so the engine picks the simulator, and says so
    with pytest.raises(EngineError, match="nothing to ship"):
        ship("maze", None)
    assert main(["ship", "--game", "maze", "--teacher", str(tiny_weights),
                 "--teacher-precision", "int8"]) == 0
    folder = root / "maze"
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json",
                                                        "teacher.safetensors"]
    verify_manifest(folder)
    assert shipped_weights("maze") is None
    load_world_model(folder / "teacher.safetensors")
    from neural_engine.model.weights import load_model

    with pytest.raises(EngineError, match="no trained weights for game 'maze'"):
        load_model("maze", None, None, torch.device("cpu"), torch.float32)
    # a folder listing neither a world model nor a teacher is still an error
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "teacher.safetensors").rename(folder / "other.safetensors")
    manifest["files"] = {"other.safetensors": manifest["files"]["teacher.safetensors"]}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EngineError, match="lists no world_model.safetensors"):
        shipped_weights("maze")


def test_a_probe_whose_training_collapsed_is_refused(root, tmp_path, tiny_weights):
    # the probe stage marks a collapse it could not undo (docs/training.md, the probe's
    # training); such a ruler must not ship, while one that fell back to its best
    # evaluation's weights may
    scales = tuple(m.scale for m in load_spec("maze").control.motion)
    bad, rescued = tmp_path / "bad.safetensors", tmp_path / "rescued.safetensors"
    save_probe(bad, MotionProbe(scales, 8), {"turn_accuracy": 0.4,
                                             "collapse": {"exported": "final"}})
    save_probe(rescued, MotionProbe(scales, 8), {"turn_accuracy": 0.9,
                                                 "collapse": {"exported": "step 1000"}})
    with pytest.raises(EngineError, match="collapsed"):
        ship("maze", tiny_weights, probe=bad)
    assert not (root / "maze").exists()
    assert (ship("maze", tiny_weights, probe=rescued) / "probe.safetensors").is_file()


def test_a_patch_1_model_ships_in_8_bits_and_loads_as_itself(root, tmp_path, tiny_model,
                                                             probe_file):
    model = tiny_model(128, 128, 8, previous_frame=True, patch=1)
    path = save_world_model(tmp_path / "p1.safetensors", model, dtype=torch.float32)
    folder = ship("maze", path, probe=probe_file, precision="int8")
    verify_manifest(folder)
    shipped = load_world_model(folder / "world_model.safetensors")
    assert shipped.config == model.config and shipped.config.tokens_per_frame == 256
    w = dict(model.denoiser.named_parameters())
    for name, p in shipped.denoiser.named_parameters():
        assert (p - w[name]).norm() <= 0.02 * w[name].norm() + 1e-6, name
