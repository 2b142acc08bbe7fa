"""Weights in 8 bits: what is stored, what loading rebuilds, and what the header refuses."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from neural_engine.errors import EngineError
from neural_engine.model.header import SCALE_SUFFIX
from neural_engine.model.quantize import LEVELS, dequantize, quantize
from neural_engine.model.weights import check_weights, load_world_model, save_world_model


def test_each_row_is_rounded_against_its_own_largest_value():
    torch.manual_seed(0)
    w = torch.randn(64, 3, 3, 3) * torch.logspace(-3, 1, 64).view(-1, 1, 1, 1)
    q, scale = quantize(w)
    assert q.dtype == torch.int8 and q.shape == w.shape and scale.shape == (64,)
    assert q.abs().flatten(1).amax(1).eq(LEVELS).all()      # every row uses the full range
    back = dequantize(q, scale)
    # the error is at most half a step of the row's own scale (tiny rows stay accurate)
    step = scale.float().view(-1, 1, 1, 1)
    assert ((back - w).abs() <= 0.5 * step + 1e-7).all()
    assert not torch.equal(back, w)


def test_an_int8_file_holds_half_the_bytes_and_rebuilds_the_model(tmp_path, tiny_model):
    model = tiny_model(128, 128, 8)
    save_world_model(tmp_path / "f16.safetensors", model, dtype=torch.float16)
    save_world_model(tmp_path / "i8.safetensors", model, dtype=torch.float16, int8=True)
    f16 = (tmp_path / "f16.safetensors").stat().st_size
    i8 = (tmp_path / "i8.safetensors").stat().st_size
    assert i8 < 0.65 * f16          # (the tiny model has many small tensors kept in fp16)
    stored = load_file(tmp_path / "i8.safetensors")
    matrices = [n for n, t in stored.items() if t.dtype == torch.int8]
    assert matrices and all(n + SCALE_SUFFIX in stored for n in matrices)
    # biases and norms stay floating
    assert all(stored[n].dtype == torch.float16 for n, p in model.named_parameters()
               if p.dim() == 1)
    loaded = load_world_model(tmp_path / "i8.safetensors")
    for name, p in model.state_dict().items():
        q = loaded.state_dict()[name]
        if p.is_floating_point() and p.numel():
            assert (q - p).norm() <= 0.02 * p.norm() + 1e-6, name
    check_weights(tmp_path / "i8.safetensors")


@pytest.mark.parametrize("damage, message", [
    ("drop_scale", "without its ::scale"),
    ("scale_shape", "of shape"),
    ("nan_scale", "NaN"),
])
def test_a_damaged_int8_file_is_refused_naming_the_tensor(tmp_path, tiny_model, damage, message):
    model = tiny_model(128, 128, 8)
    path = tmp_path / "i8.safetensors"
    save_world_model(path, model, int8=True)
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    name = next(n[:-len(SCALE_SUFFIX)] for n in tensors if n.endswith(SCALE_SUFFIX))
    if damage == "drop_scale":
        del tensors[name + SCALE_SUFFIX]
    elif damage == "scale_shape":
        tensors[name + SCALE_SUFFIX] = tensors[name + SCALE_SUFFIX][:-1].clone()
    else:
        tensors[name + SCALE_SUFFIX][0] = float("nan")
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(EngineError, match=message) as err:
        load_world_model(path)
    assert str(path) in str(err.value)


def test_a_bias_stored_in_int8_is_refused(tmp_path, tiny_model):
    model = tiny_model(128, 128, 8)
    path = tmp_path / "w.safetensors"
    save_world_model(path, model)
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    name = next(n for n, p in model.named_parameters() if p.dim() == 1)
    tensors[name] = tensors[name].to(torch.int8)
    tensors[name + SCALE_SUFFIX] = torch.ones(tensors[name].shape[0], dtype=torch.float16)
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(EngineError, match=f"tensor {name} is I8"):
        check_weights(path)
