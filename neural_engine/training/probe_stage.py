"""The action-control probe's training: pairs of real frames → the true motion between them.

Not part of the world model: it is the ruler ``neural-engine eval`` uses for action
control. Trained on frames of the simulator under the exploring agent; evaluated on
held-out worlds by the accuracy of its classes on the game's scored motion targets.

The probe has no normalisation, so its gain can run away: the dungeon's first probe
read 0.985 / 0.935 at step 1,000 and, after a loss spike at step 1,950, a constant at
its export (step 1,996). Training therefore warms the learning rate up and decays it
(``training/lr.py``), clips the gradient norm, and evaluates and exports an exponential
moving average of the weights. The export is checked against the run's evaluations: an
axis whose accuracy fell more than ``collapse_margin`` below the best any evaluation
saw is reported as a collapse, in a warning and in the file's info, and the weights of
the best evaluation (by mean accuracy over the scored axes) are exported if they beat
the final ones.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from neural_engine.data.clips import SimClips, held_out_clips
from neural_engine.evaluation.probe import MotionProbe, save_probe
from neural_engine.games import Game
from neural_engine.schema import bounds
from neural_engine.training.lr import learning_rate, set_learning_rate
from neural_engine.training.trainer import Distributed, update_ema, wrap

EXPORT_NAME = "probe.safetensors"


@dataclass(frozen=True)
class ProbeTraining:
    width: int = field(default=32, metadata=bounds(4, 256))
    batch: int = field(default=128, metadata=bounds(1, 4096))
    lr: float = field(default=1e-3, metadata=bounds(0.0, 1.0))
    # Linear warm-up over ``warmup`` steps, then cosine decay from ``lr`` to ``min_lr``
    # at step ``decay_steps``, held there after (0: constant). Three minutes on one H200
    # are about 2,000 steps of the dungeon and 3,100 of the maze.
    warmup: int = field(default=100, metadata=bounds(0, 10**7))
    decay_steps: int = field(default=2000, metadata=bounds(0, 10**9))
    min_lr: float = field(default=1e-4, metadata=bounds(0.0, 1.0))
    grad_clip: float = field(default=1.0, metadata=bounds(0.0, 1e6))   # max norm (0: off)
    ema: float = field(default=0.995, metadata=bounds(0.0, 1.0))
    # the export's check: an axis more than this below the run's best accuracy collapsed
    collapse_margin: float = field(default=0.1, metadata=bounds(0.0, 1.0))
    pool: int = field(default=512, metadata=bounds(1, 65536))
    clip_len: int = field(default=8, metadata=bounds(2, 1000))
    episode_ticks: int = field(default=400, metadata=bounds(1, 100000))
    eval_worlds: int = field(default=32, metadata=bounds(1, 1024))
    # clips played by the game's training player (every control pressed more often)
    training_agent: bool = False


class ProbeStage:
    name = "probe"

    def __init__(self, game: Game, cfg: ProbeTraining, device: torch.device,
                 env: Distributed = Distributed(), seed: int = 0):
        self.game, self.cfg, self.device = game, cfg, device
        torch.manual_seed(seed)
        self.control = game.spec.control
        self.probe = MotionProbe(tuple(m.scale for m in self.control.motion),
                                 cfg.width).to(device)
        self.ema = copy.deepcopy(self.probe).requires_grad_(False).eval()
        # the EMA's weights at the run's best evaluation, and that evaluation
        self.best = copy.deepcopy(self.ema)
        self.best_eval: dict = {}
        self.peak: dict[str, float] = {}          # every axis's best accuracy in this run
        self.train_probe = wrap(self.probe, env)
        self.optim = torch.optim.AdamW(self.probe.parameters(), lr=cfg.lr)
        self.modules = {"probe": self.probe, "ema": self.ema, "best": self.best}
        self.optimizers = {"probe": self.optim}
        self.clips = SimClips(game, cfg.batch, cfg.clip_len, device, seed=seed * 1000 + env.rank,
                              episode_ticks=cfg.episode_ticks, pool=cfg.pool,
                              training_agent=cfg.training_agent)
        self.names = tuple(self.clips.sim.state_names)
        self._eval = None

    def items_per_step(self) -> int:
        return self.cfg.batch * (self.cfg.clip_len - 1)

    def data_state(self) -> dict:
        return {"clips": self.clips.state_dict(), "peak": self.peak, "best": self.best_eval}

    def load_data_state(self, state: dict) -> None:
        self.clips.load_state_dict(state["clips"])
        self.peak, self.best_eval = dict(state["peak"]), dict(state["best"])

    def train_step(self, step: int) -> dict[str, float]:
        clip = self.clips.next()
        before = clip.frames[:, :-1].flatten(0, 1)
        after = clip.frames[:, 1:].flatten(0, 1)
        target = self.game.motion(clip.states, self.names).flatten(0, 1)
        scale = self.control.scales(self.device)
        loss = F.smooth_l1_loss(self.train_probe(before, after) / scale, target / scale)
        set_learning_rate(self.optim, learning_rate(self.cfg, step))
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        grad = torch.nn.utils.clip_grad_norm_(self.probe.parameters(),
                                              self.cfg.grad_clip or float("inf"))
        self.optim.step()
        update_ema(self.ema, self.probe, self.cfg.ema)
        return {"loss": loss.detach(), "grad": grad}

    @torch.no_grad()
    def accuracy(self, probe: MotionProbe) -> dict[str, float]:
        if self._eval is None:
            self._eval = held_out_clips(self.game, self.cfg.eval_worlds, 24, self.device)
        clip = self._eval
        truth = self.game.motion(clip.states, self.names).flatten(0, 1)
        pred = probe(clip.frames[:, :-1].flatten(0, 1), clip.frames[:, 1:].flatten(0, 1))
        c = self.control
        hits = (c.classes(truth) == c.classes(pred)).float().mean(0)       # (M,)
        return {f"{axis}_accuracy": hits[c.names.index(axis)].item() for axis in c.scored}

    def fallen(self, accuracy: dict[str, float]) -> dict[str, float]:
        """The axes of ``accuracy`` more than ``collapse_margin`` below the run's best,
        with that best."""
        return {k: self.peak[k] for k, v in accuracy.items()
                if k in self.peak and self.peak[k] - v > self.cfg.collapse_margin}

    def _remember(self, accuracy: dict[str, float], step: int) -> None:
        for k, v in accuracy.items():
            self.peak[k] = max(v, self.peak.get(k, v))
        if not self.best_eval or _mean(accuracy) > _mean(self.best_eval["accuracy"]):
            self.best.load_state_dict(self.ema.state_dict())
            self.best_eval = {"step": step, "accuracy": accuracy}

    def evaluate(self, folder: Path, step: int) -> dict[str, float]:
        """The EMA's held-out accuracy, and how many axes fell from the run's best."""
        out = self.accuracy(self.ema)
        fallen = self.fallen(out)
        self._remember(out, step)
        return out | {"collapsed_axes": float(len(fallen))}

    def export(self, folder: Path) -> Path:
        """The EMA; after a collapse, the best evaluation's weights if they beat it."""
        final = self.accuracy(self.ema)
        fallen = self.fallen(final)
        if not fallen:
            return save_probe(folder / EXPORT_NAME, self.ema, final)
        best = self.best_eval
        use_best = _mean(best["accuracy"]) > _mean(final)
        drops = ", ".join(f"{k} {final[k]:.3f} (best {v:.3f})" for k, v in fallen.items())
        if use_best:
            kept = ", ".join(f"{k} {v:.3f}" for k, v in best["accuracy"].items())
            instead = f"exported the weights of the evaluation at step {best['step']} ({kept})"
        else:
            instead = "exported them all the same: no evaluation beat them on average"
        print(f"probe: WARNING: the final weights collapsed: {drops}; {instead}",
              file=sys.stderr, flush=True)
        info = (best["accuracy"] if use_best else final) | {"collapse": {
            "final": final, "peak": self.peak,
            "exported": f"step {best['step']}" if use_best else "final"}}
        return save_probe(folder / EXPORT_NAME, self.best if use_best else self.ema, info)


def _mean(accuracy: dict[str, float]) -> float:
    return sum(accuracy.values()) / len(accuracy)
