"""Stage 3: Rolling Forcing distillation of the teacher into a few-step streaming student.

Each generator step (see docs/rolling_forcing.md for the whole algorithm in words):

1. Roll out. From two real context frames the student streams under the agent's
   actions for r ticks, r drawn per step up to well beyond the model's position range,
   through the real rolling window, attention sink and KV cache (the inference code,
   without gradients) — so it trains on its own generated history.
2. Generate with gradient. One more tick: the window (W frames at rising noise) runs
   one pass with gradient; every window frame's clean estimate x̂0 = x − t·v is the
   student's output for that window (windows of consecutive steps do not overlap in
   what they supervise: each step supervises the W frames of the window it ends on).
3. Distribution matching (DMD). The x̂0 frames are noised to a random level and
   scored by the frozen teacher (the real score) and by a critic trained on the
   student's frames (the fake score), both seeing the sink frame and the most recent
   generated frames as clean history (padded after the window to one length, which
   nothing sees: ``fixed_length``). The student moves along (fake − real), the
   DMD gradient, normalised per sample.
4. Ground-truth anchor (our addition; games give a truth the paper's videos lack):
   for rollouts up to ``gt_horizon`` ticks (by default all of them), the window frames
   are also pulled towards the simulator's frames under the same actions. The student
   learns to bring its own drifted history back to the true pose, which is what keeps
   the answer to the keys honest: a world that stops responding is the known failure
   of rolling distillation.
5. The critic learns the student's distribution: diffusion-forcing loss on the
   generated frames (detached), ``critic_steps`` updates per generator update.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F

from neural_engine.data.clips import SimClips
from neural_engine.errors import EngineError
from neural_engine.games import Game
from neural_engine.input.actions import pressed
from neural_engine.model.attention import FrameAttention
from neural_engine.model.dit import block_causal_mask, previous_frames
from neural_engine.model.weights import load_world_model, save_world_model
from neural_engine.model.world import WorldModel
from neural_engine.sampler.stream import SAMPLERS, SamplerName, StreamSampler
from neural_engine.schema import bounds
from neural_engine.training.validation import CONTEXT, Validation
from neural_engine.training.frozen import FrozenEncoder
from neural_engine.training.phases import PhaseClock
from neural_engine.training.trainer import (GRAPHED_MODES, CompileMode, Distributed,
                                            compiled, update_ema, wrap)
from neural_engine.training.warm import warm_start

EXPORT_NAME = "student.safetensors"


@dataclass(frozen=True)
class RollingTraining:
    sampler: SamplerName = "rolling"
    batch: int = field(default=16, metadata=bounds(1, 1024))
    lr: float = field(default=2e-5, metadata=bounds(0.0, 1.0))
    lr_critic: float = field(default=4e-5, metadata=bounds(0.0, 1.0))
    critic_steps: int = field(default=2, metadata=bounds(1, 32))
    rollout_min: int = field(default=1, metadata=bounds(0, 10000))
    rollout_max: int = field(default=40, metadata=bounds(1, 10000))
    dmd_t_min: float = field(default=0.02, metadata=bounds(0.0, 1.0))
    dmd_t_max: float = field(default=0.98, metadata=bounds(0.0, 1.0))
    # The ground-truth anchor: its weight beside the DMD loss, and the longest rollout it
    # applies to (``rollout_max``: every step). The shipped student: 4.0 over all 40 ticks.
    gt_weight: float = field(default=4.0, metadata=bounds(0.0, 100.0))
    gt_horizon: int = field(default=40, metadata=bounds(0, 10000))
    # Classifier-free guidance on actions in the real score (1: none): the teacher's
    # velocity with the keys pushed w times as far from its velocity without them, so
    # the student learns a world that answers the keys more than the average one does.
    # Needs a teacher trained with ``action_drop`` (its null action).
    guidance: float = field(default=1.0, metadata=bounds(0.0, 20.0))
    # Which frames guidance pushes: "all", or "pressed", only frames whose action holds a
    # button or moves the mouse; a frame of no input keeps the plain conditional score,
    # so guidance cannot push standing still away from standing still (docs/experiments.md,
    # seventh session: guidance 2 on every frame dissolved 60 s of no input)
    guidance_where: Literal["all", "pressed"] = "all"
    ema: float = field(default=0.99, metadata=bounds(0.0, 1.0))
    episode_ticks: int = field(default=400, metadata=bounds(1, 100000))
    pool: int = field(default=512, metadata=bounds(1, 65536))  # environments simulated at once
    # Steps each simulated clip feeds (``SimClips``, as the teacher's): a refill of the
    # pool (46 ticks of 512 worlds, then the encoder over all of them) was 18 % of the
    # step on one H200 (docs/bench.md, tenth session), before the encoder was given only
    # the frames the step reads; K serves each refill K times, each time from another
    # rollout length and noise. 1 until an A/B has read its gates
    reuse: int = field(default=1, metadata=bounds(1, 64))
    # the rollout's passes (no gradient) in bfloat16 on CUDA, inside the captured graph;
    # the float32 weights are cast at every replay, so each pass sees the current student
    rollout_bf16: bool = True
    # clips played by the game's training player (every control pressed more often)
    training_agent: bool = False
    # The scorers' sequence always ``max_frames`` long: while the history is short (early
    # in a rollout) padding frames follow the window, last, so under the block-causal mask
    # no real frame sees them, and the losses skip them. The teacher and the critic then
    # see one shape, under one mask and one rotary table made once, and one compiled
    # graph (``compile``) serves every step. The real frames' numbers are the exact
    # length's within float rounding, from the same random draws (tests/training/
    # test_rolling.py); false: the sequence as long as its history, as before
    fixed_length: bool = True
    # torch.compile the scorers' forwards (the frozen teacher, the critic) on CUDA: eager,
    # they are hundreds of small launches each (the step is 88 % host gaps). With
    # ``fixed_length`` they see one shape and compile once (in the first step); without,
    # every history length compiles again. Measured on one H200 (docs/bench.md, tenth
    # session): 4.60 steps/s against 3.88 eager, after a 65 s warm-up; so off by default,
    # since a call's run of a few minutes gains about nothing. Pass it for longer runs
    compile: bool = False
    # torch.compile's mode, the teacher stage's choices: "reduce-overhead" also replays
    # the compiled scorers (forward, and the critic's backward) as CUDA graphs
    compile_mode: CompileMode = "default"
    eval_profile: Literal["quick", "cpu", "smoke", "full"] = "quick"   # validation


@dataclass(frozen=True)
class ScoreLayout:
    """The scorers' sequence: sink, recent history, window, then (``fixed_length``)
    padding up to ``frames``; what the denoiser needs for it, made once per length.

    frames: F, the sequence's length; mask: the block-causal attention over it, prepared;
    positions (F,): frame i at time position i; rotary: their rotary table.
    """

    frames: int
    mask: FrameAttention
    positions: torch.Tensor
    rotary: tuple[torch.Tensor, torch.Tensor]


def _in_bf16(module: torch.nn.Module):
    """``module``'s forward under bfloat16 autocast, returning float32."""
    def forward(*args, **kwargs):
        with torch.autocast("cuda", torch.bfloat16):
            return module(*args, **kwargs).float()
    return forward


