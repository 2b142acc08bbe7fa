"""The world model for play on a CPU: the denoiser's linear layers with 8-bit weights.

On a CPU most of a tick is the denoiser's pass, much of it the matrix products of
its linear layers (attention, MLP, modulation). Dynamic 8-bit quantization stores
those weights as int8 with a scale per tensor and multiplies with 8-bit integer
kernels, the activations quantized on the fly: 1.1-1.2x the tick rate on two cores. On the shipped maze weights the frames it
dreams stay within 46-47 dB PSNR of the fp32 model's and as close to the simulator
(docs/hardening.md has the numbers and the tick rates).

``for_cpu_play`` converts the model's denoiser in place, or leaves it (and says why)
where the quantized kernels are not available. It knows nothing about samplers or
play; the caller decides when to use it (``cli.play`` on the CPU).
"""

from __future__ import annotations

import warnings

import torch

from neural_engine.model.world import WorldModel


def for_cpu_play(model: WorldModel) -> str | None:
    """Give ``model``'s denoiser 8-bit linear layers (in place); None, or why not."""
    if torch.backends.quantized.engine == "none":
        return "no quantized CPU kernels in this torch build"
    try:
        with warnings.catch_warnings():          # the eager API is marked deprecated
            warnings.simplefilter("ignore")
            model.denoiser = torch.ao.quantization.quantize_dynamic(
                model.denoiser, {torch.nn.Linear}, dtype=torch.qint8)
    except (AttributeError, RuntimeError) as exc:
        return f"8-bit weights are not available here ({exc})"
    return None
