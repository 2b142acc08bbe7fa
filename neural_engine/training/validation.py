"""Validation during training: the evaluation's own measures and gates, on a profile.

A training run watches what the playability gates watch (``neural_engine.evaluation``):
every evaluation of a stage runs the named samplers of the model being trained through
the same scoring as ``neural-engine eval`` (the ``quick`` profile by default) and logs,
per sampler, each gate's value and the number passed, beside the fidelity PSNR, and
the model's one-step ceilings (``ceiling_ae_*``: the autoencoder's reconstruction,
``ceiling_mean_*``: the denoiser's posterior mean; PSNR and sharpness).
The held-out work is replayed in the simulator once per run and kept. A contact sheet
(simulator over model, for a still, a turning and a walking test) is written beside
the checkpoints.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from neural_engine.evaluation.gates import passed
from neural_engine.evaluation.probe import load_probe
from neural_engine.evaluation.report import contact_sheet
from neural_engine.evaluation.runner import evaluate
from neural_engine.evaluation.score import build_workload
from neural_engine.evaluation.settings import profile
from neural_engine.games import Game
from neural_engine.model.weights import ASSETS_ROOT
from neural_engine.model.world import WorldModel
from neural_engine.sampler.stream import CONTEXT_FRAMES
from neural_engine.video import write_png

CONTEXT = CONTEXT_FRAMES      # real frames a distillation rollout starts from
# the ceilings logged (``evaluation/ceilings.py`` rows) and their short names
CEILINGS = {"autoencoder": "ae", "posterior_mean": "mean"}


class Validation:
    """The gates of ``samplers`` on profile ``name`` (``teacher_steps``: the teacher
    sampler's steps) for a model of ``game`` under training."""

    def __init__(self, game: Game, name: str, samplers: tuple[str, ...],
                 teacher_steps: int | None = None):
        self.game = game
        self.profile = name
        self.settings = profile(name, samplers=samplers, teacher_steps=teacher_steps)
        path = ASSETS_ROOT / game.spec.name / "probe.safetensors"
        self.probe_path = path if path.is_file() else None
        self.work = None

    @torch.no_grad()
    def __call__(self, model: WorldModel, folder: Path, step: int) -> dict[str, float]:
        device = next(model.parameters()).device
        if self.work is None:
            self.work = build_workload(self.game, self.settings)
        scales = tuple(m.scale for m in self.game.spec.control.motion)
        probe = (None if self.probe_path is None
                 else load_probe(self.probe_path, device, scales))
        if device.type == "cuda":
            model = model.to(dtype=torch.bfloat16)
        report = evaluate(self.game, model, replace(self.settings), probe,
                          progress=lambda message: None, profile=self.profile, work=self.work)
        out: dict[str, float] = {}
        for row, short in CEILINGS.items():
            for metric in ("psnr", "sharpness"):
                value = report["ceilings"][row][metric]
                if value is not None:
                    out[f"ceiling_{short}_{metric}"] = float(value)
        for r in report["results"]:
            name = r["sampler"]
            out[f"{name}_gates_passed"] = float(passed(r["gates"]))
            out[f"{name}_psnr_first_2s"] = r["fidelity"]["psnr_first_2s"]
            for row in r["gates"]:
                if isinstance(row["value"], (int, float)):
                    out[f"{name}_{row['gate']}"] = float(row["value"])
            cases = report["_contact"][name]
            if cases:
                write_png(folder / f"contact-{name}-{step:07d}.png", contact_sheet(cases))
        return out
