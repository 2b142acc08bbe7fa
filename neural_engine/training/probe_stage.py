"""The action-control probe's training: pairs of real frames → the true motion between them.

Not part of the world model: it is the ruler ``neural-engine eval`` uses for action
control. Trained on frames of the simulator under the exploring agent; evaluated on
held-out worlds by the accuracy of its turn and move classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from neural_engine.data.clips import SimClips, held_out_clips
from neural_engine.evaluation.probe import MotionProbe, save_probe
from neural_engine.games import Game
from neural_engine.schema import bounds
from neural_engine.training.trainer import Distributed, wrap

EXPORT_NAME = "probe.safetensors"


@dataclass(frozen=True)
class ProbeTraining:
    width: int = field(default=32, metadata=bounds(4, 256))
    batch: int = field(default=128, metadata=bounds(1, 4096))
    lr: float = field(default=1e-3, metadata=bounds(0.0, 1.0))
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
        self.train_probe = wrap(self.probe, env)
        self.optim = torch.optim.AdamW(self.probe.parameters(), lr=cfg.lr)
        self.modules, self.optimizers = {"probe": self.probe}, {"probe": self.optim}
        self.clips = SimClips(game, cfg.batch, cfg.clip_len, device, seed=seed * 1000 + env.rank,
                              episode_ticks=cfg.episode_ticks, pool=cfg.pool,
                              training_agent=cfg.training_agent)
        self.names = tuple(self.clips.sim.state_names)
        self._eval = None

    def items_per_step(self) -> int:
        return self.cfg.batch * (self.cfg.clip_len - 1)

    def data_state(self) -> dict:
        return self.clips.state_dict()

    def load_data_state(self, state: dict) -> None:
        self.clips.load_state_dict(state)

    def train_step(self, step: int) -> dict[str, float]:
        clip = self.clips.next()
        before = clip.frames[:, :-1].flatten(0, 1)
        after = clip.frames[:, 1:].flatten(0, 1)
        target = self.game.motion(clip.states, self.names).flatten(0, 1)
        scale = self.control.scales(self.device)
        loss = F.smooth_l1_loss(self.train_probe(before, after) / scale, target / scale)
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        self.optim.step()
        return {"loss": loss.detach()}

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

    def evaluate(self, folder: Path, step: int) -> dict[str, float]:
        self.probe.eval()
        out = self.accuracy(self.probe)
        self.probe.train()
        return out

    def export(self, folder: Path) -> Path:
        return save_probe(folder / EXPORT_NAME, self.probe.eval(), self.evaluate(folder, -1))
