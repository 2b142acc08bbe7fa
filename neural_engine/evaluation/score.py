"""Scoring one source of frames on the evaluation's work: what a player would see.

The work (``Workload``) is built once per evaluation from the game's held-out cases and
control tests, by replaying their actions in the simulator: the fidelity cases, the long
realism rollouts, teacher-forced one-step points and the scripted control tests. A
``Dreamer`` answers each piece with frames: the world model under one sampler, or, to
give every measure its simulator value, the truth itself. ``score`` measures the
answers:

- fidelity: PSNR, SSIM and sharpness per horizon, per case, and per-tick action
  following (the motion probe's classes of each scored motion target of the game's
  ``[control]`` table against the true motion);
- one step: one frame generated from true context, over the frames that change, beside
  copying the last true frame;
- realism over minutes (``realism.py``);
- the control tests (``controls.py``), with the pooled held-key, blocked-move, loop
  closure and stillness figures the gates read;
- contact frames (true over generated at fixed times) for a still, a held-key and a
  walking-into-a-wall test.

It knows nothing about models or samplers beyond the ``Dreamer`` call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch

from neural_engine.evaluation.cases import Replay, load_cases, materialize
from neural_engine.evaluation.controls import (ControlTest, axis_accuracy, blocked_fraction,
                                               held_fraction, load_controls, loop_closure,
                                               materialize_test, stillness, true_classes)
from neural_engine.evaluation.features import RealFrameBank
from neural_engine.evaluation.metrics import high_frequency, psnr, sharpness_ratio, ssim
from neural_engine.evaluation.probe import MotionProbe, read_motion
from neural_engine.evaluation.realism import per_second, realism
from neural_engine.evaluation.settings import EvalSettings
from neural_engine.games import Game

HORIZONS = (1, 2, 5, 10, 30)
VISIBLE_LEVELS = 1.0          # mean absolute difference (of 255) that counts as visible
ONE_STEP_SPAN = 10.0          # seconds of each fidelity case the one-step points cover
CONTACT_TIMES = {"still": (1, 5, 10, 30, 60), "hold": (0.25, 0.5, 1, 1.5, 2, 3),
                 "blocked": (0.25, 0.5, 1, 1.5, 2, 3, 5)}


class Dreamer(Protocol):
    def __call__(self, replay: Replay, frames: int | None = None) -> torch.Tensor:
        """(B, T, H, W, 3) uint8: the answer to ``replay.actions`` after its context
        (``frames``: only the first that many)."""


def truth_dreamer(replay: Replay, frames: int | None = None) -> torch.Tensor:
    """The simulator's own frames: every measure's reference value."""
    return replay.truth[:, :frames]


@dataclass
class Workload:
    game: Game
    settings: EvalSettings
    rate: int
    fidelity: Replay
    long: Replay
    one_step: Replay
    one_step_case: list[str]          # the fidelity case of each one-step point
    controls: list[tuple[ControlTest, Replay]]
    button_index: dict[str, int]
    bank: RealFrameBank


def _one_step(replay: Replay, settings: EvalSettings, rate: int, lookahead: int
              ) -> tuple[Replay, list[str]]:
    """Points spread over the first ``ONE_STEP_SPAN`` s of each fidelity case: ``context``
    true frames before the point, then ``lookahead`` true actions."""
    frames = torch.cat([replay.context, replay.truth], 1)
    actions = torch.cat([replay.context_actions, replay.actions], 1)
    c, n = settings.one_step_context, frames.shape[1]
    last = min(n - lookahead, c + round(ONE_STEP_SPAN * rate))
    points = torch.linspace(c, last, settings.one_step_points).round().long().unique().tolist()
    parts, names = {k: [] for k in ("context", "context_actions", "actions", "truth",
                                    "states")}, []
    for t in points:
        parts["context"].append(frames[:, t - c:t])
        parts["context_actions"].append(actions[:, t - c:t])
        parts["actions"].append(actions[:, t:t + lookahead])
        parts["truth"].append(frames[:, t:t + lookahead])
        fc = replay.context.shape[1]
        parts["states"].append(replay.states[:, t - fc:t - fc + lookahead])
        names += replay.names
    joined = {k: torch.cat(v) for k, v in parts.items()}
    return Replay([f"{name}@{i}" for i, name in enumerate(names)], joined["context"],
                  joined["context_actions"], joined["actions"], joined["truth"],
                  joined["states"], replay.state_names), names


def one_step_points(game: Game, settings: EvalSettings, lookahead: int = 8) -> Replay:
    """The one-step points alone (what ``ceilings.py`` reads), without the rest of the
    workload: seconds where the whole one takes a minute."""
    cases, folder = load_cases(game)
    fidelity = materialize(game, cases, folder, round(settings.seconds * game.spec.tick_rate),
                           only=settings.cases)
    return _one_step(fidelity, settings, game.spec.tick_rate, lookahead)[0]


def build_workload(game: Game, settings: EvalSettings, lookahead: int = 8,
                   bank: RealFrameBank | None = None) -> Workload:
    """Everything the evaluation asks of a dreamer, replayed in the simulator (CPU);
    ``bank``: real frames to measure drift against (default: the game's full bank)."""
    rate = game.spec.tick_rate
    cases, folder = load_cases(game)
    fidelity = materialize(game, cases, folder, round(settings.seconds * rate),
                           only=settings.cases)
    long = materialize(game, cases, folder, round(settings.drift_seconds * rate),
                       only=min(settings.drift_cases, len(cases.case)))
    if fidelity.truth.shape[1] < lookahead + 1:
        raise ValueError("fidelity rollouts are too short for one-step points")
    one_step, owners = _one_step(fidelity, settings, rate, lookahead)
    controls, control_folder = load_controls(game)
    tests = []
    for test in controls.test:
        seconds = settings.still_seconds if test.kind == "still" else None
        # a loop test needs its whole turn; the others may be cut short
        cap = None if test.kind in ("loop", "still") else settings.control_seconds
        tests.append((test, materialize_test(game, controls, test, control_folder,
                                             settings.control_worlds, seconds, cap)))
    space = game.spec.actions
    buttons = {name: space.index(name) for name in space.buttons}
    return Workload(game, settings, rate, fidelity, long, one_step, owners, tests, buttons,
                    bank or RealFrameBank(game, settings.bank_worlds, settings.bank_ticks))


# ------------------------------------------------------------------------------ scoring

def _horizons(values: torch.Tensor, rate: int) -> dict[str, float]:
    return {f"{h}s": values[:, (h - 1) * rate:h * rate].mean().item()
            for h in HORIZONS if h * rate <= values.shape[1]}


def _sharp_horizons(gen: torch.Tensor, truth: torch.Tensor, rate: int) -> dict[str, float]:
    g, t = high_frequency(gen), high_frequency(truth)                     # (B, T)
    return {f"{h}s": (g[:, (h - 1) * rate:h * rate].sum()
                      / t[:, (h - 1) * rate:h * rate].sum().clamp_min(1e-6)).item()
            for h in HORIZONS if h * rate <= g.shape[1]}


def _readings(work: Workload, probe: MotionProbe | None, frames: torch.Tensor
              ) -> torch.Tensor | None:
    """The probe's classes (B, T − 1, M) of consecutive frames; None without a probe."""
    return None if probe is None else work.game.spec.control.classes(read_motion(probe, frames))


def _accuracy(work: Workload, read: torch.Tensor, true: torch.Tensor) -> dict[str, float]:
    control = work.game.spec.control
    return axis_accuracy(read, true, control.names, control.scored)


def score_fidelity(work: Workload, gen: torch.Tensor, probe: MotionProbe | None) -> dict:
    replay, rate = work.fidelity, work.rate
    truth = replay.truth
    p, s = psnr(gen, truth), ssim(gen, truth)                                 # (B, T)
    two = slice(0, 2 * rate)
    out = {"psnr": _horizons(p, rate), "ssim": _horizons(s, rate),
           "psnr_curve": per_second(p, rate), "psnr_first_2s": p[:, two].mean().item(),
           "ssim_first_2s": s[:, two].mean().item(),
           "sharpness": _sharp_horizons(gen, truth, rate),
           "sharpness_first_2s": sharpness_ratio(gen[:, two], truth[:, two]),
           "accuracy": None, "per_case": {}}
    read, true = _readings(work, probe, gen), true_classes(work.game, replay)
    if read is not None:
        out["accuracy"] = _accuracy(work, read, true)
    for i, name in enumerate(replay.names):
        case = {"psnr_first_2s": p[i, two].mean().item(), "ssim_first_2s": s[i, two].mean().item(),
                "sharpness_first_2s": sharpness_ratio(gen[i, two], truth[i, two])}
        if read is not None:
            case["accuracy"] = _accuracy(work, read[i], true[i])
        out["per_case"][name] = case
    return out


def changing(replay: Replay) -> torch.Tensor:
    """(N,) bool: the one-step points whose true next frame differs visibly from the last
    context frame (the points every one-step measure counts)."""
    truth, before = replay.truth[:, 0], replay.context[:, -1]
    return (truth.float() - before.float()).abs().mean((1, 2, 3)) >= VISIBLE_LEVELS


def score_one_step(work: Workload, gen: torch.Tensor) -> dict:
    """``gen`` (N, 1, ...): each point's first generated frame."""
    replay = work.one_step
    truth, before, first = replay.truth[:, 0], replay.context[:, -1], gen[:, 0]
    changed = changing(replay)
    out = {"points": len(truth), "changing": int(changed.sum()), "per_case": {}}
    if not changed.any():
        return out | {"psnr": None, "ssim": None, "copy_psnr": None, "copy_ssim": None,
                      "sharpness": None}
    p, s = psnr(first, truth), ssim(first, truth)
    cp, cs = psnr(before, truth), ssim(before, truth)
    out |= {"psnr": p[changed].mean().item(), "ssim": s[changed].mean().item(),
            "copy_psnr": cp[changed].mean().item(), "copy_ssim": cs[changed].mean().item(),
            "sharpness": sharpness_ratio(first[changed], truth[changed])}
    for name in dict.fromkeys(work.one_step_case):
        rows = torch.tensor([n == name for n in work.one_step_case]) & changed
        if rows.any():
            out["per_case"][name] = {"psnr": p[rows].mean().item(),
                                     "copy_psnr": cp[rows].mean().item(),
                                     "changing": int(rows.sum())}
    return out


def finite(value: float | None) -> float | None:
    """NaN (nothing counted) as None, so JSON and gates see "not measured"."""
    return None if value is None or math.isnan(value) else value


def _pool(parts: list[tuple[float, int]]) -> float | None:
    """Count-weighted mean of (fraction, count) pairs; None where nothing counted."""
    total = sum(count for _, count in parts)
    if not total:
        return None
    return sum(value * count for value, count in parts if count) / total


def score_controls(work: Workload, answers: list[torch.Tensor], probe: MotionProbe | None
                   ) -> dict:
    rate = work.rate
    tests, held, blocked, loops, still = {}, [], [], [], {}
    for (test, replay), gen in zip(work.controls, answers):
        entry: dict = {"kind": test.kind, "worlds": len(replay.names),
                       "seconds": replay.truth.shape[1] / rate}
        read, true = _readings(work, probe, gen), true_classes(work.game, replay)
        axis = None if test.axis is None else work.game.spec.control.names.index(test.axis)
        if read is not None:
            entry["accuracy"] = _accuracy(work, read, true)
            if test.kind == "hold":
                value, count = held_fraction(read, true, axis)
                entry["held"] = finite(value)
                held.append((value, count))
            if test.kind == "blocked":
                value, count = blocked_fraction(read, true, replay, axis, test.sign,
                                                work.button_index[test.button])
                entry["blocked_moving"], entry["blocked_ticks"] = finite(value), count
                blocked.append((value, count))
        if test.kind == "loop":
            before = min(round(test.before * rate), gen.shape[1] - 1)
            values = loop_closure(gen, before)
            entry["loop_psnr"] = values.mean().item()
            entry["loop_psnr_per_world"] = values.tolist()
            loops.append(entry["loop_psnr"])
        if test.kind == "still":
            entry["still_psnr"] = stillness(gen, replay.truth, rate)
            still = entry["still_psnr"]
        tests[test.name] = entry
    return {"tests": tests, "held": _pool(held), "blocked_moving": _pool(blocked),
            "loop_psnr": sum(loops) / len(loops) if loops else None, "still_psnr": still}


def contact_frames(work: Workload, answers: list[torch.Tensor]) -> dict:
    """Per contact case (the first still, hold and blocked test): the times, and true
    and generated frames (K, H, W, 3) of its first world at those times."""
    out, rate = {}, work.rate
    for (test, replay), gen in zip(work.controls, answers):
        if test.kind not in CONTACT_TIMES or test.kind in {v["kind"] for v in out.values()}:
            continue
        times = [t for t in CONTACT_TIMES[test.kind] if round(t * rate) <= gen.shape[1]]
        index = [max(0, round(t * rate) - 1) for t in times]
        out[test.name] = {"kind": test.kind, "times": times,
                          "truth": replay.truth[0, index], "generated": gen[0, index]}
    return out


def score(work: Workload, dream: Dreamer, probe: MotionProbe | None, progress=None) -> dict:
    """Every measure of one dreamer (see the module docstring); ``_contact`` and
    ``_fidelity`` hold frames for the report and are not part of the JSON."""
    say = progress or (lambda message: None)
    say("fidelity")
    gen = dream(work.fidelity)
    out = {"fidelity": score_fidelity(work, gen, probe), "_fidelity": gen}
    say("one step from true context")
    out["one_step"] = score_one_step(work, dream(work.one_step, frames=1))
    say("realism")
    long = dream(work.long)
    out["realism"] = realism(long, work.long.truth, work.bank, work.rate)
    del long
    say("control tests")
    answers = [dream(replay) for _, replay in work.controls]
    out["controls"] = score_controls(work, answers, probe)
    out["_contact"] = contact_frames(work, answers)
    return out

