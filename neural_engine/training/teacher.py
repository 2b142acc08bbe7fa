"""Stage 2: the teacher, a many-step denoiser trained with diffusion forcing.

Clips of real play are encoded with the frozen autoencoder; every frame gets its own
noise level (diffusion forcing), attention is block-causal (a frame sees itself and
the past), and each frame carries the action that produced it. The loss is the
flow-matching velocity error on every frame that has noise. Three patterns of noise
levels are mixed in, so the teacher has seen what streaming will ask of it:

- independent levels for every frame (plain diffusion forcing);
- a clean prefix of random length (clean history, as in the KV cache);
- a clean prefix followed by a window at the sampler's rising levels.

``context_noise`` > 0 puts small levels on the frames those two patterns keep clean.

With some probability the first frame of a clip is replaced by the first frame of its
episode (long ago), the way the attention sink places a distant frame first.

An exponential moving average of the weights is what gets evaluated and exported.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F

from neural_engine.data.clips import SimClips
from neural_engine.errors import EngineError
from neural_engine.games import Game
from neural_engine.model.attention import AttentionKind, resolve_attention
from neural_engine.model.config import ModelSize, named_config, size_problems
from neural_engine.model.dit import block_causal_mask, previous_frames
from neural_engine.model.weights import load_autoencoder, load_world_model, save_world_model
from neural_engine.model.world import WorldModel
from neural_engine.schema import bounds
from neural_engine.training.validation import Validation
from neural_engine.training.frozen import FrozenEncoder
from neural_engine.training.lr import learning_rate, set_learning_rate
from neural_engine.training.phases import PhaseClock
from neural_engine.training.trainer import (CompileMode, Distributed, compiled,
                                            update_ema, wrap)
from neural_engine.training.warm import warm_start

EXPORT_NAME = "teacher.safetensors"


@dataclass(frozen=True)
class TeacherTraining:
    size: ModelSize = "small"
    # The denoiser's patch in latent pixels (``DenoiserConfig.patch``; 0: the size's own).
    # A finer patch gives more tokens per frame (4x at half the patch); ``--init`` from a
    # coarser teacher converts its patch-shaped layers (``training/warm.py``).
    patch: int = field(default=0, metadata=bounds(0, 8))
    # The denoiser's blocks (0: the size's own). ``--init`` from a shallower teacher adds
    # blocks that start as copies passing the stream on unchanged (``training/warm.py``).
    depth: int = field(default=0, metadata=bounds(0, 64))
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
    # Noise on the history (GameNGen's context augmentation): the frames a clean-prefix or
    # window clip keeps clean get levels drawn uniformly below this instead (0: exactly
    # clean, as the samplers give them), so the model learns to trust a history that is
    # not quite right, the way its own generated frames are not.
    context_noise: float = field(default=0.0, metadata=bounds(0.0, 1.0))
    episode_ticks: int = field(default=400, metadata=bounds(1, 100000))
    pool: int = field(default=1024, metadata=bounds(1, 65536))  # environments simulated at once
    # Steps each simulated and encoded clip feeds (``SimClips``): the data's cost per
    # step falls this many times, the data gets this many times less fresh.
    reuse: int = field(default=1, metadata=bounds(1, 64))
    # clips played by the game's training player (every control pressed more often)
    training_agent: bool = False
    # The denoiser's direct path from each frame's predecessor (``DenoiserConfig``), and
    # how often a predecessor is hidden in training, so the model also works without one
    # (a stream's first frame, a frame after the sink).
    previous_frame: bool = False
    previous_drop: float = field(default=0.1, metadata=bounds(0.0, 1.0))
    # The convolutional head after the transformer (``DenoiserConfig.refiner``; 0: off).
    refiner: int = field(default=0, metadata=bounds(0, 1024))
    # Share of clips whose actions the learned null action replaces (> 0 gives the model
    # ``action_guidance``, so the distillation can guide its real score towards the keys).
    action_drop: float = field(default=0.0, metadata=bounds(0.0, 1.0))
    compile: bool = True          # torch.compile the training forward on CUDA
    # How the block-causal attention over the clip runs (``model/attention.py``; the same
    # numbers): SDPA's dense mask, one unmasked SDPA per frame, or FlexAttention's block
    # mask (CUDA only; elsewhere it trains with "sdpa")
    attention: AttentionKind = "sdpa"
    # "reduce-overhead" also replays the compiled forward and backward as CUDA graphs
    compile_mode: CompileMode = "default"
    # validation: the evaluation profile whose gates the run logs, and the teacher
    # sampler's steps there
    eval_profile: Literal["quick", "cpu", "smoke", "full"] = "quick"
    eval_steps: int = field(default=16, metadata=bounds(1, 1000))


def noise_levels(cfg, batch: int, frames: int, schedule, generator=None, device=None
                 ) -> torch.Tensor:
    """(B, T) training noise levels mixing the three patterns of the module docstring."""
    t = schedule.sample_t((batch, frames), generator, device)
    u = torch.rand(batch, generator=generator, device=device)
    prefix = torch.randint(1, frames, (batch,), generator=generator, device=device)
    index = torch.arange(frames, device=device)
    clean_prefix = (u < cfg.clean_prefix_prob)[:, None] & (index < prefix[:, None])
    w = min(cfg.window, frames - 1)
    levels = schedule.levels(w).to(device)[1:]                               # (W,)
    jitter = torch.rand(batch, 1, generator=generator, device=device) * (levels[0])
    history = torch.zeros_like(t)           # the levels of the frames kept clean
    if cfg.context_noise > 0:               # drawn last: without it, the draws are as before
        history = torch.rand(batch, frames, generator=generator,
                             device=device) * cfg.context_noise
    t = torch.where(clean_prefix, history, t)
    windowed = torch.cat([history[:, :frames - w], (levels - jitter).clamp(0.01, 1.0)], 1)
    use_window = ((u >= cfg.clean_prefix_prob)
                  & (u < cfg.clean_prefix_prob + cfg.window_prob))[:, None]
    return torch.where(use_window, windowed, t)


class TeacherStage:
    name = "teacher"

    def __init__(self, game: Game, cfg: TeacherTraining, autoencoder: Path,
                 device: torch.device, env: Distributed = Distributed(), seed: int = 0,
                 init: Path | None = None):
        self.game, self.cfg, self.device, self.env = game, cfg, device, env
        ae = load_autoencoder(autoencoder, device)
        spec = game.spec
        shape = {k: v for k, v in (("patch", cfg.patch), ("depth", cfg.depth)) if v}
        config = named_config(cfg.size, spec.name, spec.height, spec.width, spec.actions.dim,
                              previous_frame=cfg.previous_frame, refiner=cfg.refiner,
                              action_guidance=cfg.action_drop > 0, **shape)
        config = replace(config, autoencoder=ae.cfg, time_shift=cfg.time_shift)
        if problems := config.check():     # the frame must divide into patches
            raise EngineError(f"patch {config.denoiser.patch}: {problems[0][1]}",
                              where="teacher")
        if problems := size_problems(config):    # a file of it could not be read back
            raise EngineError(f"{problems[0]}: its weights could not be loaded",
                              where="teacher")
        torch.manual_seed(seed)
        self.model = WorldModel(config).to(device)
        self.model.autoencoder.load_state_dict(ae.state_dict())
        self.model.autoencoder.set_latent_stats(ae.latent_mean, ae.latent_std)
        self.model.autoencoder.requires_grad_(False)
        self.denoiser = self.model.denoiser
        if init is not None:      # warm start from an earlier teacher's weights
            start = load_world_model(init, device=device)
            warm_start(self.denoiser, config.denoiser, start.denoiser,
                       start.config.denoiser, str(init))
        self.ema = copy.deepcopy(self.denoiser).requires_grad_(False)
        self.train_denoiser = compiled(wrap(self.denoiser, env), cfg.compile and
                                       device.type == "cuda", cfg.compile_mode)
        # what the training bench's FLOP counter runs instead of the compiled forward
        self.uncompiled = {"train_denoiser": self.denoiser}
        self.optim = torch.optim.AdamW(self.denoiser.parameters(), lr=cfg.lr,
                                       weight_decay=cfg.weight_decay, betas=(0.9, 0.99),
                                       fused=device.type == "cuda")
        self.modules = {"denoiser": self.denoiser, "ema": self.ema}
        self.optimizers = {"denoiser": self.optim}
        self.frames = config.denoiser.max_frames
        self.clips = SimClips(game, cfg.batch, self.frames, device, seed=seed * 1000 + env.rank,
                              episode_ticks=cfg.episode_ticks, pool=cfg.pool,
                              encode=FrozenEncoder(self.model.autoencoder, device),
                              reuse=cfg.reuse,
                              training_agent=cfg.training_agent)
        self.phases = PhaseClock()
        self.schedule = self.model.schedule
        # the block-causal attention over a clip, prepared once (its mask never changes)
        self.attention = self.denoiser.frame_attention(
            block_causal_mask(self.frames, device), resolve_attention(cfg.attention, device))
        self.positions = torch.arange(self.frames, device=device)
        self.rope = self.denoiser.rotary(self.positions)      # fixed positions: made once
        self.autocast = device.type == "cuda"
        self.validation = Validation(game, cfg.eval_profile, ("rolling", "causal", "teacher"),
                                     teacher_steps=cfg.eval_steps)

    def items_per_step(self) -> int:
        return self.cfg.batch * self.frames

    def data_state(self) -> dict:
        return self.clips.state_dict()

    def load_data_state(self, state: dict) -> None:
        self.clips.load_state_dict(state)

    def _lr(self, step: int) -> float:
        return learning_rate(self.cfg, step)

    def train_step(self, step: int) -> dict[str, float]:
        with self.phases("data"):                # simulate and encode (on refills only)
            clip = self.clips.next()
        with self.phases("forward"):
            z = clip.latents.clone()                                          # (B, T, C, h, w)
            b, t_len = clip.actions.shape[:2]
            actions = clip.actions.clone()
            sink = torch.rand(b, device=self.device) < self.cfg.anchor_prob
            z[:, 0] = torch.where(sink[:, None, None, None], clip.anchor_latents, z[:, 0])
            actions[:, 0] = torch.where(sink[:, None], torch.zeros_like(actions[:, 0]),
                                        actions[:, 0])
            t = noise_levels(self.cfg, b, t_len, self.schedule, device=self.device)
            noise = torch.randn_like(z)
            x_t = self.schedule.add_noise(z, noise, t)
            prev = None
            if self.cfg.previous_frame:
                # hidden at random, and always after a sink frame (it is not the predecessor)
                missing = torch.rand(b, t_len, device=self.device) < self.cfg.previous_drop
                missing[:, 1] |= sink
                prev = previous_frames(x_t, t, missing)
            drop = None
            if self.cfg.action_drop > 0:
                drop = (torch.rand(b, 1, device=self.device) < self.cfg.action_drop).expand(
                    b, t_len)
            with torch.autocast("cuda", torch.bfloat16, enabled=self.autocast):
                v = self.train_denoiser(x_t, t, actions, self.positions,
                                        frame_mask=self.attention, prev=prev, rotary=self.rope,
                                        drop_actions=drop)
            per_frame = F.mse_loss(v.float(), self.schedule.velocity_target(z, noise),
                                   reduction="none").mean((2, 3, 4))             # (B, T)
            weight = (t > 1e-3).float()
            loss = (per_frame * weight).sum() / weight.sum().clamp_min(1.0)
        with self.phases("backward"):
            set_learning_rate(self.optim, self._lr(step))
            self.optim.zero_grad(set_to_none=True)
            loss.backward()
        with self.phases("optimizer"):
            grad = torch.nn.utils.clip_grad_norm_(self.denoiser.parameters(), 1.0)
            self.optim.step()
            update_ema(self.ema, self.denoiser, self.cfg.ema)
        return {"loss": loss.detach(), "grad": grad}

    def eval_model(self) -> WorldModel:
        model = copy.deepcopy(self.model)
        model.denoiser.load_state_dict(self.ema.state_dict())
        return model.eval()

    def evaluate(self, folder: Path, step: int) -> dict[str, float]:
        return self.validation(self.eval_model(), folder, step)

    def export(self, folder: Path) -> Path:
        # bf16 keeps the file under 16 MiB (the size one GPU run can hand back)
        return save_world_model(folder / EXPORT_NAME, self.eval_model(), dtype=torch.bfloat16,
                                info={"stage": "teacher"})
