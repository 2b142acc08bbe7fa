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

Named configurations (``SAMPLERS``, in ``sampler/config.py``) give the algorithms
compared in the paper, on the same weights: ``rolling`` (W = 4, K = 1, with sink), ``rolling-nosink``, ``causal``
(W = 1, K = 4: each frame fully denoised in 4 steps, then cached, as Self-Forcing
does) and ``teacher`` (W = 1, K = 32, deterministic: the many-step diffusion-forcing
sampler); ``rolling-deterministic`` is ``rolling`` with plain Euler steps in the window.

Start-up: context frames (clean latents) are committed one by one, the first S
becoming the sink; then the window fills from the back, one frame per tick, and the
first frame leaves after W ticks (``step`` returns None until then).

Late binding: when ``step`` is told the input changed, window frames whose noise
level is still above a threshold take the new action before their next step.

Rows: every row of the batch may be a stream of its own. ``reset`` starts all rows
together (one stream per row, in lockstep, as evaluation and training use it);
``join(row, …)`` starts one row while the others keep their streams, and ``leave(row)``
empties it. Every row has its own plan per pass (slot times, destinations, mask: the
packed metadata is (B, meta_size)) and its own noise levels, so rows can be at
different phases of their streams; rows without a stream still compute (static
shapes) but hold their latents. A joining row commits its context in passes where
the other rows hold, so no stream is disturbed and nothing is recaptured.

Noise: every pass draws its noise for all rows at once, on the device and inside the
pass (so inside the CUDA graph), as a pure function of each row's key (from its seed),
its stream's pass counter and the element (``neural_engine.sampler.noise``): the
re-noising noise of the window when ``stochastic``, and the fresh frame that entered
at the back, written there by the first pass of the tick. The host only sends the
keys, counters and a fresh flag per row with the plan, so a tick of many streams
launches nothing per stream, and a stream draws the same noise in any row of any
batch as it would alone.

Training: ``next_pass(actions)`` begins a tick and hands out the inputs of its first
pass (``PassInputs``) without running it, so distillation runs the student on them
with gradient; how a pass is planned, noised and run stays the sampler's own.

