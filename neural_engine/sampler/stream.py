"""The streaming sampler: Rolling Forcing and its baselines, one tick at a time.

A window of W latent frames sits at strictly increasing noise levels. Each tick runs K
sub-steps; in each, one joint forward pass over the window (plus the frame to commit)
moves every window frame one level down. After the K sub-steps the front frame is
clean: it leaves the window (returned for decoding), the rest move up one slot, and a
fresh noise frame carrying this tick's action enters at the back. Each frame thus
gets W·K denoising steps. The clean frame that left is run once more, at noise 0,
as the first query of the next pass, so its keys and values enter the cache (the
Self-Forcing "re-run clean" step, folded into the next pass instead of a pass of its
own).

Named configurations (``SAMPLERS``) give the algorithms compared in the paper, on the
same weights: ``rolling`` (W = 4, K = 1, with sink), ``rolling-nosink``, ``causal``
(W = 1, K = 4: each frame fully denoised in 4 steps, then cached, as Self-Forcing
does) and ``teacher`` (W = 1, K = 32, deterministic: the many-step diffusion-forcing
sampler).

Start-up: context frames (clean latents) are committed one by one, the first S
becoming the sink; then the window fills from the back, one frame per tick, and the
first frame leaves after W ticks (``step`` returns None until then).

Late binding: when ``step`` is told the input changed, window frames whose noise
level is still above a threshold take the new action before their next step.

All state lives in preallocated buffers written in place; ``CudaGraphPass`` captures
one pass so a tick on the GPU is a few copies and graph replays.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from neural_engine.errors import EngineError
from neural_engine.model.dit import CachedKV, Denoiser
from neural_engine.model.rope import frame_coords
from neural_engine.sampler.kv_cache import CacheShape, KVBuffers, StreamLayout, unpack
from neural_engine.sampler.schedule import FlowSchedule
from neural_engine.schema import bounds


@dataclass(frozen=True)
class SamplerConfig:
    window: int = field(default=4, metadata=bounds(1, 32))
    steps_per_tick: int = field(default=1, metadata=bounds(1, 1000))
    sink: int = field(default=1, metadata=bounds(0, 64))
    ring: int = field(default=8, metadata=bounds(0, 1024))
    stochastic: bool = True
    late_binding: bool = False
    late_binding_threshold: float = field(default=0.5, metadata=bounds(0.0, 1.0))

    @property
    def steps(self) -> int:
        """Denoising steps each frame receives."""
        return self.window * self.steps_per_tick


SAMPLERS: dict[str, SamplerConfig] = {
    "rolling": SamplerConfig(window=4, steps_per_tick=1, sink=1, ring=8),
    "rolling-nosink": SamplerConfig(window=4, steps_per_tick=1, sink=0, ring=9),
    "causal": SamplerConfig(window=1, steps_per_tick=4, sink=1, ring=11),
    "teacher": SamplerConfig(window=1, steps_per_tick=32, sink=1, ring=11, stochastic=False),
}


def named_sampler(name: str, max_frames: int | None = None, teacher_steps: int | None = None
                  ) -> SamplerConfig:
    """A named sampler; the ring shrinks to fit ``max_frames`` trained positions, and the
    teacher's step count may be set."""
    if name not in SAMPLERS:
        raise EngineError(f"unknown sampler {name!r} (samplers: {', '.join(SAMPLERS)})")
    cfg = SAMPLERS[name]
    if max_frames is not None:
        cfg = replace(cfg, ring=max(0, min(cfg.ring, max_frames - cfg.sink - cfg.window)))
    if name == "teacher" and teacher_steps:
        cfg = replace(cfg, steps_per_tick=teacher_steps)
    return cfg


