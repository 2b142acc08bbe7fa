"""Weights are checked before they are trusted (issue 17, items 1 and 2).

The header alone is read and compared with what the configuration implies, on the
meta device, before a parameter is allocated; sizes past the registry's largest and
dtypes the engine does not write are refused; a shipped folder is verified file by
file against a manifest that must list them all.
"""

import hashlib
import json
import shutil

import pytest
import torch
from safetensors.torch import save_file

from neural_engine.errors import EngineError
from neural_engine.model import weights as weights_module
from neural_engine.model.header import parse_header
from neural_engine.model.weights import (check_weights, load_world_model, shipped_weights,
                                         verify_manifest, write_manifest)

from ..hostile import lying_weights_bytes, run_bounded, safetensors_bytes


def refused(path) -> str:
    with pytest.raises(EngineError) as error:
        check_weights(path)
    return str(error.value)


def test_a_huge_configuration_is_refused_from_the_header_alone(tmp_path):
    """2.3 GB and an OOM before: the file names a big denoiser but holds one tensor."""
    bigger = tmp_path / "bigger.safetensors"
    bigger.write_bytes(lying_weights_bytes(dim=1024, depth=24, heads=16))
    assert bigger.stat().st_size < 1500
    assert "denoiser.dim 1024 is larger than the largest model size allows (384)" in \
        refused(bigger)
    huge = tmp_path / "huge.safetensors"
    huge.write_bytes(lying_weights_bytes(dim=4096, depth=64, heads=64))
    channels = tmp_path / "channels.safetensors"
    config = {"game": "maze", "height": 128, "width": 128, "action_dim": 8,
              "autoencoder": {"channels": [100000] * 3}}
    channels.write_bytes(safetensors_bytes(
        {"x": ("F16", [4])}, {"format": "neural-engine/world-model/1",
                              "config": json.dumps(config)}))
    # in a child capped at 768 MB above its imports: refused, nothing allocated
    result = run_bounded("""
        import sys
        from neural_engine.errors import EngineError
        from neural_engine.model.weights import load_world_model
        for path in sys.argv[1:]:
            try:
                load_world_model(path)
            except EngineError as exc:
                print(exc, file=sys.stderr)
        """, str(huge), str(channels), imports="import torch, neural_engine.model.weights")
    assert result.returncode == 0, result.stderr
    assert "denoiser.dim 4096 is larger" in result.lines[0]
    assert "autoencoder.channels 100000 is larger" in result.lines[1]


def test_every_tensor_is_compared_before_allocating(tmp_path, tiny_weights, monkeypatch):
    config = json.loads(_metadata(tiny_weights)["config"])
    tensors = weights_module.expected_tensors(weights_module.read_config(tiny_weights)[0])
    spec = {n: ("F16", list(shape)) for n, (shape, _) in tensors.items()}
    metadata = {"format": "neural-engine/world-model/1", "config": json.dumps(config)}
    for dtype in ("BOOL", "I8", "F64"):                     # accepted before
        path = tmp_path / f"{dtype}.safetensors"
        name = next(iter(spec))
        path.write_bytes(safetensors_bytes({**spec, name: (dtype, spec[name][1])}, metadata))
        # an I8 matrix is 8-bit weights, which need their row scales beside them
        expected = (f"tensor {name} is I8 without its ::scale tensor" if dtype == "I8" else
                    f"tensor {name} is {dtype}; weights are F16, BF16, F32")
        assert expected in refused(path)
    wrong = dict(spec)
    first = next(iter(wrong))
    wrong[first] = ("F16", [*wrong[first][1][:-1], wrong[first][1][-1] + 1])
    (tmp_path / "shape.safetensors").write_bytes(safetensors_bytes(wrong, metadata))
    assert "has shape" in refused(tmp_path / "shape.safetensors")
    extra = {**spec, "\x1b[2Jextra": ("F16", [1])}
    (tmp_path / "extra.safetensors").write_bytes(safetensors_bytes(extra, metadata))
    assert "unexpected tensor '\\x1b[2Jextra'" in refused(tmp_path / "extra.safetensors")
    # nothing is allocated for a refused file: the model is only ever built on the meta device
    real = weights_module.WorldModel

    def only_on_meta(cfg):
        assert torch.empty(0).device.type == "meta", "a model was allocated for a bad file"
        return real(cfg)

    monkeypatch.setattr(weights_module, "WorldModel", only_on_meta)
    weights_module._expected.cache_clear()
    with pytest.raises(EngineError, match="has shape"):
        load_world_model(tmp_path / "shape.safetensors")


def _metadata(path):
    import struct

    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n])["__metadata__"]


@pytest.mark.parametrize("data, message", [
    (b"", "shorter than its header length"),
    ((2**40).to_bytes(8, "little"), "a header of 1099511627776 bytes"),
    ((40).to_bytes(8, "little") + b"[" * 30, "the header runs past the end"),
    ((6).to_bytes(8, "little") + b"[1, 2]", "the header is not a table"),
    ((8).to_bytes(8, "little") + b"\xff" * 8, "the header is not JSON"),
])
def test_malformed_headers_are_one_line(data, message):
    with pytest.raises(EngineError, match=message):
        parse_header(data, len(data))


