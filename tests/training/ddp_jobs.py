"""A torchrun worker for tests/training/test_torchrun.py: several ``neural-engine train``
runs in one process group, with what each rank did written down.

Usage: ``torchrun --nproc-per-node 2 tests/training/ddp_jobs.py JOBS.json LOG_DIR``.
JOBS.json is a list of ``{"argv": [...], "kill_rank": r, "kill_at": k}``: the CLI
arguments of one run, and optionally a rank that receives SIGTERM after step ``k`` (a
kill, as a time limit or Ctrl-C sends it). Per rank r it writes ``LOG_DIR/writes-r``
(every weights or checkpoint file the rank wrote) and ``LOG_DIR/seeds-r`` (every world
and agent seed its data streams drew).
"""

import json
import os
import signal
import sys
from pathlib import Path

from neural_engine.cli.main import main
from neural_engine.model import weights
from neural_engine.data import clips
from neural_engine.training import checkpoint, distributed, trainer

jobs = json.loads(Path(sys.argv[1]).read_text())
log = Path(sys.argv[2])
rank = int(os.environ["RANK"])


def _note(name: str, line: str) -> None:
    with open(log / f"{name}-{rank}", "a") as f:
        f.write(line + "\n")


def _writing(save):
    def atomic_save(tensors, path, metadata):
        _note("writes", str(path))
        return save(tensors, path, metadata)
    return atomic_save


weights.atomic_save = _writing(weights.atomic_save)
checkpoint.atomic_save = _writing(checkpoint.atomic_save)
_episode_seed = clips.episode_seed


def episode_seed(*args):
    value = _episode_seed(*args)
    _note("seeds", str(value))
    return value


clips.episode_seed = episode_seed
_run = trainer.run
job: dict = {}


def run(stage, folder, schedule, env, *args, **kwargs):
    step_of = stage.train_step

    def train_step(step):
        out = step_of(step)
        if env.rank == job.get("kill_rank") and step + 1 == job.get("kill_at"):
            os.kill(os.getpid(), signal.SIGTERM)
        return out

    stage.train_step = train_step
    return _run(stage, folder, schedule, env, *args, **kwargs)


trainer.run = run
code = 0
for job in jobs:
    code = main(job["argv"])
    if code:
        break
# as the command's own entry point does: leave without the interpreter's teardown, in
# which gloo's threads can abort a rank that had finished ("terminate called without an
# active exception", exit -6)
distributed.exit_rank(code)
sys.exit(code)