class StreamSampler:
    """B parallel streams of one model; ``reset(context)`` then ``step(actions)`` per tick."""

    def __init__(self, denoiser: Denoiser, schedule: FlowSchedule, cfg: SamplerConfig,
                 batch: int = 1, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32):
        mc = denoiser.config
        self.shape = CacheShape(cfg.sink, cfg.ring, cfg.window)
        if self.shape.positions > mc.denoiser.max_frames:
            raise EngineError(
                f"sink {cfg.sink} + ring {cfg.ring} + window {cfg.window} = "
                f"{self.shape.positions} frames exceeds the {mc.denoiser.max_frames} "
                "positions the model was trained on")
        self.model, self.schedule, self.cfg = denoiser, schedule, cfg
        self.batch, self.device, self.dtype = batch, torch.device(device), dtype
        self.layout = StreamLayout(self.shape)
        tokens, w, q = mc.tokens_per_frame, cfg.window, self.shape.queries
        self.tokens = tokens
        latent = mc.latent_shape
        dn = mc.denoiser
        self.kv = KVBuffers(dn.depth, batch, dn.heads, self.shape.slots, tokens,
                            dn.head_dim, self.device, dtype)
        # Query buffers: index 0 is the commit frame, 1..W the window (front first).
        self.x = torch.zeros(batch, q, *latent, device=self.device, dtype=dtype)
        self.actions = torch.zeros(batch, q, mc.action_dim, device=self.device, dtype=dtype)
        # Noise levels of the query frames (Q,) then the levels they step to (W,).
        self.t_dev = torch.zeros(q + w, device=self.device)
        self._send_t = StagedCopy(self.t_dev)
        self._shift_x = torch.zeros(batch, max(w - 1, 1), *latent, device=self.device, dtype=dtype)
        self._shift_a = torch.zeros(batch, max(w - 1, 1), mc.action_dim, device=self.device,
                                    dtype=dtype)
        self.noise = torch.zeros(batch, w, *latent, device=self.device, dtype=dtype)
        self.out = torch.zeros(batch, *latent, device=self.device, dtype=dtype)
        self.meta = torch.zeros(self.shape.meta_size(), dtype=torch.int32, device=self.device)
        self._send_meta = StagedCopy(self.meta)
        self.levels = schedule.levels(cfg.steps).tolist()
        # Token index helpers for turning frame-level metadata into token-level tensors.
        self._tok = torch.arange(tokens, device=self.device)
        self._q_frame = torch.arange(q, device=self.device).repeat_interleave(tokens)
        self._k_frame = torch.arange(self.shape.slots, device=self.device).repeat_interleave(tokens)
        self.generator = torch.Generator(device=self.device)
        self.graph: CudaGraphPass | None = None
        self.window_valid = [False] * w
        self.level_index = [0] * w        # current level index of each window slot
        self.commit_pending = False

    # -- one pass ----------------------------------------------------------------
    def pass_inputs(self) -> tuple[torch.Tensor, torch.Tensor, CachedKV]:
        """Noise levels (B, Q), time positions (Q,) and cache view of the planned pass."""
        meta = unpack(self.meta, self.shape)
        rows, cols = self.model.rows, self.model.cols
        key_cos, key_sin = self.model.rope(*frame_coords(meta["key_time"], rows, cols))
        dest = (meta["dest"].long()[:, None] * self.tokens + self._tok).reshape(-1)
        mask = meta["mask"].bool()[self._q_frame][:, self._k_frame]
        cache = CachedKV(self.kv.k, self.kv.v, dest, key_cos, key_sin, mask)
        q = self.shape.queries
        t = self.t_dev[:q].to(self.dtype).expand(self.batch, q)                # (B, Q)
        return t, meta["q_time"].long(), cache

    def _pass(self) -> None:
        """One forward over commit + window frames and one level step (graph-capturable)."""
        t, q_time, cache = self.pass_inputs()
        q = self.shape.queries
        t_next = self.t_dev[q:].to(self.dtype).expand(self.batch, q - 1)       # (B, W)
        v = self.model(self.x, t, self.actions, q_time, cache=cache)
        window = self.x[:, 1:]
        noise = self.noise if self.cfg.stochastic else None
        window.copy_(self.schedule.step(window, v[:, 1:], t[:, 1:], t_next, noise))

    def plan_pass(self, commit: bool) -> None:
        """Write the metadata, noise levels and fresh noise of the next pass to the device."""
        self.last_plan = self.layout.plan(commit, self.window_valid)
        self._send_meta(self.last_plan)
        self._send_t(np.array([0.0] + [self.levels[i] for i in self.level_index]
                              + [self.levels[max(i - 1, 0)] for i in self.level_index],
                              np.float32))
        if self.cfg.stochastic:
            self.noise.normal_(generator=self.generator)

    def _run_pass(self, commit: bool) -> None:
        self.plan_pass(commit)
        if self.graph is not None:
            self.graph.replay()
        else:
            self._pass()
        self.layout.after_pass(commit)
        self.level_index = [max(i - 1, 0) for i in self.level_index]

    # -- stream ------------------------------------------------------------------
    @torch.no_grad()
    def reset(self, context: torch.Tensor, context_actions: torch.Tensor, seed: int = 0) -> None:
        """Start streams from clean context latents (B, Fc, C, h, w) and their actions."""
        fc = context.shape[1]
        if fc > self.shape.sink + self.shape.ring:
            raise EngineError(f"{fc} context frames do not fit the cache "
                              f"(sink {self.shape.sink} + ring {self.shape.ring})")
        self.layout.reset()
        self.kv.clear()
        self.x.zero_()
        self.actions.zero_()
        self.generator.manual_seed(seed)
        self.window_valid = [False] * self.cfg.window
        self.level_index = [0] * self.cfg.window
        for i in range(fc):
            self.x[:, 0] = context[:, i]
            self.actions[:, 0] = context_actions[:, i]
            self._run_pass(commit=True)
        self.commit_pending = False

    @torch.no_grad()
    def begin_tick(self, actions: torch.Tensor, input_changed: bool = False) -> bool:
        """Shift the window and let a noise frame with ``actions`` (B, A) in at the back.

        Returns whether this tick's first pass commits a clean frame to the cache.
        """
        w, k_steps = self.cfg.window, self.cfg.steps_per_tick
        # The front frame of the last tick becomes the commit frame; shift the window.
        if self.commit_pending:
            self.x[:, 0] = self.x[:, 1]
            self.actions[:, 0] = self.actions[:, 1]
        if w > 1:
            self._shift_x.copy_(self.x[:, 2:])
            self.x[:, 1:w] = self._shift_x
            self._shift_a.copy_(self.actions[:, 2:])
            self.actions[:, 1:w] = self._shift_a
        self.window_valid = self.window_valid[1:] + [True]
        self.level_index = self.level_index[1:] + [w * k_steps]
        self.x[:, w].normal_(generator=self.generator)
        self.actions[:, w] = actions
        if self.cfg.late_binding and input_changed:
            threshold = self.cfg.late_binding_threshold
            for k in range(w - 1):
                if self.window_valid[k] and self.levels[self.level_index[k]] > threshold:
                    self.actions[:, 1 + k] = actions
        return self.commit_pending

    @torch.no_grad()
    def step(self, actions: torch.Tensor, input_changed: bool = False) -> torch.Tensor | None:
        """Advance every stream one tick under ``actions`` (B, A).

        Returns the clean latents (B, C, h, w) that left the window (a view of a buffer
        that the next call overwrites), or None while the window is still filling.
        """
        commit = self.begin_tick(actions, input_changed)
        for sub in range(self.cfg.steps_per_tick):   # the commit rides with the first
            self._run_pass(commit=commit and sub == 0)
        self.commit_pending = self.window_valid[0]
        if not self.window_valid[0]:
            return None
        self.out.copy_(self.x[:, 1])
        return self.out

    # -- CUDA graph ----------------------------------------------------------------
    def capture(self) -> None:
        """Capture one pass as a CUDA graph (static shapes); later passes replay it.

        Capturing runs the pass a few times, so it clears the streams: call ``reset``
        afterwards.
        """
        if self.device.type != "cuda":
            raise EngineError("CUDA graphs need a CUDA device")
        self._send_meta(self.layout.plan(False, [True] * self.cfg.window))
        self.graph = CudaGraphPass(self._pass, self.device)
        self.layout.reset()
        self.kv.clear()
        self.x.zero_()


