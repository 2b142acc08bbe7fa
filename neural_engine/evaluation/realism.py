"""Realism over a long rollout: drift, sharpness and a Fréchet distance, minute by minute.

All three are read per minute of the rollout (one chunk if it is shorter), against the
simulator's own frames under the same actions:

- drift: each frame's distance to the nearest real frame of the game's bank
  (``features.py``), with ΔDrift = |mean of the last 5 s − mean of the first 5 s| as in
  the Rolling Forcing paper; the per-minute ratio to the simulator's drift is the gate;
- sharpness: generated over true high-frequency energy;
- Fréchet distance between the generated and the true frames of the minute, in the
  same fixed feature space (the simulator's frames against the bank give its scale).
"""

from __future__ import annotations

import torch

from neural_engine.evaluation.features import RealFrameBank, features_of
from neural_engine.evaluation.metrics import frechet_distance, sharpness_ratio


def per_second(values: torch.Tensor, rate: int) -> list[float]:
    """(B, T) per-frame values → mean per second of the stream."""
    seconds = values.shape[1] // rate
    return [values[:, s * rate:(s + 1) * rate].mean().item() for s in range(seconds)]


def minutes(ticks: int, rate: int) -> list[slice]:
    """The whole minutes of a rollout of ``ticks`` (under a minute: the whole rollout)."""
    minute = 60 * rate
    return [slice(m * minute, (m + 1) * minute) for m in range(max(1, ticks // minute))]


def drift_summary(distance: torch.Tensor, rate: int) -> dict:
    """(B, T) nearest-real-frame distances → per second/minute means and ΔDrift."""
    five = 5 * rate
    delta = abs(distance[:, -five:].mean().item() - distance[:, :five].mean().item())
    per_minute, delta_minute = [], []
    for chunk in (distance[:, m] for m in minutes(distance.shape[1], rate)):
        per_minute.append(chunk.mean().item())
        delta_minute.append(abs(chunk[:, -five:].mean().item() - chunk[:, :five].mean().item()))
    return {"drift_per_second": per_second(distance, rate), "drift_per_minute": per_minute,
            "delta_drift": delta, "delta_drift_per_minute": delta_minute,
            "drift_ratio_last_vs_first_minute":
                per_minute[-1] / max(per_minute[0], 1e-9) if len(per_minute) > 1 else None}


def realism(generated: torch.Tensor, truth: torch.Tensor, bank: RealFrameBank,
            rate: int) -> dict:
    """Drift summary of ``generated`` (B, T, H, W, 3) uint8, and per minute: its drift
    over the simulator's, its sharpness ratio, and its Fréchet distance to the truth."""
    b, t = generated.shape[:2]
    distance = bank.distance(generated.flatten(0, 1)).view(b, t)
    true_distance = bank.distance(truth.flatten(0, 1)).view(b, t)
    out = drift_summary(distance, rate)
    true_minute = drift_summary(true_distance, rate)["drift_per_minute"]
    out["drift_vs_simulator_per_minute"] = [g / max(s, 1e-9) for g, s in
                                            zip(out["drift_per_minute"], true_minute)]
    out["sharpness_per_minute"], out["frechet_per_minute"] = [], []
    for span in minutes(t, rate):
        gen, real = generated[:, span].flatten(0, 1), truth[:, span].flatten(0, 1)
        out["sharpness_per_minute"].append(sharpness_ratio(gen, real))
        out["frechet_per_minute"].append(frechet_distance(bank.standardise(features_of(gen)),
                                                          bank.standardise(features_of(real))))
    return out


def frechet_to_bank(truth: torch.Tensor, bank: RealFrameBank, rate: int) -> list[float]:
    """Per minute, the Fréchet distance of the simulator's frames (B, T, H, W, 3) to the
    bank: real frames of these worlds against real frames of others, the floor."""
    return [frechet_distance(bank.standardise(features_of(truth[:, span].flatten(0, 1))),
                             bank.bank) for span in minutes(truth.shape[1], rate)]
