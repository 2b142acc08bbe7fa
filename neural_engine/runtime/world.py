"""The world session: rows of worlds dreamed by one world model, frames in and frames out.

``WorldSession`` is the one place where frames become a stream and the stream becomes
frames again. It encodes start frames (uint8) into latents, hands them to one
``StreamSampler`` whose batch rows are the session's rows, and decodes the clean
latents that leave the windows. Rows start together or one at a time:

- ``reset(context)`` starts every row in lockstep (row i draws with key i of the
  seed), as evaluation streams a batch of clips and a frame source its one world;
- ``join(context)`` starts a stream in a free row with its own context and seed while
  the other rows hold, so their streams go on exactly as if they were alone, and
  ``leave(row)`` frees it again (a server seats players on rows this way).

Each ``step(actions)`` advances every live row in one forward pass and decodes every
row's frame in one decoder pass; it returns the frames of all rows (a device buffer the
next tick overwrites) with the rows that produced a new one (a row shows nothing new
until its window has filled, W − 1 ticks). ``advance`` is the same tick without the
decoding, for callers that keep the latents and decode them in bulk afterwards
(``decode``), as rollouts do.

On CUDA the sampler's pass and the decoder (unless ``decode_graph`` is off, as for a
rollout, which never decodes per tick) are captured as CUDA graphs once, when the
session is made; shapes are static, so joins and leaves recapture nothing and empty
rows compute on, idle.

The session knows nothing of games, start states, input or presenters: the frame
source (``runtime/session.py``), the server's rows and evaluation's rollouts wrap it.
"""

from __future__ import annotations

import torch

from neural_engine.errors import EngineError
from neural_engine.model.dispatch import resolve_backend
from neural_engine.model.world import WorldModel
from neural_engine.sampler.device import CudaGraphPass
from neural_engine.sampler.stream import SamplerConfig, StreamSampler