class StagedCopy:
    """Host arrays into one fixed device tensor, asynchronously and without a race.

    A ring of pinned staging buffers: each is rewritten only after the copy that last
    read it has finished, so the host may run ahead of the GPU by a few passes.
    """

    def __init__(self, target: torch.Tensor, slots: int = 4):
        self.target = target
        self.cuda = target.device.type == "cuda"
        count = slots if self.cuda else 1
        self.host = [torch.zeros(target.shape, dtype=target.dtype, pin_memory=self.cuda)
                     for _ in range(count)]
        self.events: list[torch.cuda.Event | None] = [None] * count
        self.next = 0

    def __call__(self, values: np.ndarray) -> None:
        i = self.next
        self.next = (i + 1) % len(self.host)
        if self.events[i] is not None:
            self.events[i].synchronize()
        self.host[i].numpy()[...] = values
        self.target.copy_(self.host[i], non_blocking=self.cuda)
        if self.cuda:
            self.events[i] = torch.cuda.Event()
            self.events[i].record()


class CudaGraphPass:
    """A captured ``_pass``: warm up on a side stream, capture, then replay."""

    def __init__(self, fn, device: torch.device, warmup: int = 3):
        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream), torch.no_grad():
            for _ in range(warmup):
                fn()
        torch.cuda.current_stream(device).wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), torch.no_grad():
            fn()

    def replay(self) -> None:
        self.graph.replay()
