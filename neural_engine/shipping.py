"""Shipping a game's trained weights: ``assets/<game>/``, its manifest, the shared budget.

``ship`` takes what training wrote (the student, the probe, optionally the teacher as
the next run's warm start), checks each file the way loading will, rewrites it in the
precision it ships in (the student in fp16 or 8 bits, the probe in fp16, the teacher in
bf16 or 8 bits), writes ``manifest.json`` with every file's sha256, the training info the weights
carry and what the caller adds, and checks that every game's shipped files together
stay within ``ASSET_BUDGET``. It builds the new folder beside the old one and swaps it
in only when everything holds, so a refused or interrupted ship leaves the game's
shipped weights as they were.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Literal

import torch

from neural_engine.errors import EngineError
from neural_engine.model import weights as stored
from neural_engine.model.weights import (TEACHER_NAME, WEIGHTS_NAME, load_world_model,
                                         read_config, save_world_model, verify_manifest,
                                         write_manifest)

# Every game's shipped files together (the product's limit for the repository).
ASSET_BUDGET = 40 << 20
PROBE_NAME = "probe.safetensors"
Precision = Literal["fp16", "int8"]


def shipped_bytes(root: Path | None = None, leaving_out: str | None = None) -> int:
    """Bytes of every game's shipped files under ``root`` (``assets/``), but
    ``leaving_out``'s."""
    root = stored.ASSETS_ROOT if root is None else root
    if not root.is_dir():
        return 0
    return sum(folder_bytes(game) for game in root.iterdir()
               if game.is_dir() and not game.name.startswith(".") and game.name != leaving_out)


def ship(game: str, weights: Path | None, probe: Path | None = None,
         teacher: Path | None = None,
         precision: Precision = "fp16", teacher_precision: str = "bf16",
         sampler: str = "rolling",
         info: dict[str, Any] | None = None, root: Path | None = None,
         decoder: Path | None = None) -> Path:
    """Write ``root/<game>/`` (``assets/<game>/``) from training's outputs; returns the
    folder. ``weights`` None with a ``teacher``: a game whose world model is still in
    training keeps its chain's checkpoint (play stays on the simulator meanwhile).
    ``decoder``: an autoencoder whose decoder replaces the world model's and the
    teacher's (``train ae --set train="decoder"``); refused unless its encoder and latent
    statistics are theirs, so the latents stay those their denoisers learned."""
    from neural_engine.evaluation.probe import load_probe, save_probe

    root = stored.ASSETS_ROOT if root is None else root
    if precision not in ("fp16", "int8"):
        raise EngineError(f"precision {precision!r}: fp16 or int8")
    if teacher_precision not in ("bf16", "int8"):
        raise EngineError(f"teacher precision {teacher_precision!r}: bf16 or int8")
    if weights is None and teacher is None:
        raise EngineError("nothing to ship: name the world model (--weights) or, while it "
                          "is still in training, the teacher checkpoint (--teacher)",
                          where=game)
    records: dict[str, Any] = {}
    model = teacher_model = None
    if weights is not None:
        model = _world_model(weights, game, "weights are")
        records[WEIGHTS_NAME] = {"from": str(weights), "precision": precision,
                                 "training": read_config(weights)[1]}
    if teacher is not None:
        teacher_model = _world_model(teacher, game, "a teacher")
        records[TEACHER_NAME] = {"from": str(teacher), "precision": teacher_precision,
                                 "training": read_config(teacher)[1],
                                 "use": "the next distillation's score and the next teacher "
                                        "run's warm start; not used to play"}
    if decoder is not None:
        from neural_engine.model.weights import load_autoencoder

        tuned = load_autoencoder(decoder)
        for name, target in ((WEIGHTS_NAME, model), (TEACHER_NAME, teacher_model)):
            if target is not None:
                replace_decoder(target.autoencoder, tuned, where=str(decoder))
                records[name]["decoder"] = {"from": str(decoder),
                                            "training": _stored_info(decoder)}
    probe_model = probe_info = None
    if probe is not None:
        from neural_engine.games import load_spec

        scales = tuple(m.scale for m in load_spec(game).control.motion)
        probe_model = load_probe(probe, scales=scales)
        probe_info = _stored_info(probe)
        collapse = probe_info.get("collapse")
        if isinstance(collapse, dict) and collapse.get("exported") == "final":
            raise EngineError("this probe's training collapsed and no earlier weights read "
                              "better (its info's 'collapse'); train it again before it "
                              "rules any gate", where=str(probe))
        records[PROBE_NAME] = {"from": str(probe), "precision": "fp16",
                               "use": "the action-control probe neural-engine eval reads; "
                                      "not part of the world model"}

    final, staging = root / game, root / f".{game}.new"
    try:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
    except OSError as exc:
        raise EngineError(f"cannot write: {exc.strerror or exc}", where=str(staging)) from None
    try:
        if model is not None:
            save_world_model(staging / WEIGHTS_NAME, model, dtype=torch.float16,
                             info=records[WEIGHTS_NAME]["training"], int8=precision == "int8")
        if teacher_model is not None:
            save_world_model(staging / TEACHER_NAME, teacher_model, dtype=torch.bfloat16,
                             info=records[TEACHER_NAME]["training"],
                             int8=teacher_precision == "int8")
        if probe_model is not None:
            save_probe(staging / PROBE_NAME, probe_model.half(), probe_info)
        for name in (WEIGHTS_NAME, TEACHER_NAME, PROBE_NAME):
            _keep_unchanged(staging / name, final / name)
        write_manifest(staging, {"game": game, "sampler": sampler, "shipped": records,
                                 **(info or {})})
        this = folder_bytes(staging)
        total = shipped_bytes(root, leaving_out=game) + this
        if total > ASSET_BUDGET:
            raise EngineError(
                f"every game's shipped files would take {total / 2**20:.1f} MiB, more than "
                f"the {ASSET_BUDGET >> 20} MiB budget (this game's: "
                f"{this / 2**20:.1f} MiB); ship in int8, leave out the "
                "teacher, or train a smaller model", where=str(final))
        verify_manifest(staging)
        load_world_model(staging / (WEIGHTS_NAME if model is not None else TEACHER_NAME))
        _swap(staging, final)
    except OSError as exc:
        raise EngineError(f"cannot write: {exc.strerror or exc}", where=str(final)) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def replace_decoder(autoencoder, tuned, where: str) -> None:
    """Load ``tuned``'s decoder into ``autoencoder``, refused (EngineError at ``where``)
    unless the two share the configuration, the latent statistics and the encoder.

    Equal means within one 8-bit step of each tensor's largest value: a world model
    shipped in 8 bits and read back holds its encoder rounded, and a decoder tuned from
    that file or from the full-precision one both belong to it. A retrained encoder
    differs by far more."""
    if tuned.cfg != autoencoder.cfg:
        raise EngineError("its autoencoder's configuration is not the world model's "
                          "(another size, or other latent statistics): the decoder was "
                          "tuned for other latents", where=where)
    mine = autoencoder.encoder.state_dict()
    for name, value in tuned.encoder.state_dict().items():
        ours = mine[name].float()
        step = ours.abs().max().clamp_min(1e-12) / 127
        if (value.float() - ours).abs().max() > step:
            raise EngineError(f"its encoder differs from the world model's (encoder.{name}): "
                              "the decoder was tuned on other latents; tune it from "
                              "this world model (train ae --init WORLD_MODEL --set "
                              'train="decoder")', where=where)
    autoencoder.decoder.load_state_dict(tuned.decoder.state_dict())


