"""The samplers by name: the window, steps, sink and ring each one streams with.

A ``SamplerConfig`` says how a stream denoises: W frames in the window at rising noise
levels, the steps each pass takes, the sink frames and the ring of recent clean frames
kept in the cache. ``SAMPLERS`` names the algorithms compared in the paper; every named
one's ring is fitted to the positions the model sizes are trained on, and
``named_sampler`` shrinks it to a model trained on fewer. ``fit_problem`` says why a
sampler cannot run on given weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from neural_engine.errors import EngineError
from neural_engine.model.config import TRAINED_FRAMES
from neural_engine.sampler.kv_cache import CacheShape
from neural_engine.schema import bounds


# Clean real frames a stream starts from (the first ``sink`` of them become the sink).
CONTEXT_FRAMES = 2


def fitted_ring(sink: int, window: int, max_frames: int = TRAINED_FRAMES) -> int:
    """The longest ring that keeps sink + ring + window within ``max_frames`` positions."""
    return max(0, max_frames - sink - window)


@dataclass(frozen=True)
class SamplerConfig:
    window: int = field(default=4, metadata=bounds(1, 32))
    steps_per_tick: int = field(default=1, metadata=bounds(1, 1000))
    sink: int = field(default=1, metadata=bounds(0, 64))
    ring: int = field(default=fitted_ring(1, 4), metadata=bounds(0, 1024))
    stochastic: bool = True
    late_binding: bool = False
    late_binding_threshold: float = field(default=0.5, metadata=bounds(0.0, 1.0))

    @property
    def steps(self) -> int:
        """Denoising steps each frame receives."""
        return self.window * self.steps_per_tick


def _filling(window: int, steps_per_tick: int, sink: int, **options) -> SamplerConfig:
    """A sampler whose ring fills the positions the registry's sizes are trained on."""
    return SamplerConfig(window=window, steps_per_tick=steps_per_tick, sink=sink,
                         ring=fitted_ring(sink, window), **options)


SAMPLERS: dict[str, SamplerConfig] = {
    "rolling": _filling(window=4, steps_per_tick=1, sink=1),
    "rolling-nosink": _filling(window=4, steps_per_tick=1, sink=0),
    # the window steps without fresh noise: same PSNR on the shipped weights, the keys
    # answered more often (docs/training.md)
    "rolling-deterministic": _filling(window=4, steps_per_tick=1, sink=1, stochastic=False),
    "causal": _filling(window=1, steps_per_tick=4, sink=1),
    "teacher": _filling(window=1, steps_per_tick=32, sink=1, stochastic=False),
}
# The names as a typed choice: a schema field of this type refuses any other name.
SamplerName = Literal[tuple(SAMPLERS)]


def named_sampler(name: str, max_frames: int | None = None, teacher_steps: int | None = None
                  ) -> SamplerConfig:
    """A named sampler; the ring shrinks to fit ``max_frames`` trained positions, and the
    teacher's step count may be set."""
    if name not in SAMPLERS:
        raise EngineError(f"unknown sampler {name!r} (samplers: {', '.join(SAMPLERS)})")
    cfg = SAMPLERS[name]
    if max_frames is not None:
        cfg = replace(cfg, ring=min(cfg.ring, fitted_ring(cfg.sink, cfg.window, max_frames)))
    if name == "teacher" and teacher_steps:
        cfg = replace(cfg, steps_per_tick=teacher_steps)
    return cfg


def fit_problem(cfg: SamplerConfig, max_frames: int) -> str | None:
    """Why a sampler cannot run on a model trained on ``max_frames`` positions, or None."""
    positions = CacheShape(cfg.sink, cfg.ring, cfg.window).positions
    if positions <= max_frames:
        return None
    return (f"sink {cfg.sink} + ring {cfg.ring} + window {cfg.window} = {positions} frames, "
            f"more than the {max_frames} positions the weights were trained on")