def test_byte_ranges_must_fit_the_file_and_each_other():
    def header(entries):
        text = json.dumps(entries).encode()
        return len(text).to_bytes(8, "little") + text
    overlap = header({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                      "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})
    with pytest.raises(EngineError, match="overlaps"):
        parse_header(overlap, len(overlap) + 8)
    short = header({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})
    with pytest.raises(EngineError, match="the tensors need 16 bytes of data, the file holds 4"):
        parse_header(short, len(short) + 4)
    with pytest.raises(EngineError, match="do not hold a F32 tensor of shape"):
        parse_header(header({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}),
                     1000)


# -- manifests -------------------------------------------------------------------------
@pytest.fixture
def assets(tmp_path, tiny_weights, monkeypatch):
    """An assets folder for the maze with the tiny weights and a manifest."""
    root = tmp_path / "assets"
    folder = root / "maze"
    folder.mkdir(parents=True)
    shutil.copy(tiny_weights, folder / "world_model.safetensors")
    write_manifest(folder, {"game": "maze"})
    monkeypatch.setattr(weights_module, "ASSETS_ROOT", root)
    return folder


def manifest_of(folder):
    return json.loads((folder / "manifest.json").read_text())


def test_every_shipped_file_is_listed_and_verified(assets):
    assert shipped_weights("maze") == assets / "world_model.safetensors"
    (assets / "extra.safetensors").write_bytes(b"unverified")
    with pytest.raises(EngineError, match="extra.safetensors: not listed in the manifest"):
        shipped_weights("maze")
    (assets / "extra.safetensors").unlink()
    manifest = manifest_of(assets)
    manifest["files"]["world_model.safetensors"] = "x"          # an AttributeError before
    (assets / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EngineError, match="needs a sha256 \\(text\\) and bytes"):
        verify_manifest(assets)
    manifest["files"] = {"../../../../etc/passwd": {"sha256": "0" * 64, "bytes": 1},
                         **manifest_of_files(assets)}
    (assets / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EngineError, match="is not a file name in this folder"):
        verify_manifest(assets)
    (assets / "manifest.json").write_text("{not json")
    with pytest.raises(EngineError, match="manifest.json: not JSON"):
        shipped_weights("maze")


def manifest_of_files(folder):
    path = folder / "world_model.safetensors"
    return {path.name: {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                        "bytes": path.stat().st_size}}


def test_a_missing_manifest_is_an_error_not_the_simulator(assets, capsys):
    from neural_engine.cli.main import main

    (assets / "manifest.json").unlink()
    with pytest.raises(EngineError, match="the shipped weights have no manifest.json; restore "
                                          "it from the repository, or play the simulator "
                                          "with --engine sim"):
        shipped_weights("maze")
    assert main(["play", "--headless", "--seconds", "0.1", "--scale", "1"]) == 1
    assert "have no manifest.json" in capsys.readouterr().err
    shutil.rmtree(assets)                      # no shipped weights at all: the simulator
    assert shipped_weights("maze") is None


def test_the_shipped_weights_pass_every_check():
    config, _ = check_weights(shipped_weights("maze"))
    assert config.game == "maze"
    # the teacher is the training chain's checkpoint, checked like the weights that play
    assert set(verify_manifest(shipped_weights("maze").parent)) == {
        "probe.safetensors", "world_model.safetensors", "teacher.safetensors"}
    teacher, _ = check_weights(shipped_weights("maze").parent / "teacher.safetensors")
    assert teacher.denoiser == config.denoiser


def test_an_autoencoder_file_is_checked_like_a_world_model(tmp_path):
    from neural_engine.model.weights import load_autoencoder

    config = {"latent_channels": 4, "channels": [8, 16, 16], "decoder_channels": [8, 16, 16],
              "blocks": 0}
    path = tmp_path / "ae.safetensors"
    save_file({"x": torch.zeros(2)}, str(path),
              metadata={"format": "neural-engine/autoencoder/1", "config": json.dumps(config)})
    with pytest.raises(EngineError, match="missing tensor"):
        load_autoencoder(path)
    config["channels"] = [100000] * 3
    save_file({"x": torch.zeros(2)}, str(path),
              metadata={"format": "neural-engine/autoencoder/1", "config": json.dumps(config)})
    with pytest.raises(EngineError, match="channels 100000 is larger"):
        load_autoencoder(path)



def test_the_size_limits_take_small_and_base_at_patch_1():
    """A patch of 1 gives 4x the tokens of the registry's patch 2, the headroom allowed;
    the maze's 128×128 frames have 256 then."""
    from neural_engine.model.config import TOKEN_HEADROOM, named_config, size_problems

    for size in ("small", "base"):
        config = named_config(size, "maze", 128, 128, 8, patch=1, previous_frame=True)
        assert config.tokens_per_frame == TOKEN_HEADROOM * 64 == 256
        assert size_problems(config) == [] and config.check() == []
