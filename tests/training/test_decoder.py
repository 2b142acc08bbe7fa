"""The autoencoder stage's decoder tuning (``train = "decoder"``) and the ship step that
puts the tuned decoder into a world model: the encoder, the latent statistics and so
the denoiser's latents stay exactly what they were."""

import json
import math

import pytest
import torch

from neural_engine.cli.main import main
from neural_engine.errors import EngineError
from neural_engine.games import load_game
from neural_engine.model import weights as weights_module
from neural_engine.model.weights import load_autoencoder, load_world_model, save_autoencoder
from neural_engine.shipping import ship
from neural_engine.training import trainer
from neural_engine.training.autoencoder import (AutoencoderStage, AutoencoderTraining,
                                                edge_loss)

CPU = torch.device("cpu")
TINY = dict(size="tiny", batch=2, pool=2, episode_ticks=4, eval_worlds=1)


def _train(stage, folder, steps=3):
    trainer.run(stage, folder, trainer.Schedule(steps=steps, eval_every=steps, log_every=1),
                quiet=True)
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def test_the_edge_term_charges_a_blurred_edge_and_nothing_for_the_truth():
    x = torch.zeros(1, 3, 8, 8)
    x[..., 4:] = 1.0                                    # a hard vertical edge
    blurred = x.clone()
    blurred[..., 3:5] = 0.5                             # the edge spread over two columns
    assert edge_loss(x, x) == 0
    assert edge_loss(blurred, x) > 0


@pytest.mark.slow
def test_a_decoder_tuned_from_a_world_model_keeps_its_encoder_and_ships_into_it(
        tmp_path, tiny_weights, monkeypatch):
    game = load_game("maze")
    before = load_world_model(tiny_weights).autoencoder
    stage = AutoencoderStage(game, AutoencoderTraining(**TINY, train="decoder", edge_weight=1.0,
                                                       lr=1e-2), CPU, init=tiny_weights)
    lines = _train(stage, tmp_path / "dec")
    evals = [m for m in lines if m["kind"] == "eval"]
    assert evals and math.isfinite(evals[-1]["sharpness_heldout"])
    assert evals[-1]["sharpness_heldout"] > 0
    tuned = load_autoencoder(tmp_path / "dec" / "autoencoder.safetensors")
    assert tuned.cfg == before.cfg                       # the latent statistics kept
    for (name, a), b in zip(before.encoder.state_dict().items(),
                            tuned.encoder.state_dict().values()):
        assert torch.equal(a.float(), b.float()), name
    assert any(not torch.equal(a.float(), b.float()) for a, b in
               zip(before.decoder.state_dict().values(), tuned.decoder.state_dict().values()))

    root = tmp_path / "assets"
    monkeypatch.setattr(weights_module, "ASSETS_ROOT", root)
    folder = ship("maze", tiny_weights, teacher=tiny_weights,
                  decoder=tmp_path / "dec" / "autoencoder.safetensors")
    manifest = json.loads((folder / "manifest.json").read_text())
    for name in ("world_model.safetensors", "teacher.safetensors"):
        shipped = load_world_model(folder / name).autoencoder
        assert manifest["shipped"][name]["decoder"]["training"]["train"] == "decoder"
        for a, b in zip(shipped.decoder.state_dict().values(),
                        tuned.decoder.state_dict().values()):
            assert torch.allclose(a.float(), b.float(), atol=2e-2, rtol=2e-2)
        for a, b in zip(shipped.encoder.state_dict().values(),
                        before.encoder.state_dict().values()):
            assert torch.allclose(a.float(), b.float(), atol=2e-2, rtol=2e-2)


def test_decoder_tuning_needs_a_start():
    with pytest.raises(EngineError, match="--init"):
        AutoencoderStage(load_game("maze"), AutoencoderTraining(**TINY, train="decoder"), CPU)


def test_ship_refuses_a_decoder_of_another_encoder(tmp_path, tiny_weights, monkeypatch):
    monkeypatch.setattr(weights_module, "ASSETS_ROOT", tmp_path / "assets")
    other = load_world_model(tiny_weights).autoencoder
    with torch.no_grad():
        first = next(other.encoder.parameters())
        first.add_(first.abs().max())                    # another encoder, same shapes
    path = save_autoencoder(tmp_path / "other.safetensors", other)
    code = main(["ship", "--game", "maze", "--weights", str(tiny_weights),
                 "--decoder", str(path)])
    assert code != 0
    assert not (tmp_path / "assets" / "maze").exists()   # nothing shipped, nothing half-written
    with pytest.raises(EngineError, match="encoder differs"):
        ship("maze", tiny_weights, decoder=path)
