"""What one evaluation does: its settings, and the named profiles that fix them.

- ``full`` (the default): every sampler, 30 s fidelity, 5-minute realism, 8 worlds per
  control test; the report a world model ships with (a few minutes on one GPU);
- ``quick``: the default sampler and the causal baseline on shorter rollouts; what
  training validation runs, about a minute on one GPU;
- ``cpu``: the same measures cut down to finish within 15 minutes on a 2-core CPU;
- ``smoke``: seconds of each measure, to check that everything runs (tests, installs).

Any field can be overridden on top of a profile (the CLI's flags do so).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from neural_engine.errors import EngineError
from neural_engine.sampler.stream import SamplerName
from neural_engine.schema import bounds

DEFAULT_SAMPLER = "rolling"        # the sampler the gates are judged on


@dataclass(frozen=True)
class EvalSettings:
    samplers: tuple[SamplerName, ...] = ("rolling", "causal", "teacher", "rolling-nosink",
                                         "rolling-deterministic")
    seconds: float = field(default=30.0, metadata=bounds(1.0, 3600.0))      # fidelity
    drift_seconds: float = field(default=300.0, metadata=bounds(1.0, 36000.0))
    drift_cases: int = field(default=2, metadata=bounds(1, 64))
    cases: int | None = None                 # the first N fidelity cases (None: all)
    control_worlds: int = field(default=8, metadata=bounds(1, 1024))
    control_seconds: float | None = None     # cap on each scripted test's length
    still_seconds: float = field(default=60.0, metadata=bounds(1.0, 3600.0))
    one_step_points: int = field(default=20, metadata=bounds(1, 1000))     # per case
    one_step_context: int = field(default=8, metadata=bounds(1, 64))
    teacher_steps: int = field(default=32, metadata=bounds(1, 1000))
    latency_buttons: tuple[str, ...] = ()    # () : the game's [control] latency buttons
    latency_ticks: int = field(default=24, metadata=bounds(2, 10000))
    max_streams: int = field(default=256, metadata=bounds(1, 65536))      # per rollout
    bank_worlds: int = field(default=64, metadata=bounds(1, 4096))   # real frames for drift
    bank_ticks: int = field(default=160, metadata=bounds(5, 100000))
    seed: int = 1


PROFILES: dict[str, EvalSettings] = {
    "full": EvalSettings(),
    "quick": EvalSettings(samplers=(DEFAULT_SAMPLER, "causal"), seconds=10.0,
                          drift_seconds=120.0, control_worlds=4, one_step_points=10),
    "cpu": EvalSettings(samplers=(DEFAULT_SAMPLER, "causal"), seconds=4.0,
                        drift_seconds=20.0, drift_cases=1, control_worlds=1,
                        control_seconds=4.0, still_seconds=10.0, one_step_points=4,
                        max_streams=8),
    "smoke": EvalSettings(samplers=(DEFAULT_SAMPLER,), seconds=1.0, drift_seconds=3.0,
                          drift_cases=1, cases=2, control_worlds=1, control_seconds=1.0,
                          still_seconds=2.0, one_step_points=2, teacher_steps=4,
                          latency_ticks=10, max_streams=8, bank_worlds=4, bank_ticks=20),
}


def profile(name: str, **overrides) -> EvalSettings:
    """A named profile with some fields replaced (None values leave a field as it is)."""
    if name not in PROFILES:
        raise EngineError(f"unknown evaluation profile {name!r} (profiles: {', '.join(PROFILES)})")
    return replace(PROFILES[name], **{k: v for k, v in overrides.items() if v is not None})
