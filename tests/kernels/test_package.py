"""The kernels package's face: it chooses nothing (its functions always run the Triton
kernel), says what can run here, imports lazily, is never imported as ``kernels``, and
leaves the engine on its PyTorch path when triton is absent."""

import subprocess
import sys

import pytest
import torch

import neural_engine_kernels as kernels
from neural_engine_kernels import adaln, attention, rope


def test_without_triton_a_kernel_call_is_refused_with_the_reason(monkeypatch):
    monkeypatch.setattr(kernels.jit, "_TRITON", False)          # as if the import failed
    with pytest.raises(ImportError, match="need the triton package"):
        kernels.norm_rotate(torch.zeros(1, 1, 2, 32), torch.ones(32), None, None)


def test_the_package_holds_no_backend_switch():
    """The one switch is neural_engine.model.dispatch; nothing here to set or read."""
    for name in ("use", "backend", "uses_triton", "BACKENDS"):
        assert not hasattr(kernels, name), name


def test_available_follows_triton_and_the_device(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert kernels.available() == kernels.triton_importable()
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    assert kernels.available() == (kernels.triton_importable() and torch.cuda.is_available())


def test_each_function_runs_its_modules_triton_kernel(monkeypatch, attention_inputs):
    """The package's functions call the kernel modules' Triton functions with every
    argument, never their references (stubs record the calls: no triton needed)."""
    seen = []
    monkeypatch.setattr(kernels, "require", lambda: None)     # as if triton imported

    def stub(name):
        def run(*args):
            seen.append((name, args))
            return name
        return run

    for module, name in ((attention, "stream_attention"), (adaln, "modulated_layernorm"),
                         (adaln, "gated_residual_layernorm"), (rope, "norm_rotate")):
        monkeypatch.setattr(module, name, stub(name))
    a = attention_inputs()
    x, out = torch.zeros(1, 2, 4, 16), torch.empty(1, 2, 4, 16)
    assert kernels.stream_attention(**a, scale=0.5, out=out) == "stream_attention"
    assert kernels.modulated_layernorm(x, x, x, 1e-5, out) == "modulated_layernorm"
    assert kernels.gated_residual_layernorm(x, x, x, x, x, out_x=x) == "gated_residual_layernorm"
    assert kernels.norm_rotate(x, x, None, None) == "norm_rotate"
    names = [name for name, _ in seen]
    assert names == ["stream_attention", "modulated_layernorm", "gated_residual_layernorm",
                     "norm_rotate"]
    assert seen[0][1][-2:] == (0.5, out) and seen[1][1][-2:] == (1e-5, out)
    assert seen[2][1][-2] is x and seen[3][1][-2:] == (1e-6, None)


def test_import_is_lazy_and_without_triton_the_engine_keeps_to_pytorch():
    code = """
import sys
import torch
from neural_engine.errors import EngineError
from neural_engine.model import dispatch
kernels = dispatch.fused_module()
assert kernels.__name__ == 'neural_engine_kernels', kernels.__name__
assert 'kernels' not in sys.modules, 'the engine imported a package called kernels'
assert 'triton' not in sys.modules, 'import kernels imported triton'
assert 'neural_engine_kernels.attention' not in sys.modules, 'the import ran a kernel module'
sys.modules['triton'] = None          # from here on, as if triton were not installed
assert not kernels.triton_importable() and not kernels.available()
assert dispatch.resolve_backend('auto', torch.device('cuda')) == 'torch'
q = torch.randn(1, 1, 8, 32)
kv = torch.randn(1, 1, 12, 32)
cos = torch.ones(1, 12, 16)
mask = torch.ones(1, 2, 3, dtype=torch.bool)
out = dispatch.stream_attention(q, kv, kv, cos, 0 * cos, mask, 4, backend='triton')
assert out.shape == q.shape
try:
    kernels.stream_attention(q, kv, kv, cos, 0 * cos, mask, 4)
except ImportError as e:
    assert 'triton package' in str(e), e
else:
    raise AssertionError('a Triton kernel ran without triton')
try:
    with dispatch.forced('triton'):
        pass
except EngineError as e:
    assert 'cannot force the Triton kernels' in str(e), e
else:
    raise AssertionError('forcing Triton without triton was accepted')
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
