"""Every kernel variant the engine uses compiles for the H100 (sm_90) on a machine
without a GPU (Triton ships ptxas), spills no registers, and the hot attention puts
its products on Hopper's tensor cores (wgmma). Skipped without triton."""

import os
import subprocess
import tempfile

import pytest
import torch

from neural_engine_kernels import adaln, attention, jit, rope

triton = pytest.importorskip("triton")

CUOBJDUMP = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin",
                         "cuobjdump")


def sass(kernel) -> str | None:
    """The SASS of a compiled kernel, or None when cuobjdump is not at hand."""
    if not os.access(CUOBJDUMP, os.X_OK):
        return None
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(kernel.asm["cubin"])
        f.flush()
        done = subprocess.run([CUOBJDUMP, "-sass", f.name], capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else None


def check(launch: jit.Launch, tensor_cores: bool = False) -> None:
    kernel = jit.compile_for(launch, arch=90)
    if tensor_cores:
        assert "wgmma" in kernel.asm["ptx"], "attention products are not on wgmma"
    code = sass(kernel)
    if code is not None:
        assert "STL" not in code and "LDL" not in code, "registers spill to local memory"


@pytest.mark.parametrize("dtype, head_dim, tokens", [
    (torch.bfloat16, 64, 64), (torch.bfloat16, 128, 64), (torch.float16, 32, 64),
    (torch.float32, 64, 64), (torch.bfloat16, 64, 36)])
def test_attention_builds_for_sm90(dtype, head_dim, tokens):
    b, h, fq, fk = 2, 4, 5, 14
    q = torch.empty(b, h, fq * tokens, head_dim, dtype=dtype)
    k = torch.empty(b, h, fk * tokens, head_dim, dtype=dtype)
    cos = torch.empty(b, fk * tokens, head_dim // 2)
    mask = torch.empty(b, fq, fk, dtype=torch.bool)
    launch = attention.attention_launch(q, k, k, cos, cos, mask, tokens, None,
                                        torch.empty_like(q))
    check(launch, tensor_cores=dtype != torch.float32 and tokens % 64 == 0)


def test_adaln_and_norm_rotate_build_for_sm90():
    x = torch.empty(2, 5, 64, 256, dtype=torch.bfloat16)
    shift, scale, gate = torch.empty(2, 5, 3, 1, 256, dtype=torch.bfloat16).unbind(2)
    check(adaln.adaln_launch(x, None, None, shift, scale, 1e-6, None, torch.empty_like(x)))
    check(adaln.adaln_launch(x, gate, x, shift, scale, 1e-6, torch.empty_like(x),
                             torch.empty_like(x)))
    q = torch.empty(2, 4, 320, 64, dtype=torch.bfloat16)
    weight, cos = torch.empty(64, dtype=torch.bfloat16), torch.empty(2, 320, 32)
    check(rope.norm_rotate_launch(q, weight, cos, cos, 1e-6, torch.empty_like(q)))
    check(rope.norm_rotate_launch(q, weight, None, None, 1e-6, torch.empty_like(q)))
