"""Device plumbing of the streaming sampler: staged host-to-device copies and CUDA graphs.

``StagedCopy`` sends the host's per-pass plan (metadata, noise levels) into fixed device
tensors without a race; ``CudaGraphPass`` captures a pass once and replays it. Neither
knows what the pass computes.
"""

from __future__ import annotations

import numpy as np
import torch


class StagedCopy:
    """Host arrays into one fixed device tensor, asynchronously and without a race.

    A ring of pinned staging buffers: each is rewritten only after the copy that last
    read it has finished, so the host may run ahead of the GPU by a few passes.
    """

    def __init__(self, target: torch.Tensor, slots: int = 4):
        self.target = target
        self.cuda = target.device.type == "cuda"
        count = slots if self.cuda else 1
        self.host = [torch.zeros(target.shape, dtype=target.dtype, pin_memory=self.cuda)
                     for _ in range(count)]
        # one event per buffer, made once (waiting on one never recorded returns at once)
        self.events = [torch.cuda.Event() for _ in range(count)] if self.cuda else []
        self.next = 0

    def __call__(self, values: np.ndarray) -> None:
        """Send ``values`` (the target's shape) to the target, in stream order."""
        i = self.next
        self.next = (i + 1) % len(self.host)
        if self.cuda:
            self.events[i].synchronize()
        self.host[i].numpy()[...] = values
        self.target.copy_(self.host[i], non_blocking=self.cuda)
        if self.cuda:
            self.events[i].record()


class CudaGraphPass:
    """A captured ``_pass``: warm up on a side stream, capture, then replay."""

    def __init__(self, fn, device: torch.device, warmup: int = 3):
        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream), torch.no_grad():
            for _ in range(warmup):
                fn()
        torch.cuda.current_stream(device).wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), torch.no_grad():
            fn()

    def replay(self) -> None:
        self.graph.replay()