All state lives in preallocated buffers written in place; ``CudaGraphPass`` captures
one pass so a tick on the GPU is a few copies and graph replays. The model's fused
kernels are chosen by ``kernels`` (``"torch"`` or ``"triton"``; see
``neural_engine.model.dispatch``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from neural_engine.errors import EngineError
from neural_engine.model.dispatch import check_backend
from neural_engine.model.dit import CachedKV, Denoiser
from neural_engine.model.rope import frame_coords
from neural_engine.model.schedule import FlowSchedule
# the named samplers live in sampler/config.py; importable from here with the stream
from neural_engine.sampler.config import (CONTEXT_FRAMES, SAMPLERS, SamplerConfig,  # noqa: F401
                                          SamplerName, fit_problem, fitted_ring,
                                          named_sampler)
from neural_engine.sampler.device import CudaGraphPass, StagedCopy
from neural_engine.sampler.kv_cache import CacheShape, KVBuffers, StreamLayout, unpack
from neural_engine.sampler.noise import CounterNoise
from neural_engine.sampler.rows import NOISE_COLUMNS, StreamRows, idle_plan


@dataclass
class PassInputs:
    """What one planned pass feeds the denoiser, Q = 1 + W query frames (the commit
    frame, then the window front first); ``x`` and ``actions`` are the sampler's own
    buffers, not copies::

        x          (B, Q, C, h, w)  latents
        t          (B, Q)           noise levels
        actions    (B, Q, A)
        positions  (B, Q)           time positions
        cache      CachedKV         the cache the pass attends to and writes
        prev       predecessors (B, Q, C, h, w) and their levels (B, Q), or None
    """

    x: torch.Tensor
    t: torch.Tensor
    actions: torch.Tensor
    positions: torch.Tensor
    cache: CachedKV
    prev: tuple[torch.Tensor, torch.Tensor] | None


class StreamSampler:
    """B rows of streams of one model: ``reset(context)`` or ``join(row, …)``, then
    ``step(actions)`` per tick."""

    def __init__(self, denoiser: Denoiser, schedule: FlowSchedule, cfg: SamplerConfig,
                 batch: int = 1, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32, kernels: str = "torch",
                 forward=None):
        """``forward``: what each pass calls in place of ``denoiser`` (same arguments),
        e.g. the denoiser under autocast; ``compile`` replaces it."""
        mc = denoiser.config
        self.shape = CacheShape(cfg.sink, cfg.ring, cfg.window)
        if (problem := fit_problem(cfg, mc.denoiser.max_frames)) is not None:
            raise EngineError(problem)
        self.model, self.schedule, self.cfg = denoiser, schedule, cfg
        self.forward = denoiser if forward is None else forward
        self.kernels = check_backend(kernels)
        self.batch, self.device, self.dtype = batch, torch.device(device), dtype
        tokens, w, q = mc.tokens_per_frame, cfg.window, self.shape.queries
        self.tokens = tokens
        latent = mc.latent_shape
        dn = mc.denoiser
        self.kv = KVBuffers(dn.depth, batch, dn.heads, self.shape.slots, tokens,
                            dn.head_dim, self.device, dtype)
        # Query buffers: index 0 is the commit frame, 1..W the window (front first).
        self.x = torch.zeros(batch, q, *latent, device=self.device, dtype=dtype)
        self.actions = torch.zeros(batch, q, mc.action_dim, device=self.device, dtype=dtype)
        # Per row: noise levels of the query frames (Q), the levels the window steps
        # to (W), and 1 where the row advances this pass (0: it holds).
        self.t_dev = torch.zeros(batch, q + w + 1, device=self.device)
        self._t_host = np.zeros((batch, q + w + 1), np.float32)
        self._send_t = StagedCopy(self.t_dev)
        self._shift_x = torch.zeros(batch, max(w - 1, 1), *latent, device=self.device, dtype=dtype)
        self._shift_a = torch.zeros(batch, max(w - 1, 1), mc.action_dim, device=self.device,
                                    dtype=dtype)
        self.out = torch.zeros(batch, *latent, device=self.device, dtype=dtype)
        # Models with a predecessor path (``previous_frame``): each row's newest committed
        # clean frame and its level (1 = none yet), the predecessor of whatever follows it.
        self.uses_prev = denoiser.prev_embed is not None
        self.last_clean = torch.zeros(batch, *latent, device=self.device, dtype=dtype)
        self.last_clean_t = torch.ones(batch, device=self.device)
        # Per row: the packed plan (see ``unpack``), then the noise state of its stream
        # (key, pass counter, fresh; see ``StreamRows``).
        m = self.shape.meta_size()
        self.meta = torch.zeros(batch, m + NOISE_COLUMNS, dtype=torch.int32,
                                device=self.device)
        self._idle = idle_plan(self.shape)
        self._meta_host = np.zeros((batch, m + NOISE_COLUMNS), np.int32)
        self._plan_host, self._noise_host = self._meta_host[:, :m], self._meta_host[:, m:]
        self._plan_host[:] = self._idle
        self._send_meta = StagedCopy(self.meta)
        self.last_plan = self._meta_host          # (B, meta_size + NOISE_COLUMNS)
        self.levels = schedule.levels(cfg.steps).tolist()
        self._tok = torch.arange(tokens, device=self.device)
        # Noise per row and pass: the fresh back frame, then (stochastic) the window's.
        self._noise_frames = 1 + w if cfg.stochastic else 1
        self.noise = CounterNoise(batch, self._noise_frames * self.x[0, 0].numel(),
                                  self.device, dtype)
        self._plans: dict = {}                            # shared by every row's StreamRows
        self.graph: CudaGraphPass | None = None
        self._idle_rows()
        self.ready = [False] * batch                      # per row: a frame left this tick

    # -- rows ----------------------------------------------------------------------
    def _idle_rows(self) -> None:
        """Every row its own group, none live."""
        self.groups = [StreamRows(b, b + 1, self.shape, self.levels, self._plans)
                       for b in range(self.batch)]

    def group(self, row: int) -> StreamRows:
        return next(g for g in self.groups if g.lo <= row < g.hi)

    @property
    def layout(self) -> StreamLayout:
        """The cache layout of row 0's stream."""
        return self.group(0).layout

    # -- one pass ----------------------------------------------------------------
    def _pass_inputs(self) -> tuple[torch.Tensor, torch.Tensor, CachedKV]:
        """Noise levels (B, Q), time positions (B, Q) and cache view of the planned pass."""
        meta = unpack(self.meta, self.shape)                                # each (B, …)
        rows, cols = self.model.rows, self.model.cols
        key_cos, key_sin = self.model.rope(*frame_coords(meta["key_time"], rows, cols,
                                                         self.model.spacing))
        dest = (meta["dest"].long()[..., None] * self.tokens + self._tok).flatten(1)
        cache = CachedKV(self.kv.k, self.kv.v, dest, key_cos, key_sin, meta["mask"].bool(),
                         self.kernels)
        q = self.shape.queries
        t = self.t_dev[:, :q].to(self.dtype)                                 # (B, Q)
        return t, meta["q_time"].long(), cache

    def _draw_noise(self) -> torch.Tensor | None:
        """Draw the planned pass's noise for every row (graph-capturable): rows flagged
        fresh take theirs into the back window slot. Returns the window's re-noising
        noise (B, W, C, h, w), or None for the deterministic step."""
        key, counter, fresh = self.meta[:, -NOISE_COLUMNS:].long().unbind(1)  # (B,) each
        z = self.noise(key, counter).reshape(self.batch, self._noise_frames,
                                             *self.x.shape[2:])             # (B, 1 [+ W], …)
        back = self.x[:, self.cfg.window]                                   # (B, C, h, w)
        back.copy_(torch.where(fresh.view(-1, 1, 1, 1) > 0, z[:, 0], back))
        return z[:, 1:] if self.cfg.stochastic else None

    def _commits(self) -> torch.Tensor:
        """(B,) bool: rows whose planned pass commits its query 0 (not into scratch)."""
        return unpack(self.meta, self.shape)["dest"][:, 0] != self.shape.scratch

    def _pass_prev(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Each query frame's predecessor, latents (B, Q, C, h, w) and levels (B, Q), for
        models with the predecessor path (None otherwise). The commit frame's is the
        newest clean frame before it; a window frame's is the slot in front of it, or,
        for the front-most frame, the newest clean frame (the commit frame itself on a
        pass that commits)."""
        if not self.uses_prev:
            return None
        commit = self._commits()
        newest = torch.where(commit.view(-1, 1, 1, 1), self.x[:, 0], self.last_clean)
        newest_t = torch.where(commit, torch.zeros_like(self.last_clean_t), self.last_clean_t)
        valid = unpack(self.meta, self.shape)["window_valid"][:, :-1] > 0       # (B, W − 1)
        w = self.cfg.window
        ahead = self.x[:, 1:w]                                                # slots 0..W−2
        cut = valid.view(*valid.shape, 1, 1, 1)
        prev_x = torch.cat([self.last_clean[:, None], newest[:, None],
                            torch.where(cut, ahead, newest[:, None])], 1)
        prev_t = torch.cat([self.last_clean_t[:, None], newest_t[:, None],
                            torch.where(valid, t[:, 1:w].float(), newest_t[:, None])], 1)
        return prev_x, prev_t.to(t.dtype)

    def _keep_clean(self) -> None:
        """After a pass: rows that committed remember that frame as their newest clean."""
        if not self.uses_prev:
            return
        commit = self._commits() & (self.t_dev[:, -1] > 0.5)
        self.last_clean.copy_(torch.where(commit.view(-1, 1, 1, 1), self.x[:, 0], self.last_clean))
        self.last_clean_t.masked_fill_(commit, 0.0)

    def _pass(self) -> None:
        """One forward over commit + window frames and one level step (graph-capturable)."""
        noise = self._draw_noise()
        t, q_time, cache = self._pass_inputs()
        q, w = self.shape.queries, self.cfg.window
        t_next = self.t_dev[:, q:q + w].to(self.dtype)                       # (B, W)
        advance = self.t_dev[:, q + w:].view(self.batch, 1, 1, 1, 1) > 0.5
        v = self.forward(self.x, t, self.actions, q_time, cache=cache, prev=self._pass_prev(t))
        window = self.x[:, 1:]
        stepped = self.schedule.step(window, v[:, 1:], t[:, 1:], t_next, noise)
        window.copy_(torch.where(advance, stepped, window))
        self._keep_clean()

    def _plan_pass(self, commit: bool, only: StreamRows | None = None) -> None:
        """Write the plans, noise levels and noise states of the next pass to the device.

        Live groups advance (``only``: just that one; the others hold); a group commits
        its waiting clean frame when ``commit`` is true.
        """
        for g in self.groups:
            if g.live and (only is None or g is only):
                g.advancing = True
                meta, levels = g.plan(commit)
                self._plan_host[g.rows] = meta
                self._noise_host[g.rows] = g.noise_state
                self._t_host[g.rows] = levels
            else:
                g.advancing = False
                self._plan_host[g.rows] = self._idle
                self._noise_host[g.rows] = 0                # nothing fresh: x stays as it is
                self._t_host[g.rows] = 0.0
        self._send_meta(self._meta_host)
        self._send_t(self._t_host)

    def _run_pass(self, commit: bool, only: StreamRows | None = None) -> None:
        self._plan_pass(commit, only)
        if self.graph is not None:
            self.graph.replay()
        else:
            self._pass()
        for g in self.groups:
            if g.advancing:
                g.after_pass()

    def _check_context(self, context: torch.Tensor, context_actions: torch.Tensor) -> None:
        """Context latents (rows, Fc, C, h, w) and actions (rows, Fc, A) that fit, or an
        error before any row is touched."""
        fc = context.shape[1]
        latent = tuple(self.x.shape[2:])
        if context.dim() != 5 or tuple(context.shape[2:]) != latent:
            raise EngineError(f"context latents of shape {tuple(context.shape[1:])} do not "
                              f"match the model's (Fc, {', '.join(map(str, latent))})")
        if context_actions.shape[:2] != context.shape[:2]:
            raise EngineError(f"{context_actions.shape[1]} context actions for {fc} frames")
        if fc > self.shape.sink + self.shape.ring:
            raise EngineError(f"{fc} context frames do not fit the cache "
                              f"(sink {self.shape.sink} + ring {self.shape.ring})")

    def _commit_context(self, g: StreamRows, context: torch.Tensor,
                        context_actions: torch.Tensor, only: StreamRows | None) -> None:
        """Commit clean frames (rows, Fc, C, h, w) of group ``g`` one pass each."""
        for i in range(context.shape[1]):
            self.x[g.rows, 0] = context[:, i]
            self.actions[g.rows, 0] = context_actions[:, i]
            g.commit_next = True
            self._run_pass(True, only)

    # -- streams -----------------------------------------------------------------
    @torch.no_grad()
    def reset(self, context: torch.Tensor, context_actions: torch.Tensor, seed: int = 0) -> None:
        """Start every row from clean context latents (B, Fc, C, h, w) and their actions
        (B, Fc, A): one group of B rows in lockstep, row i drawing with key i of ``seed``."""
        self._check_context(context, context_actions)
        g = StreamRows(0, self.batch, self.shape, self.levels, self._plans)
        self.groups = [g]
        self.kv.clear()
        self.x.zero_()
        self.last_clean.zero_()
        self.last_clean_t.fill_(1.0)
        self.actions.zero_()
        g.start(seed)
        self._commit_context(g, context, context_actions, None)

    @torch.no_grad()
    def join(self, row: int, context: torch.Tensor, context_actions: torch.Tensor,
             seed: int = 0) -> None:
        """Start a stream in ``row`` from clean context latents (Fc, C, h, w) and actions
        (Fc, A); the other rows hold while its context is committed."""
        self._check_context(context[None], context_actions[None])
        g = self._single(row)
        self.kv.k[:, row].zero_()
        self.kv.v[:, row].zero_()
        self.x[row].zero_()
        self.last_clean[row].zero_()
        self.last_clean_t[row] = 1.0
        self.actions[row].zero_()
        g.start(seed)
        self._commit_context(g, context[None], context_actions[None], g)

    def leave(self, row: int) -> None:
        """End the stream in ``row``; the row computes on, idle, until a stream joins."""
        self._single(row).live = False
        self.ready[row] = False

    def _single(self, row: int) -> StreamRows:
        if not 0 <= row < self.batch:
            raise EngineError(f"row {row} is outside the batch of {self.batch}")
        g = self.group(row)
        if g.size > 1:
            raise EngineError(f"row {row} steps in lockstep with rows {g.lo}..{g.hi - 1} "
                              "(started by reset): reset the whole batch instead")
        return g

    @torch.no_grad()
    def begin_tick(self, actions: torch.Tensor, input_changed: bool | list[bool] = False) -> bool:
        """Shift every window and let a frame with ``actions`` (B, A) in at the back; the
        tick's first pass draws its noise.

        ``input_changed`` is one flag for all rows or one per row (late binding).
        Returns whether this tick's first pass commits a clean frame to some cache.
        """
        w, k_steps = self.cfg.window, self.cfg.steps_per_tick
        # The front frame of the last tick becomes the commit frame (a row that commits
        # nothing ignores query 0); the window moves up one slot.
        self.x[:, 0] = self.x[:, 1]
        self.actions[:, 0] = self.actions[:, 1]
        if w > 1:
            self._shift_x.copy_(self.x[:, 2:])
            self.x[:, 1:w] = self._shift_x
            self._shift_a.copy_(self.actions[:, 2:])
            self.actions[:, 1:w] = self._shift_a
        self.actions[:, w] = actions
        commit = False
        for g in self.groups:
            if not g.live:
                continue
            g.begin_tick(w * k_steps)
            commit = commit or g.commit_next
            if self.cfg.late_binding and input_changed:
                self._late_bind(g, actions, input_changed)
        return commit

    def _late_bind(self, g: StreamRows, actions: torch.Tensor,
                   input_changed: bool | list[bool]) -> None:
        """Window frames of ``g`` still above the threshold take the new actions."""
        slots = g.late_slots(self.cfg.late_binding_threshold)
        if isinstance(input_changed, bool):
            rows = [g.rows]
        else:
            rows = [b for b in range(g.lo, g.hi) if input_changed[b]]
        for row in rows:
            for k in slots:
                self.actions[row, 1 + k] = actions[row]

    @torch.no_grad()
    def step(self, actions: torch.Tensor, input_changed: bool | list[bool] = False
             ) -> torch.Tensor | None:
        """Advance every live row one tick under ``actions`` (B, A).

        Returns the clean latents (B, C, h, w) that left the windows (a view of a buffer
        that the next call overwrites; ``ready`` says which rows hold a new frame), or
        None while no window has a frame to give yet.
        """
        self.begin_tick(actions, input_changed)
        for sub in range(self.cfg.steps_per_tick):   # the commit rides with the first
            self._run_pass(sub == 0)
        for g in self.groups:
            left = g.live and g.end_tick()
            self.ready[g.rows] = [left] * g.size
        if not any(self.ready):
            return None
        self.out.copy_(self.x[:, 1])
        return self.out

    def next_pass(self, actions: torch.Tensor) -> PassInputs:
        """Begin a tick under ``actions`` (B, A) and plan its first pass, with the
        entering frame's noise drawn as the pass would draw it, but do not run it: the
        inputs for a forward of one's own (distillation runs the student on them with
        gradient). The sampler stays inside that tick: ``reset`` or ``join`` next."""
        commit = self.begin_tick(actions)
        self._plan_pass(commit)
        self._draw_noise()
        t, positions, cache = self._pass_inputs()
        return PassInputs(self.x, t, self.actions, positions, cache, self._pass_prev(t))

    # -- speed ---------------------------------------------------------------------
    def compile(self, **options) -> None:
        """Run the model's forward through ``torch.compile`` (before ``capture``)."""
        self.forward = torch.compile(self.model, **options)

    def capture(self) -> None:
        """Capture one pass as a CUDA graph (static shapes); later passes replay it.

        Capturing runs the pass a few times, so it clears every row: call ``reset`` or
        ``join`` afterwards.
        """
        if self.device.type != "cuda":
            raise EngineError("CUDA graphs need a CUDA device")
        full = StreamLayout(self.shape).plan(False, [True] * self.cfg.window)
        self._plan_host[:] = full
        self._noise_host[:] = 0
        self._send_meta(self._meta_host)
        self.graph = CudaGraphPass(self._pass, self.device)
        self.kv.clear()
        self.x.zero_()
        self.last_clean.zero_()
        self.last_clean_t.fill_(1.0)
        self._idle_rows()
        self._plan_host[:] = self._idle
