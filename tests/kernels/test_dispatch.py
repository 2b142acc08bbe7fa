"""The dispatch point: which backend runs, how tests override it, and that the CPU
always gets the PyTorch reference unless Triton's interpreter is asked for."""

import subprocess
import sys

import pytest
import torch

import neural_engine_kernels as kernels
from neural_engine_kernels.adaln import (gated_residual_layernorm_reference,
                                         modulated_layernorm_reference)
from neural_engine_kernels.attention import stream_attention_reference
from neural_engine_kernels.rope import norm_rotate_reference


def test_backend_from_use_then_environment_then_auto(monkeypatch):
    monkeypatch.delenv("KERNELS_BACKEND", raising=False)
    assert kernels.backend() == "auto"
    monkeypatch.setenv("KERNELS_BACKEND", "reference")
    assert kernels.backend() == "reference"
    with kernels.use("auto"):
        assert kernels.backend() == "auto"
        with kernels.use("reference"):
            assert kernels.backend() == "reference"
        assert kernels.backend() == "auto"
    assert kernels.backend() == "reference"
    monkeypatch.setenv("KERNELS_BACKEND", "cuda")
    with pytest.raises(ValueError, match="KERNELS_BACKEND='cuda'"):
        kernels.backend()
    with pytest.raises(ValueError, match="unknown kernels backend"):
        with kernels.use("fast"):
            pass


def test_cpu_tensors_take_the_reference_even_with_the_interpreter_on(monkeypatch):
    monkeypatch.delenv("KERNELS_BACKEND", raising=False)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    x = torch.zeros(1)
    assert not kernels.uses_triton(x)
    with kernels.use("reference"):
        assert not kernels.uses_triton(x)


def test_forcing_triton_on_cpu_without_the_interpreter_is_refused(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with kernels.use("triton"), pytest.raises(RuntimeError, match="triton"):
        kernels.uses_triton(torch.zeros(1))


def test_available_follows_triton_and_the_device(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert kernels.available() == kernels.triton_importable()
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    assert kernels.available() == (kernels.triton_importable() and torch.cuda.is_available())


def test_dispatch_on_cpu_returns_the_reference(attention_inputs):
    torch.manual_seed(0)
    a = attention_inputs(batch=2, per_stream=True)
    assert torch.equal(kernels.stream_attention(**a), stream_attention_reference(**a))

    x, h = torch.randn(2, 3, 4, 16), torch.randn(2, 3, 4, 16)
    shift, scale, gate = torch.randn(2, 3, 3, 16).unsqueeze(3).unbind(2)
    assert torch.equal(kernels.modulated_layernorm(x, shift, scale),
                       modulated_layernorm_reference(x, shift, scale))
    for got, want in zip(kernels.gated_residual_layernorm(x, gate, h, shift, scale),
                         gated_residual_layernorm_reference(x, gate, h, shift, scale)):
        assert torch.equal(got, want)

    q, w = torch.randn(2, 2, 8, 32), torch.randn(32)
    cos, sin = torch.randn(8, 16), torch.randn(8, 16)
    assert torch.equal(kernels.norm_rotate(q, w, cos, sin),
                       norm_rotate_reference(q, w, cos, sin))


def test_import_is_lazy_and_the_reference_runs_without_triton():
    code = """
import sys
import torch
from neural_engine.model.dispatch import fused_module
kernels = fused_module()
assert kernels.__name__ == 'neural_engine_kernels', kernels.__name__
assert 'kernels' not in sys.modules, 'the engine imported a package called kernels'
assert 'triton' not in sys.modules, 'import kernels imported triton'
assert 'neural_engine_kernels.attention' not in sys.modules, 'the import ran a kernel module'
sys.modules['triton'] = None          # from here on, as if triton were not installed
assert not kernels.triton_importable() and not kernels.available()
q = torch.randn(1, 1, 8, 32)
kv = torch.randn(1, 1, 12, 32)
cos = torch.ones(12, 16)
out = kernels.stream_attention(q, kv, kv, cos, 0 * cos, torch.ones(2, 3, dtype=torch.bool), 4)
assert out.shape == q.shape
with kernels.use('triton'):
    try:
        kernels.stream_attention(q, kv, kv, cos, 0 * cos, torch.ones(2, 3), 4)
    except RuntimeError as e:
        assert 'triton package' in str(e)
    else:
        raise AssertionError('forced triton ran without triton')
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
