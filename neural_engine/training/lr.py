"""The learning-rate schedule the stages share: linear warm-up, then constant or a
cosine decay to a floor.

It reads a stage's configuration through four fields alone (``lr``, ``warmup``,
``decay_steps``, ``min_lr``); the stage sets the rate on its optimizer every step. It
knows nothing of time: a time-boxed run sets ``decay_steps`` to the steps its minutes
allow, so the rate at a step is the same however the run was cut and resumed.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch


class WarmupCosine(Protocol):
    @property
    def lr(self) -> float: ...

    @property
    def warmup(self) -> int: ...

    @property
    def decay_steps(self) -> int: ...

    @property
    def min_lr(self) -> float: ...


def learning_rate(cfg: WarmupCosine, step: int) -> float:
    """Linear warm-up, then constant or (``decay_steps`` > 0) cosine down to ``min_lr``."""
    lr = cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup))
    if cfg.decay_steps <= cfg.warmup or step < cfg.warmup:
        return lr
    done = min(1.0, (step - cfg.warmup) / (cfg.decay_steps - cfg.warmup))
    return cfg.min_lr + (cfg.lr - cfg.min_lr) * 0.5 * (1.0 + math.cos(math.pi * done))


def set_learning_rate(optim: torch.optim.Optimizer, lr: float) -> None:
    for group in optim.param_groups:
        group["lr"] = lr
