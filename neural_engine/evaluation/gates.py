"""The playability gates: what a world model must reach before a player can use it.

One table, here and nowhere else (``docs/evaluation.md`` explains each in words). A gate
reads one value from a sampler's scores (``score.py``) and passes when the value lies
within its limits; a gate with ``versus`` passes when the value is below the same
value of that other sampler on the same weights. A value that was not measured (no
probe, a sampler left out) is "not measured", never a pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

PASS, FAIL, UNMEASURED = "pass", "fail", "not measured"


def _get(*path: str | int) -> Callable[[dict], float | None]:
    """A reader of ``scores[path[0]][path[1]]…`` that gives None where a step is missing."""
    def read(scores: dict) -> float | None:
        value = scores
        for step in path:
            try:
                value = value[step]
            except (KeyError, IndexError, TypeError):
                return None
        return value
    return read


def _worst_minute(scores: dict) -> float | None:
    values = _get("realism", "drift_vs_simulator_per_minute")(scores)
    return max(values) if values else None


def _last_still(scores: dict) -> float | None:
    values = _get("controls", "still_psnr")(scores)
    return list(values.values())[-1] if values else None


@dataclass(frozen=True)
class Gate:
    key: str
    title: str
    read: Callable[[dict], float | None]
    low: float | None = None
    high: float | None = None
    versus: str | None = None      # pass when below this sampler's value

    @property
    def rule(self) -> str:
        if self.versus:
            return f"< {self.versus}"
        if self.low is not None and self.high is not None:
            return f"{self.low:g}–{self.high:g}"
        return f"≥ {self.low:g}" if self.low is not None else f"≤ {self.high:g}"

    def judge(self, value: float | None, others: dict[str, dict]) -> str:
        if value is None:
            return UNMEASURED
        if self.versus:
            other = others.get(self.versus)
            reference = None if other is None else self.read(other)
            return UNMEASURED if reference is None else (PASS if value < reference else FAIL)
        ok = ((self.low is None or value >= self.low)
              and (self.high is None or value <= self.high))
        return PASS if ok else FAIL


GATES: tuple[Gate, ...] = (
    Gate("turn", "turn accuracy (probe classes, fidelity cases)",
         _get("fidelity", "accuracy", "turn"), low=0.90),
    Gate("move", "move accuracy", _get("fidelity", "accuracy", "move"), low=0.90),
    Gate("strafe", "strafe accuracy", _get("fidelity", "accuracy", "strafe"), low=0.90),
    Gate("held_turn", "held turn key read as turning the right way",
         _get("controls", "held_turn"), low=0.90),
    Gate("blocked_forward", "forward readings while a wall blocks the player",
         _get("controls", "blocked_moving"), high=0.10),
    Gate("sharpness_2s", "sharpness ratio over the first 2 s",
         _get("fidelity", "sharpness_first_2s"), low=0.85, high=1.15),
    Gate("sharpness_last_minute", "sharpness ratio in the last minute of the long rollout",
         _get("realism", "sharpness_per_minute", -1), low=0.85, high=1.15),
    Gate("one_step_psnr", "one-step PSNR from true context, changing frames (dB)",
         _get("one_step", "psnr"), low=28.0),
    Gate("realism", "drift over the simulator's, worst minute",
         _worst_minute, high=1.10),
    Gate("stillness", "stillness PSNR at the last horizon (60 s in full) (dB)",
         _last_still, low=26.0),
    Gate("loop_closure", "loop closure: view after a 360° turn against before (dB)",
         _get("controls", "loop_psnr"), low=20.0),
    Gate("beats_causal", "ΔDrift over the long rollout, against the causal sampler",
         _get("realism", "delta_drift"), versus="causal"),
)


def judge(scores: dict, sampler: str, everyone: dict[str, dict]) -> list[dict]:
    """Every gate for one sampler's scores; ``everyone``: all samplers' scores by name."""
    rows = []
    for gate in GATES:
        value = gate.read(scores)
        others = {k: v for k, v in everyone.items() if k != sampler}
        status = UNMEASURED if gate.versus == sampler else gate.judge(value, others)
        rows.append({"gate": gate.key, "value": value, "status": status})
    return rows


def passed(rows: list[dict]) -> int:
    return sum(row["status"] == PASS for row in rows)