class WorldSession:
    """``capacity`` rows of one world model: ``reset`` or ``join``/``leave``, then
    ``step`` (frames) or ``advance`` (latents) once per tick."""

    def __init__(self, model: WorldModel, sampler: SamplerConfig, capacity: int = 1,
                 device: torch.device | str | None = None, *, cuda_graphs: bool = True,
                 decode_graph: bool = True, kernels: str = "torch",
                 compile_options: dict | None = None):
        """``device``: where the model lives (default: its parameters' device).
        ``cuda_graphs``: capture the pass (and, with ``decode_graph``, the decoder) on
        CUDA. ``kernels``: ``"torch"``, ``"triton"`` or ``"auto"``. ``compile_options``:
        run the denoiser through ``torch.compile`` with these (before capture)."""
        if capacity < 1:
            raise EngineError(f"a session needs at least one row, not {capacity}")
        param = next(model.parameters())
        self.model, self.capacity = model, capacity
        self.device = param.device if device is None else torch.device(device)
        self.dtype = param.dtype
        self.kernels = resolve_backend(kernels, self.device)
        cfg = model.config
        self.sampler = StreamSampler(model.denoiser, model.schedule, sampler, capacity,
                                     self.device, self.dtype, kernels=self.kernels)
        self.frames = torch.zeros(capacity, cfg.height, cfg.width, 3, dtype=torch.uint8,
                                  device=self.device)                       # (N, H, W, 3)
        self.free = list(range(capacity))
        if compile_options is not None:
            self.sampler.compile(**compile_options)
        self._decode_graph = None
        if self.device.type == "cuda" and cuda_graphs:
            self.sampler.capture()
            if decode_graph:
                self._decode_graph = CudaGraphPass(self._decode_rows, self.device)

    @property
    def slots(self) -> list[int]:
        """Rows with a stream, in order."""
        return [s for s in range(self.capacity) if s not in self.free]

    # -- frames and latents ---------------------------------------------------------
    @torch.no_grad()
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames (..., H, W, 3) uint8 → normalised latents (..., C, h, w) on the device."""
        return self.model.autoencoder.encode_frames(frames)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents (..., C, h, w) → frames (..., H, W, 3) uint8."""
        return self.model.autoencoder.decode_frames(latents)

    @torch.no_grad()
    def _decode_rows(self) -> None:
        """Every row's latest clean latent into ``frames`` (graph-capturable)."""
        self.frames.copy_(self.model.autoencoder.to_frames(self.sampler.out))

    def _idle(self, *lead: int) -> torch.Tensor:
        return torch.zeros(*lead, self.model.config.action_dim)

    # -- rows -------------------------------------------------------------------------
    @torch.no_grad()
    def reset(self, context: torch.Tensor, context_actions: torch.Tensor | None = None,
              seed: int = 0) -> None:
        """Start every row from clean context latents (N, Fc, C, h, w) and the actions
        that led to them (N, Fc, A; default idle), in lockstep: row i draws with key i
        of ``seed``. Rows started so cannot leave or join alone; ``reset`` again."""
        if context.shape[0] != self.capacity:
            raise EngineError(f"{context.shape[0]} contexts for a session of "
                              f"{self.capacity} rows")
        if context_actions is None:
            context_actions = self._idle(*context.shape[:2])
        self.sampler.reset(context.to(self.device, self.dtype),
                           context_actions.to(self.device, self.dtype), seed=seed)
        self.free = []

    def reset_frames(self, frames: torch.Tensor, context_actions: torch.Tensor | None = None,
                     seed: int = 0) -> None:
        """``reset`` from context frames (N, Fc, H, W, 3) uint8."""
        self.reset(self.encode(frames), context_actions, seed)

    @torch.no_grad()
    def join(self, context: torch.Tensor, context_actions: torch.Tensor | None = None,
             seed: int = 0) -> int:
        """A new stream in the first free row from clean context latents (Fc, C, h, w) and
        the actions that led to them (Fc, A; default idle); returns its row."""
        if not self.free:
            raise EngineError(f"the session is full ({self.capacity} streams)")
        if context_actions is None:
            context_actions = self._idle(context.shape[0])
        row = self.free.pop(0)
        try:
            self.sampler.join(row, context.to(self.device, self.dtype),
                              context_actions.to(self.device, self.dtype), seed)
        except Exception:
            self.sampler.leave(row)           # no half-started stream stays live
            self.free.insert(0, row)
            raise
        return row

    def join_frames(self, frames: torch.Tensor, context_actions: torch.Tensor | None = None,
                    seed: int = 0) -> int:
        """``join`` from context frames (Fc, H, W, 3) uint8."""
        return self.join(self.encode(frames), context_actions, seed)

    def leave(self, row: int) -> None:
        """End the stream in ``row``; it computes on, idle, until a stream joins."""
        if row in self.free or not 0 <= row < self.capacity:
            raise EngineError(f"row {row} has no stream")
        self.sampler.leave(row)
        self.free.append(row)
        self.free.sort()

    # -- ticks ------------------------------------------------------------------------
    @torch.no_grad()
    def advance(self, actions: torch.Tensor, input_changed: bool | list[bool] | None = False
                ) -> torch.Tensor | None:
        """One tick of every live row under ``actions`` (N, A), one row per row of the
        session (rows without a stream are ignored); ``input_changed`` (one flag, or one
        per row) drives late binding.

        Returns the clean latents (N, C, h, w) that left the windows (a buffer the next
        tick overwrites; ``ready`` says which rows hold a new one), or None while no
        window has a frame to give yet.
        """
        return self.sampler.step(actions, input_changed or False)

    @torch.no_grad()
    def step(self, actions: torch.Tensor, input_changed: bool | list[bool] | None = False
             ) -> tuple[torch.Tensor, list[bool]]:
        """``advance``, then decode: the frames (N, H, W, 3) uint8 of every row and, per
        row, whether its frame is new this tick."""
        if self.advance(actions, input_changed) is not None:
            if self._decode_graph is not None:
                self._decode_graph.replay()
            else:
                self._decode_rows()
        return self.frames, self.ready

    @property
    def ready(self) -> list[bool]:
        """Per row: whether a frame left its window in the last tick."""
        return list(self.sampler.ready)
