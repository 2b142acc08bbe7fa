"""The world model for play on a CPU: the denoiser's linear layers with 8-bit weights.

On a CPU a tick is bound by the denoiser's matrix products (the linear layers of
attention, MLP and modulation). Dynamic 8-bit quantization stores those weights as
int8 with one scale per output row and multiplies with 8-bit integer kernels; the
activations are quantized on the fly. On the shipped maze weights the frames it
dreams stay within 46-47 dB PSNR of the fp32 model's and as close to the simulator
(docs/cpu_play.md has the numbers), for about 1.7x the tick rate on two cores.

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
