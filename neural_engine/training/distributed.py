"""Training on several processes of one host under ``torchrun``: the process group and
the few collectives the training loop needs.

Each process (rank) trains on its own data stream; DistributedDataParallel averages the
gradients of every trained module (``wrap``), so the weights stay equal on all ranks.
Beside the training's own group (NCCL on GPUs) there is a *control* group on gloo: the
loop's per-step agreement (stop now? checkpoint now?), the gathering of every rank's
data position and random state for the checkpoint, and the barrier at which the other
ranks wait while rank 0 evaluates. Its collectives run on the host, so agreeing on a
flag every step never waits for the GPU's queue of work.

NVLink multicast stays off (NCCL's NVLS, symmetric memory's and NVSHMEM's multicast):
the lent machines do not support it, and nothing here needs it. ``init_distributed``
sets the variables before any process group is made, so processes this one starts
inherit them; ``MULTICAST_OFF`` is what every torchrun command also sets.

It knows nothing about stages, checkpoints' layout or what is trained.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from dataclasses import dataclass, field
from datetime import timedelta

import torch
import torch.distributed as dist

MULTICAST_OFF = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1",
                 "NVSHMEM_DISABLE_NVLS": "1"}
# how long the other ranks wait for rank 0 (an evaluation, the final export)
WAIT = timedelta(minutes=60)


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    control: object = None                 # the gloo group (None: the default group)
    wrapped: list = field(default_factory=list)    # the DDP modules ``wrap`` made

    @property
    def main(self) -> bool:
        return self.rank == 0


def multicast_off() -> None:
    """Set the variables of ``MULTICAST_OFF`` unless the environment already has them."""
    for key, value in MULTICAST_OFF.items():
        os.environ.setdefault(key, value)


_joined: Distributed | None = None


def init_distributed() -> Distributed:
    """Join the torchrun process group when launched by torchrun; else one process.
    A process that has joined already (several runs in one process) stays in its group."""
    global _joined
    multicast_off()
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) == 1:
        return Distributed()
    if _joined is not None and dist.is_initialized():
        return Distributed(_joined.rank, _joined.world, _joined.local_rank, _joined.control)
    local = int(os.environ.get("LOCAL_RANK", 0))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
        dist.init_process_group("nccl")
        control = dist.new_group(backend="gloo", timeout=WAIT)
    else:
        dist.init_process_group("gloo", timeout=WAIT)
        control = None
    _joined = Distributed(dist.get_rank(), dist.get_world_size(), local, control)
    atexit.register(_leave)
    return Distributed(_joined.rank, _joined.world, local, control)


def _leave() -> None:
    """Destroy the process groups before the interpreter exits: gloo's threads still
    running at exit abort the process ("terminate called without an active exception",
    exit -6), which torchrun reports as a failed rank."""
    if dist.is_initialized():
        dist.destroy_process_group()


def exit_rank(code: int) -> None:
    """End a torchrun rank with ``code`` once its command has returned: the process
    groups destroyed, the output flushed, and no interpreter teardown. Gloo's threads
    can outlive ``destroy_process_group`` (DistributedDataParallel keeps its group
    alive until collected) and abort the process while the interpreter tears down;
    torchrun then reports a rank that had finished as failed. Returns at once when this
    process never joined a group."""
    if _joined is None:
        return
    _leave()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def wrap(module: torch.nn.Module, env: Distributed) -> torch.nn.Module:
    """DistributedDataParallel around a trainable module when there are several ranks."""
    if env.world == 1:
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [env.local_rank] if torch.cuda.is_available() else None
    ddp = DistributedDataParallel(module, device_ids=ids)
    env.wrapped.append(ddp)
    return ddp


def distinct_streams(env: Distributed) -> None:
    """Give every rank but 0 its own torch random stream (noise levels, noise, dropout).

    Stages seed torch once, so that every rank builds the same initial weights; after
    that, equal streams would draw the same noise on every rank. Rank 0 keeps its
    stream, so one process trains as it always did.
    """
    if env.rank:
        torch.manual_seed(torch.initial_seed() + 1_000_003 * env.rank)


def agree(flags: list[bool], env: Distributed) -> list[bool]:
    """Each flag true on every rank when it is true on any (one host round trip)."""
    if env.world == 1:
        return flags
    t = torch.tensor([float(f) for f in flags])
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=env.control)
    return [bool(v) for v in t.tolist()]


def gather(value, env: Distributed) -> list:
    """Every rank's ``value`` (picklable), in rank order, on every rank."""
    if env.world == 1:
        return [value]
    out = [None] * env.world
    dist.all_gather_object(out, value, group=env.control)
    return out


def barrier(env: Distributed) -> None:
    """Wait until every rank arrives (the others wait for rank 0 up to ``WAIT``)."""
    if env.world > 1:
        dist.barrier(group=env.control)


def no_sync(env: Distributed):
    """A context in which the wrapped modules skip their gradient all-reduce (for
    measuring what the all-reduce costs; training never uses it)."""
    stack = contextlib.ExitStack()
    for module in env.wrapped:
        stack.enter_context(module.no_sync())
    return stack
