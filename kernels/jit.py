"""Where Triton can run, and compiling kernel bodies on first use.

Kernel bodies in this package are plain Python functions written in Triton's language;
``compiled(body)`` turns one into a launchable kernel the first time it is needed, so
importing a kernel module costs no compilation. Triton's compiler runs them on CUDA
tensors; its CPU interpreter (``TRITON_INTERPRET=1``) on CPU tensors. The variable must
be set before triton is first imported in the process: Triton decorates its own library
functions then, in one mode or the other (the tests run the interpreter in a
subprocess for that reason).

``Launch`` is one kernel call with its arguments worked out (what the public functions
build, then run); ``compile_for`` compiles such a call for a GPU architecture without a
GPU (Triton ships its own ptxas), which the tests use to check that every variant
builds for the H100 and the lead can use to read the PTX or register counts.

Importing this module never imports Triton; the first question about it does.
This module knows nothing about what the kernels compute.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

_TRITON: Any = None          # the triton module, False once an import failed
_KERNELS: dict[Callable, Any] = {}


def _triton():
    global _TRITON
    if _TRITON is None:
        try:
            _TRITON = importlib.import_module("triton")
            importlib.import_module("triton.language")
        except ImportError:
            _TRITON = False
    return _TRITON or None


def triton_importable() -> bool:
    return _triton() is not None


def interpreting() -> bool:
    """Whether Triton runs kernels in its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def available() -> bool:
    """Triton can run here: it imports, and there is a CUDA device or the interpreter."""
    return triton_importable() and (torch.cuda.is_available() or interpreting())


def require() -> None:
    """Refuse, with the reason, to run a kernel where triton does not import."""
    if _triton() is None:
        raise ImportError("the Triton kernels need the triton package (on a machine with "
                          "a CUDA GPU, or with TRITON_INTERPRET=1 for the CPU interpreter)")


def compiled(body: Callable) -> Any:
    """``triton.jit(body)``, made once per body."""
    require()
    if body not in _KERNELS:
        _KERNELS[body] = _triton().jit(body)
    return _KERNELS[body]


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


@dataclass
class Launch:
    """One kernel call: body, grid, positional arguments, compile-time constants."""

    body: Callable
    grid: tuple[int, ...]
    args: tuple
    constants: dict[str, Any] = field(default_factory=dict)
    num_warps: int = 4

    def run(self) -> None:
        compiled(self.body)[self.grid](*self.args, **self.constants, num_warps=self.num_warps)


_TYPES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16",
          torch.int64: "i64", torch.int32: "i32", torch.int16: "i16", torch.int8: "i8",
          torch.uint8: "u8", torch.bool: "i1"}


def compile_for(launch: Launch, arch: int = 90) -> Any:
    """Compile a launch's kernel for CUDA compute capability ``arch`` (no GPU needed).

    Arguments are typed as Triton's launcher would type them (tensors by dtype, ints as
    i32 or i64, floats as fp32) and marked 16-divisible where they are, so the code is
    what the GPU would run. Returns Triton's compiled kernel (``.asm["ptx"]``,
    ``.asm["cubin"]``, ``.metadata``).
    """
    triton = _triton()
    if triton is None:
        raise ImportError("compile_for needs the triton package")
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    fn = triton.runtime.jit.JITFunction(launch.body)
    names = [n for n in fn.arg_names if n not in launch.constants]
    signature, attrs = {}, {}
    for index, (name, arg) in enumerate(zip(names, launch.args)):
        if isinstance(arg, torch.Tensor):
            signature[name] = "*" + _TYPES[arg.dtype]
            divisible = arg.data_ptr() % 16 == 0
        elif isinstance(arg, bool):
            signature[name], divisible = "i1", False
        elif isinstance(arg, int):
            signature[name] = "i32" if -2**31 <= arg < 2**31 else "i64"
            divisible = arg % 16 == 0
        else:
            signature[name], divisible = "fp32", False
        if divisible:
            attrs[(fn.arg_names.index(name),)] = [["tt.divisibility", 16]]
    for name in launch.constants:
        signature[name] = "constexpr"
    signature = {n: signature[n] for n in fn.arg_names}
    source = ASTSource(fn, signature, constexprs=dict(launch.constants), attrs=attrs)
    return triton.compile(source, target=GPUTarget("cuda", arch, 32),
                          options={"num_warps": launch.num_warps})