class RollingStage:
    name = "rolling"

    def __init__(self, game: Game, cfg: RollingTraining, teacher: Path, device: torch.device,
                 env: Distributed = Distributed(), seed: int = 0, init: Path | None = None):
        self.game, self.cfg, self.device, self.env = game, cfg, device, env
        self.teacher = load_world_model(teacher, device=device).requires_grad_(False)
        if cfg.guidance != 1.0 and self.teacher.denoiser.null_action is None:
            raise EngineError("guidance needs a teacher trained with action_drop (it has "
                              "no null action)", where=str(teacher))
        torch.manual_seed(seed)
        self.rng = random.Random(seed * 1000 + env.rank)
        self.student = copy.deepcopy(self.teacher.denoiser).requires_grad_(True).train()
        if init is not None:      # warm start from an earlier student
            start = load_world_model(init, device=device)
            warm_start(self.student, self.teacher.config.denoiser, start.denoiser,
                       start.config.denoiser, str(init))
        self.critic = copy.deepcopy(self.teacher.denoiser).requires_grad_(True).train()
        for model in (self.student, self.critic):
            if model.null_action is not None:   # only the teacher's guidance uses it, and
                model.null_action.requires_grad_(False)  # DDP refuses unused parameters
        self.ema = copy.deepcopy(self.student).requires_grad_(False)
        self.train_student = wrap(self.student, env)
        fast = cfg.compile and device.type == "cuda"
        critic = wrap(self.critic, env)
        self.real = compiled(self.teacher.denoiser, fast, cfg.compile_mode)
        self.train_critic = compiled(critic, fast, cfg.compile_mode)
        # what the training bench's FLOP counter runs instead of the compiled forwards
        self.uncompiled = {"real": self.teacher.denoiser, "train_critic": critic}
        self.graphed = fast and cfg.compile_mode in GRAPHED_MODES
        fused = device.type == "cuda"
        self.optim = torch.optim.AdamW(self.student.parameters(), lr=cfg.lr,
                                       weight_decay=0.0, betas=(0.0, 0.99), fused=fused)
        self.optim_critic = torch.optim.AdamW(self.critic.parameters(), lr=cfg.lr_critic,
                                              weight_decay=0.0, betas=(0.0, 0.99), fused=fused)
        self.modules = {"student": self.student, "critic": self.critic, "ema": self.ema}
        self.optimizers = {"student": self.optim, "critic": self.optim_critic}
        self.sampler_cfg = SAMPLERS[cfg.sampler]
        self.window = self.sampler_cfg.window
        self.max_frames = self.teacher.config.denoiser.max_frames
        self.layouts: dict[int, ScoreLayout] = {}       # by length, each made once
        self.clip_len = CONTEXT + cfg.rollout_max + self.window
        self.clips = SimClips(game, cfg.batch, self.clip_len, device,
                              seed=seed * 1000 + env.rank, episode_ticks=cfg.episode_ticks,
                              pool=cfg.pool, encode=FrozenEncoder(self.teacher.autoencoder,
                                                                  device),
                              reuse=cfg.reuse,
                              training_agent=cfg.training_agent,
                              read_frames=self._frames_read(), encode_anchor=False)
        self.phases = PhaseClock()
        self.schedule = self.teacher.schedule
        self.autocast = device.type == "cuda"
        bf16 = device.type == "cuda" and cfg.rollout_bf16
        self.sampler = StreamSampler(self.student, self.schedule, self.sampler_cfg, cfg.batch,
                                     device, torch.float32,
                                     forward=_in_bf16(self.student) if bf16 else None)
        if device.type == "cuda":
            self.sampler.capture()
        self.validation = Validation(game, cfg.eval_profile, (cfg.sampler, "causal"))

    def _frames_read(self) -> int | None:
        """How many of each clip's frames the step reads (as latents): the rollout starts
        from the first CONTEXT; only the ground-truth anchor reads further (None: all).
        Drawing and encoding the other 44 of the 46 was most of the refill's cost."""
        return None if self.cfg.gt_weight > 0 else CONTEXT

    def items_per_step(self) -> int:
        return self.cfg.batch * self.window

    def data_state(self) -> dict:
        version, internal, gauss = self.rng.getstate()
        return {"clips": self.clips.state_dict(), "rng": [version, list(internal), gauss]}

    def load_data_state(self, state: dict) -> None:
        self.clips.load_state_dict(state["clips"])
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))

    # -- the steps of the module docstring ------------------------------------------
    @torch.no_grad()
    def _roll_out(self, latents: torch.Tensor, actions: torch.Tensor, ticks: int
                  ) -> list[torch.Tensor]:
        """Stream ``ticks`` ticks from the context; return the emitted clean latents."""
        self.sampler.reset(latents[:, :CONTEXT], actions[:, :CONTEXT],
                           seed=self.rng.randrange(1 << 30))
        emitted = [latents[:, i] for i in range(CONTEXT)]
        for tick in range(ticks):
            out = self.sampler.step(actions[:, CONTEXT + tick])
            if out is not None:
                emitted.append(out.clone())
        return emitted

    def _generate(self, actions: torch.Tensor, tick: int) -> torch.Tensor:
        """One more tick's pass with gradient; clean estimates of the W window frames."""
        p = self.sampler.next_pass(actions[:, CONTEXT + tick])     # planned, not run
        # history enters without gradient; one tensor per layer, so that writing one
        # layer's keys does not invalidate another's saved for backward
        cache = p.cache
        cache.k = [k.clone() for k in cache.k]
        cache.v = [v.clone() for v in cache.v]
        with torch.autocast("cuda", torch.bfloat16, enabled=self.autocast):
            v = self.train_student(p.x.clone(), p.t, p.actions.clone(), p.positions,
                                   cache=cache, prev=p.prev).float()
        window = p.x[:, 1:]
        return self.schedule.x0_from_v(window, v[:, 1:], p.t[:, 1:])       # (B, W, C, h, w)

    def _context(self, emitted: list[torch.Tensor], actions: torch.Tensor, tick: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Clean history for the scorers: the sink frame, then the most recent frames."""
        room = self.max_frames - self.window - 1
        recent = list(range(max(1, len(emitted) - room), len(emitted)))
        index = [0] + recent
        hist = torch.stack([emitted[i] for i in index], 1)
        # emitted[i] was produced by action i (context actions first)
        hist_actions = torch.stack([actions[:, i] for i in index], 1)
        return hist, hist_actions

    def _layout(self, history: int) -> ScoreLayout:
        """The scorers' sequence for ``history`` clean frames before the window: always
        ``max_frames`` long (``fixed_length``), or exactly history + window."""
        n = self.max_frames if self.cfg.fixed_length else history + self.window
        if n not in self.layouts:
            denoiser = self.teacher.denoiser
            positions = torch.arange(n, device=self.device)
            self.layouts[n] = ScoreLayout(
                n, denoiser.frame_attention(block_causal_mask(n, self.device)), positions,
                denoiser.rotary(positions))
        return self.layouts[n]

    def _score_prev(self, x: torch.Tensor, t: torch.Tensor):
        """Predecessors for the scorers' sequence (models with the predecessor path): the
        frame after the sink does not follow it, so its predecessor is hidden. (Padding
        frames take the frame before them; nothing reads what they give.)"""
        if self.teacher.denoiser.prev_embed is None:
            return None
        missing = torch.zeros_like(t, dtype=torch.bool)
        missing[:, 1] = True
        return previous_frames(x, t, missing)

    def _real_score(self, x, tt, a, pos, mask, prev, rotary=None) -> torch.Tensor:
        """The frozen teacher's velocity (B, F, C, h, w), guided towards the actions a
        (B, F, A) when ``guidance``: on every frame, or (``guidance_where = "pressed"``)
        only on the frames whose action is not the no-op."""
        teacher = self.real
        v = teacher(x, tt, a, pos, frame_mask=mask, prev=prev, rotary=rotary).float()
        if self.cfg.guidance == 1.0:
            return v
        drop = torch.ones(tt.shape, dtype=torch.bool, device=tt.device)
        v_none = teacher(x, tt, a, pos, frame_mask=mask, prev=prev, rotary=rotary,
                         drop_actions=drop).float()
        guided = v_none + self.cfg.guidance * (v - v_none)
        if self.cfg.guidance_where == "all":
            return guided
        return torch.where(pressed(a)[:, :, None, None, None], guided, v)

    def _score_inputs(self, hist, hist_actions, window, window_actions, frames: int):
        """The scorers' sequence of ``frames``: the clean history (B, H, …), the window
        (B, W, …) noised to random levels, then padding (zeros at level 1, no action).
        Returns it (x, levels, actions) with the window's levels, noise and noisy latents;
        the padding draws nothing, so the random stream is the exact length's."""
        b, h = hist.shape[:2]
        w = window.shape[1]
        t = torch.rand(b, w, device=self.device) * (self.cfg.dmd_t_max - self.cfg.dmd_t_min) \
            + self.cfg.dmd_t_min
        noise = torch.randn_like(window)
        noisy = self.schedule.add_noise(window, noise, t)
        pad = frames - h - w
        x = torch.cat([hist, noisy, hist.new_zeros(b, pad, *hist.shape[2:])], 1)
        tt = torch.cat([torch.zeros(b, h, device=self.device), t,
                        torch.ones(b, pad, device=self.device)], 1)
        a = torch.cat([hist_actions, window_actions,
                       hist_actions.new_zeros(b, pad, hist_actions.shape[2])], 1)
        return x, tt, a, t, noise, noisy

    @torch.no_grad()
    def _dmd_direction(self, x0, hist, hist_actions, window_actions) -> torch.Tensor:
        """Where the student's window x0 (B, W, C, h, w) should move: (fake − real) of the
        two scores' clean estimates, normalised per sample."""
        h, w = hist.shape[1], self.window
        layout = self._layout(h)
        x, tt, a, t, _, noisy = self._score_inputs(hist, hist_actions, x0, window_actions,
                                                   layout.frames)
        with torch.autocast("cuda", torch.bfloat16, enabled=self.autocast):
            prev = self._score_prev(x, tt)
            v_real = self._real_score(x, tt, a, layout.positions, layout.mask, prev,
                                      layout.rotary)
            v_fake = self.train_critic(x, tt, a, layout.positions, frame_mask=layout.mask,
                                       prev=prev, rotary=layout.rotary).float()
        real = self.schedule.x0_from_v(noisy, v_real[:, h:h + w], t)
        fake = self.schedule.x0_from_v(noisy, v_fake[:, h:h + w], t)
        scale = (x0 - real).abs().mean((1, 2, 3, 4), keepdim=True).clamp_min(1e-4)
        return (fake - real) / scale

    def _critic_loss(self, x0, hist, hist_actions, window_actions) -> torch.Tensor:
        """The critic's flow-matching loss on the student's window x0 (B, W, …), detached."""
        h, w = hist.shape[1], self.window
        layout = self._layout(h)
        x, tt, a, _, noise, _ = self._score_inputs(hist, hist_actions, x0, window_actions,
                                                   layout.frames)
        with torch.autocast("cuda", torch.bfloat16, enabled=self.autocast):
            v = self.train_critic(x, tt, a, layout.positions, frame_mask=layout.mask,
                                  prev=self._score_prev(x, tt), rotary=layout.rotary).float()
        return F.mse_loss(v[:, h:h + w], self.schedule.velocity_target(x0, noise))

    def train_step(self, step: int) -> dict[str, float]:
        cfg = self.cfg
        if self.graphed:      # a new iteration for the compiled scorers' CUDA graphs
            torch.compiler.cudagraph_mark_step_begin()
        with self.phases("data"):
            clip = self.clips.next()
        latents, actions = clip.latents, clip.actions
        ticks = self.rng.randint(max(cfg.rollout_min, self.window - 1), cfg.rollout_max)
        with self.phases("rollout"):
            emitted = self._roll_out(latents, actions, ticks)
        with self.phases("generate"):
            x0 = self._generate(actions, ticks)                               # (B, W, ...)
        window_actions = self.sampler.actions[:, 1:].clone()
        hist, hist_actions = self._context(emitted, actions, ticks)

        # DMD: the student moves from the fake score towards the real one.
        with self.phases("scores"):
            direction = self._dmd_direction(x0.detach(), hist, hist_actions, window_actions)
        loss_dmd = 0.5 * F.mse_loss(x0, (x0 - direction).detach())
        loss = loss_dmd
        loss_gt = torch.zeros((), device=self.device)
        if cfg.gt_weight > 0 and ticks <= cfg.gt_horizon:
            # window frame k answered action (ticks − W + 1 + k) of the rollout
            first = CONTEXT + ticks - self.window + 1
            index = [first + k for k in range(self.window)]
            ok = [k for k, i in enumerate(index) if CONTEXT <= i < latents.shape[1]]
            if ok:
                target = latents[:, [index[k] for k in ok]]
                loss_gt = F.mse_loss(x0[:, ok], target)
                loss = loss + cfg.gt_weight * loss_gt
        with self.phases("backward"):
            self.optim.zero_grad(set_to_none=True)
            loss.backward()
            grad = torch.nn.utils.clip_grad_norm_(self.student.parameters(), 1.0)
            self.optim.step()
            update_ema(self.ema, self.student, cfg.ema)

        # The critic learns the student's frames (flow matching on detached samples).
        with self.phases("critic"):
            critic_loss = torch.zeros((), device=self.device)
            for _ in range(cfg.critic_steps):
                c_loss = self._critic_loss(x0.detach(), hist, hist_actions, window_actions)
                self.optim_critic.zero_grad(set_to_none=True)
                c_loss.backward()
                torch.nn.utils.clip_grad_norm_(self.critic.parameters(), 1.0)
                self.optim_critic.step()
                critic_loss += c_loss.detach() / cfg.critic_steps
        return {"dmd": loss_dmd.detach(), "gt": loss_gt.detach(), "critic": critic_loss,
                "grad": grad, "ticks": float(ticks)}

    def eval_model(self) -> WorldModel:
        model = copy.deepcopy(self.teacher)
        model.denoiser.load_state_dict(self.ema.state_dict())
        return model.eval()

    def evaluate(self, folder: Path, step: int) -> dict[str, float]:
        return self.validation(self.eval_model(), folder, step)

    def export(self, folder: Path) -> Path:
        return save_world_model(folder / EXPORT_NAME, self.eval_model(), dtype=torch.bfloat16,
                                info={"stage": "rolling"})
