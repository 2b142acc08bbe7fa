"""Weights stored in 8 bits: each matrix as int8 rows with one scale per output row.

Shipped weights share a 40 MiB budget across every game, so the largest tensors (the
weight matrices and convolution kernels) may be stored as int8 with a symmetric scale
per output row: ``w ≈ q · scale[row]``, ``q = round(w / scale)`` in [-127, 127],
``scale = max |w[row]| / 127``. Biases, norms and small tensors stay as they are. A
quantized tensor ``name`` is an I8 tensor of the parameter's shape beside a floating
tensor ``name + SCALE_SUFFIX`` of shape (rows,); loading multiplies them back out, so
the model in memory is an ordinary floating-point one and every runtime path is
unchanged. The header check (``neural_engine.model.header.tensor_problems``) accepts
either form for a floating tensor and nothing else.
"""

from __future__ import annotations

import torch

from neural_engine.model.header import SCALE_SUFFIX

# Smaller tensors gain too little to be worth the rounding.
MIN_ELEMENTS = 1024
LEVELS = 127


def quantizable(name: str, tensor: torch.Tensor, parameters: set[str]) -> bool:
    """Whether ``name`` is stored in 8 bits: a trained matrix or kernel, not a buffer."""
    return (name in parameters and tensor.is_floating_point() and tensor.dim() >= 2
            and tensor.numel() >= MIN_ELEMENTS)


def quantize(tensor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 values, float32 scale per row) of a floating tensor of 2 or more dims."""
    rows = tensor.detach().float().flatten(1)
    # float32 scales: a row of tiny weights would lose its precision in a float16 one
    scale = rows.abs().amax(1).clamp_min(1e-30) / LEVELS
    q = torch.round(rows / scale[:, None]).clamp(-LEVELS, LEVELS).to(torch.int8)
    return q.view(tensor.shape), scale


def dequantize(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The float32 tensor an int8 tensor and its row scales stand for."""
    shape = (-1,) + (1,) * (q.dim() - 1)
    return q.float() * scale.float().view(shape)


def quantize_state(state: dict[str, torch.Tensor], parameters: set[str],
                   dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The tensors to write: quantizable parameters in 8 bits, other floating tensors in
    ``dtype``, integer tensors as they are."""
    out = {}
    for name, tensor in state.items():
        if quantizable(name, tensor, parameters):
            out[name], out[name + SCALE_SUFFIX] = quantize(tensor)
        else:
            out[name] = tensor.to(dtype) if tensor.is_floating_point() else tensor
    return out


def read_tensors(handle, names) -> dict[str, torch.Tensor]:
    """``names`` read from an open safetensors file, 8-bit ones multiplied back out."""
    stored = set(handle.keys())
    tensors = {}
    for name in names:
        if name + SCALE_SUFFIX in stored:
            tensors[name] = dequantize(handle.get_tensor(name),
                                       handle.get_tensor(name + SCALE_SUFFIX))
        else:
            tensors[name] = handle.get_tensor(name)
    return tensors
