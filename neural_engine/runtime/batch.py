"""Many players on one GPU: a pool of independent game streams stepped together.

``StreamPool`` owns one ``StreamSampler`` whose batch rows are slots. A stream joins
a free slot with its own start (context frames or latents), actions and seed, and
leaves when its player goes; every tick steps all live slots in one forward pass (a
CUDA graph on the GPU) and decodes every slot's frame in one decoder pass. Joining
commits the newcomer's context in passes where the other slots hold, so their streams
go on exactly as if they were alone, and nothing is recaptured: the graphs have
static shapes and empty slots compute on, idle.

``step(actions)`` takes one action row per slot (rows of empty slots are ignored) and
returns the frames of every slot (a device buffer the next tick overwrites) with the
slots that produced a new one; a slot that joined shows nothing until its window has
filled (W − 1 ticks).

The pool knows nothing of games, input or presenters: a server maps players to
slots.
"""

from __future__ import annotations

import torch

from neural_engine.errors import EngineError
from neural_engine.model.autoencoder import to_uint8, to_unit
from neural_engine.model.world import WorldModel
from neural_engine.sampler.device import CudaGraphPass
from neural_engine.sampler.stream import SamplerConfig, StreamSampler


class StreamPool:
    """Up to ``capacity`` streams of one world model; ``join``/``leave``/``step``."""

    def __init__(self, model: WorldModel, sampler: SamplerConfig, capacity: int,
                 device: torch.device | str = "cpu", cuda_graphs: bool = True,
                 kernels: str = "torch", compile_options: dict | None = None):
        if capacity < 1:
            raise EngineError(f"a pool needs at least one slot, not {capacity}")
        self.model, self.capacity = model, capacity
        self.device = torch.device(device)
        self.dtype = next(model.parameters()).dtype
        cfg = model.config
        self.sampler = StreamSampler(model.denoiser, model.schedule, sampler, capacity,
                                     self.device, self.dtype, kernels=kernels)
        self.frames = torch.zeros(capacity, cfg.height, cfg.width, 3, dtype=torch.uint8,
                                  device=self.device)                       # (N, H, W, 3)
        self.free = list(range(capacity))
        if compile_options is not None:
            self.sampler.compile(**compile_options)
        self._decode_graph = None
        if self.device.type == "cuda" and cuda_graphs:
            self.sampler.capture()
            self._decode_graph = CudaGraphPass(self._decode, self.device)

    @property
    def slots(self) -> list[int]:
        """Slots with a stream, in order."""
        return [s for s in range(self.capacity) if s not in self.free]

    @torch.no_grad()
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Context frames (Fc, H, W, 3) uint8 → latents (Fc, C, h, w)."""
        return self.model.autoencoder.encode(to_unit(frames.to(self.device)).to(self.dtype))

    @torch.no_grad()
    def join(self, context: torch.Tensor, context_actions: torch.Tensor | None = None,
             seed: int = 0) -> int:
        """A new stream from clean context latents (Fc, C, h, w) and the actions that led
        to them (Fc, A; default idle); returns its slot."""
        if not self.free:
            raise EngineError(f"the pool is full ({self.capacity} streams)")
        if context_actions is None:
            context_actions = torch.zeros(context.shape[0], self.model.config.action_dim)
        slot = self.free.pop(0)
        try:
            self.sampler.join(slot, context.to(self.device, self.dtype),
                              context_actions.to(self.device, self.dtype), seed)
        except Exception:
            self.sampler.leave(slot)          # no half-started stream stays live
            self.free.insert(0, slot)
            raise
        return slot

    def join_frames(self, frames: torch.Tensor, context_actions: torch.Tensor | None = None,
                    seed: int = 0) -> int:
        """``join`` from context frames (Fc, H, W, 3) uint8."""
        return self.join(self.encode(frames), context_actions, seed)

    def leave(self, slot: int) -> None:
        if slot in self.free or not 0 <= slot < self.capacity:
            raise EngineError(f"slot {slot} has no stream")
        self.sampler.leave(slot)
        self.free.append(slot)
        self.free.sort()

    @torch.no_grad()
    def _decode(self) -> None:
        frame = self.model.autoencoder.decode(self.sampler.out)               # (N, 3, H, W)
        self.frames.copy_(to_uint8(frame.float()))

    @torch.no_grad()
    def step(self, actions: torch.Tensor, input_changed: list[bool] | None = None
             ) -> tuple[torch.Tensor, list[bool]]:
        """One tick of every stream under ``actions`` (N, A), one row per slot.

        Returns the frames (N, H, W, 3) uint8 of every slot and, per slot, whether its
        frame is new this tick. ``input_changed`` (per slot) drives late binding.
        """
        out = self.sampler.step(actions, input_changed or False)
        if out is not None:
            if self._decode_graph is not None:
                self._decode_graph.replay()
            else:
                self._decode()
        return self.frames, list(self.sampler.ready)
