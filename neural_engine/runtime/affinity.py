"""Keep the streaming loop's host thread on one CPU core.

A graphed tick leaves the host little to do (about 0.3 ms at one stream: plans, two
staged copies, three graph replays), but the tick waits for it. On the lent H100 host
(16 cores, no CPU quota), about 2 % of ticks ran two to three times late. In each slow
tick every host phase took about ten times its usual time, the slow ticks came in bursts
a few milliseconds apart, and no garbage collection ran in them. With the thread pinned
to one core the slow ticks went away: at one stream p99 / p50 fell from 2.4 to 1.09 over
2,000 ticks. The likely cause is the scheduler moving the thread onto an idle core that
must wake and clock up first.

Pinning is for a GPU loop only. Threads started later inherit the mask, so on the CPU it
would squeeze torch's own worker threads onto one core.
"""

from __future__ import annotations

import os

import torch

from neural_engine.errors import EngineError


def pin_host_thread(spec: str, device: torch.device) -> int | None:
    """Pin the calling thread: ``spec`` is ``auto`` (on a CUDA device, the last core this
    process may use), ``off``, or a core number. Returns the core, or None if unpinned."""
    if spec == "off" or not hasattr(os, "sched_setaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))
    if spec == "auto":
        if device.type != "cuda" or len(cores) < 2:
            return None
        core = cores[-1]
    else:
        try:
            core = int(spec)
        except ValueError:
            raise EngineError(f"--pin-cpu takes auto, off or a core number, not {spec!r}"
                              ) from None
        if core not in cores:
            raise EngineError(f"CPU core {core} is not one this process may use "
                              f"(cores {cores[0]}–{cores[-1]})")
    os.sched_setaffinity(0, {core})
    return core
