"""Stage 2: the teacher, a many-step denoiser trained with diffusion forcing.

Clips of real play are encoded with the frozen autoencoder; every frame gets its own
noise level (diffusion forcing), attention is block-causal (a frame sees itself and
the past), and each frame carries the action that produced it. The loss is the
flow-matching velocity error on every frame that has noise. Three patterns of noise
levels are mixed in, so the teacher has seen what streaming will ask of it:

- independent levels for every frame (plain diffusion forcing);
- a clean prefix of random length (clean history, as in the KV cache);
- a clean prefix followed by a window at the sampler's rising levels.

With some probability the first frame of a clip is replaced by the first frame of its
episode (long ago), the way the attention sink places a distant frame first.

An exponential moving average of the weights is what gets evaluated and exported.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from neural_engine.evaluation.rollout import encode_frames
from neural_engine.games import Game
from neural_engine.model.config import named_config
from neural_engine.model.dit import block_causal_mask, previous_frames
from neural_engine.errors import EngineError
from neural_engine.model.weights import load_autoencoder, load_world_model, save_world_model
from neural_engine.model.world import WorldModel
from neural_engine.schema import bounds
from neural_engine.training.clips import SimClips
from neural_engine.training.evaluation import evaluate_rollouts
from neural_engine.training.trainer import Distributed, compiled, wrap

EXPORT_NAME = "teacher.safetensors"


@dataclass(frozen=True)
class TeacherTraining:
    size: str = "small"
    batch: int = field(default=32, metadata=bounds(1, 4096))
    lr: float = field(default=3e-4, metadata=bounds(0.0, 1.0))
    warmup: int = field(default=300, metadata=bounds(0, 10**7))
    # Cosine decay of the learning rate from ``lr`` after warm-up to ``min_lr`` at step
    # ``decay_steps``, held there after (0: constant). A time-boxed run sets it to the
    # steps its minutes allow (12 steps/s on one H100), so it ends annealed.
    decay_steps: int = field(default=0, metadata=bounds(0, 10**9))
    min_lr: float = field(default=1e-5, metadata=bounds(0.0, 1.0))
    weight_decay: float = field(default=0.01, metadata=bounds(0.0, 1.0))
    ema: float = field(default=0.999, metadata=bounds(0.0, 1.0))
    time_shift: float = field(default=1.0, metadata=bounds(0.1, 10.0))
    anchor_prob: float = field(default=0.3, metadata=bounds(0.0, 1.0))
    clean_prefix_prob: float = field(default=0.3, metadata=bounds(0.0, 1.0))
    window_prob: float = field(default=0.3, metadata=bounds(0.0, 1.0))
    window: int = field(default=4, metadata=bounds(1, 32))
    episode_ticks: int = field(default=400, metadata=bounds(1, 100000))
    pool: int = field(default=1024, metadata=bounds(1, 65536))  # environments simulated at once
    # The denoiser's direct path from each frame's predecessor (``DenoiserConfig``), and
    # how often a predecessor is hidden in training, so the model also works without one
    # (a stream's first frame, a frame after the sink).
    previous_frame: bool = False
    previous_drop: float = field(default=0.1, metadata=bounds(0.0, 1.0))
    # The convolutional head after the transformer (``DenoiserConfig.refiner``; 0: off).
    refiner: int = field(default=0, metadata=bounds(0, 1024))
    compile: bool = True          # torch.compile the training forward on CUDA
    eval_worlds: int = field(default=8, metadata=bounds(1, 256))
    eval_frames: int = field(default=40, metadata=bounds(2, 10000))
    eval_steps: int = field(default=16, metadata=bounds(1, 1000))


def noise_levels(cfg, batch: int, frames: int, schedule, generator=None, device=None
                 ) -> torch.Tensor:
    """(B, T) training noise levels mixing the three patterns of the module docstring."""
    t = schedule.sample_t((batch, frames), generator, device)
    u = torch.rand(batch, generator=generator, device=device)
    prefix = torch.randint(1, frames, (batch,), generator=generator, device=device)
    index = torch.arange(frames, device=device)
    clean_prefix = (u < cfg.clean_prefix_prob)[:, None] & (index < prefix[:, None])
    t = torch.where(clean_prefix, torch.zeros_like(t), t)
    w = min(cfg.window, frames - 1)
    levels = schedule.levels(w).to(device)[1:]                               # (W,)
    jitter = torch.rand(batch, 1, generator=generator, device=device) * (levels[0])
    windowed = torch.cat([torch.zeros(batch, frames - w, device=device),
                          (levels - jitter).clamp(0.01, 1.0)], 1)
    use_window = ((u >= cfg.clean_prefix_prob)
                  & (u < cfg.clean_prefix_prob + cfg.window_prob))[:, None]
    return torch.where(use_window, windowed, t)


def learning_rate(cfg: TeacherTraining, step: int) -> float:
    """Linear warm-up, then constant or (``decay_steps`` > 0) cosine down to ``min_lr``."""
    lr = cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup))
    if cfg.decay_steps <= cfg.warmup or step < cfg.warmup:
        return lr
    done = min(1.0, (step - cfg.warmup) / (cfg.decay_steps - cfg.warmup))
    return cfg.min_lr + (cfg.lr - cfg.min_lr) * 0.5 * (1.0 + math.cos(math.pi * done))


class TeacherStage:
    name = "teacher"

    def __init__(self, game: Game, cfg: TeacherTraining, autoencoder: Path,
                 device: torch.device, env: Distributed = Distributed(), seed: int = 0,
                 init: Path | None = None):
        self.game, self.cfg, self.device, self.env = game, cfg, device, env
        ae = load_autoencoder(autoencoder, device)
        spec = game.spec
        config = named_config(cfg.size, spec.name, spec.height, spec.width, spec.actions.dim,
                              previous_frame=cfg.previous_frame, refiner=cfg.refiner)
        config = replace(config, autoencoder=ae.cfg, time_shift=cfg.time_shift)
        torch.manual_seed(seed)
        self.model = WorldModel(config).to(device)
        self.model.autoencoder.load_state_dict(ae.state_dict())
        self.model.autoencoder.set_latent_stats(ae.latent_mean, ae.latent_std)
        self.model.autoencoder.requires_grad_(False)
        self.denoiser = self.model.denoiser
        if init is not None:      # warm start from an earlier teacher's weights
            start = load_world_model(init, device=device)
            self._warm_start(start.denoiser, config, init)
        self.ema = copy.deepcopy(self.denoiser).requires_grad_(False)
        self.train_denoiser = compiled(wrap(self.denoiser, env), cfg.compile and
                                       device.type == "cuda")
        self.optim = torch.optim.AdamW(self.denoiser.parameters(), lr=cfg.lr,
                                       weight_decay=cfg.weight_decay, betas=(0.9, 0.99),
                                       fused=device.type == "cuda")
        self.modules = {"denoiser": self.denoiser, "ema": self.ema}
        self.optimizers = {"denoiser": self.optim}
        self.frames = config.denoiser.max_frames
        self.clips = SimClips(game, cfg.batch, self.frames, device, seed=seed * 1000 + env.rank,
                              episode_ticks=cfg.episode_ticks, pool=cfg.pool)
        self.schedule = self.model.schedule
        self.mask = block_causal_mask(self.frames, device)
        self.positions = torch.arange(self.frames, device=device)
        self.autocast = device.type == "cuda"

    def _warm_start(self, start, config, init: Path) -> None:
        """Load an earlier denoiser. It may lack the predecessor path or the refiner that
        this one has: those start closed (zero-initialised), so the model answers exactly
        as the earlier one did until training opens them."""
        old, new = start.config.denoiser, config.denoiser
        if not old.refiner:            # the block count of an absent refiner does not matter
            old = replace(old, refiner_blocks=new.refiner_blocks)
        # the earlier configuration must be this one with some of its new parts left out,
        # so every tensor it has fits, and only those parts are missing
        allowed = {replace(new, previous_frame=path, refiner=refiner)
                   for path in {new.previous_frame, False} for refiner in {new.refiner, 0}}
        if old not in allowed:
            raise EngineError("--init weights have another denoiser configuration",
                              where=str(init))
        self.denoiser.load_state_dict(start.state_dict(), strict=False)

    def items_per_step(self) -> int:
        return self.cfg.batch * self.frames

    def data_state(self) -> dict:
        return self.clips.state_dict()

    def load_data_state(self, state: dict) -> None:
        self.clips.load_state_dict(state)

    def _lr(self, step: int) -> float:
        return learning_rate(self.cfg, step)

    def train_step(self, step: int) -> dict[str, float]:
        clip = self.clips.next()
        b, t_len = clip.actions.shape[:2]
        with torch.no_grad(), torch.autocast("cuda", torch.bfloat16, enabled=self.autocast):
            z = encode_frames(self.model, clip.frames, torch.float32).float()
            anchor = encode_frames(self.model, clip.anchor[:, None], torch.float32).float()
        actions = clip.actions.clone()
        sink = torch.rand(b, device=self.device) < self.cfg.anchor_prob
        z[:, 0] = torch.where(sink[:, None, None, None], anchor[:, 0], z[:, 0])
        actions[:, 0] = torch.where(sink[:, None], torch.zeros_like(actions[:, 0]), actions[:, 0])
        t = noise_levels(self.cfg, b, t_len, self.schedule, device=self.device)
        noise = torch.randn_like(z)
        x_t = self.schedule.add_noise(z, noise, t)
        prev = None
        if self.cfg.previous_frame:
            # hidden at random, and always after a sink frame (it is not the predecessor)
            missing = torch.rand(b, t_len, device=self.device) < self.cfg.previous_drop
            missing[:, 1] |= sink
            prev = previous_frames(x_t, t, missing)
        with torch.autocast("cuda", torch.bfloat16, enabled=self.autocast):
            v = self.train_denoiser(x_t, t, actions, self.positions, frame_mask=self.mask,
                                    prev=prev)
        per_frame = F.mse_loss(v.float(), self.schedule.velocity_target(z, noise),
                               reduction="none").mean((2, 3, 4))                 # (B, T)
        weight = (t > 1e-3).float()
        loss = (per_frame * weight).sum() / weight.sum().clamp_min(1.0)
        for group in self.optim.param_groups:
            group["lr"] = self._lr(step)
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        grad = torch.nn.utils.clip_grad_norm_(self.denoiser.parameters(), 1.0)
        self.optim.step()
        with torch.no_grad():
            torch._foreach_lerp_(list(self.ema.parameters()), list(self.denoiser.parameters()),
                                 1.0 - self.cfg.ema)
        return {"loss": loss.detach(), "grad": grad}

    def eval_model(self) -> WorldModel:
        model = copy.deepcopy(self.model)
        model.denoiser.load_state_dict(self.ema.state_dict())
        return model.eval()

    def evaluate(self, folder: Path, step: int) -> dict[str, float]:
        return evaluate_rollouts(self.game, self.eval_model(), folder, step,
                                 worlds=self.cfg.eval_worlds, frames=self.cfg.eval_frames,
                                 samplers={"teacher": self.cfg.eval_steps, "causal": 4,
                                           "rolling": 0})

    def export(self, folder: Path) -> Path:
        # bf16 keeps the file under 16 MiB (the size one GPU run can hand back)
        return save_world_model(folder / EXPORT_NAME, self.eval_model(), dtype=torch.bfloat16,
                                info={"stage": "teacher"})