def _world_model(path: Path, game: str, what: str):
    """The world model in ``path``, refused unless it is ``game``'s; ``what`` names it
    in the message ("weights are", "a teacher")."""
    model = load_world_model(path)
    if model.config.game != game:
        raise EngineError(f"{what} for game {model.config.game!r}, not {game!r}",
                          where=str(path))
    return model


def folder_bytes(folder: Path) -> int:
    """Bytes of the files directly in ``folder``."""
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def _stored_info(path: Path) -> dict[str, Any]:
    """The ``info`` table a probe or an autoencoder file carries ({} where none)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        try:
            info = json.loads((f.metadata() or {}).get("info", "{}"))
        except (ValueError, RecursionError):
            info = {}
    return info if isinstance(info, dict) else {}


def _keep_unchanged(new: Path, old: Path) -> None:
    """Where ``new`` holds what the shipped ``old`` holds (the same tensors and the same
    metadata), put ``old``'s bytes in its place: safetensors writes its metadata table
    in no fixed order, so a file shipped again unchanged would otherwise differ byte for
    byte and enter git's history once more."""
    if not (new.is_file() and old.is_file()) or new.stat().st_size != old.stat().st_size:
        return
    parts = _parts(new)
    if parts is not None and parts == _parts(old):
        shutil.copyfile(old, new)


def _parts(path: Path) -> tuple[Any, bytes] | None:
    """A safetensors file's header, parsed, and its data bytes (None: not readable)."""
    try:
        data = path.read_bytes()
        size = int.from_bytes(data[:8], "little")
        return json.loads(data[8:8 + size]), data[8 + size:]
    except (OSError, ValueError, RecursionError):
        return None


def _swap(staging: Path, final: Path) -> None:
    """Put ``staging`` where ``final`` is; the old folder goes only once the new one is
    in place (a crash between the two renames leaves the old one beside, not lost)."""
    old = final.with_name(f".{final.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    try:
        os.replace(staging, final)
    except OSError:
        if old.exists():
            os.replace(old, final)
        raise
    shutil.rmtree(old, ignore_errors=True)

