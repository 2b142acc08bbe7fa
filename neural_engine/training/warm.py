"""Warm starts: an earlier denoiser's weights loaded into a new one.

The earlier configuration may lack optional parts the new one has (the predecessor
path, the refiner, the null action of classifier-free guidance); every other setting
must match, so each tensor it has fits. The parts it lacks keep the new model's values:
zero-initialised ones start closed, so the model answers as the earlier one did until
training opens them.
"""

from __future__ import annotations

from dataclasses import replace

from torch import nn

from neural_engine.errors import EngineError
from neural_engine.model.config import DenoiserConfig


def warm_start(denoiser: nn.Module, new: DenoiserConfig, start: nn.Module,
               old: DenoiserConfig, where: str) -> None:
    """Load ``start`` (configuration ``old``) into ``denoiser`` (configuration ``new``)."""
    if not old.refiner:            # the block count of an absent refiner does not matter
        old = replace(old, refiner_blocks=new.refiner_blocks)
    allowed = {replace(new, previous_frame=path, refiner=refiner, action_guidance=null)
               for path in {new.previous_frame, False} for refiner in {new.refiner, 0}
               for null in {new.action_guidance, False}}
    if old not in allowed:
        raise EngineError("--init weights have another denoiser configuration", where=where)
    denoiser.load_state_dict(start.state_dict(), strict=False)
