"""Every stage under ``torchrun --nproc-per-node 2`` on the CPU (gloo): it trains, each
rank simulates its own worlds, rank 0 alone writes files, and a run killed and resumed
ends with exactly the weights of a run that was never interrupted.

Two torchrun launches serve all tests (each start costs three processes importing
torch): the first trains ae, rolling and the killed halves of a teacher and a probe
run; the second, in fresh processes, resumes those two and trains them uninterrupted
beside.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("ddp_jobs.py")
QUIET = ["--quiet", "--log-every", "1", "--eval-every", "10000", "--seed", "5"]
STAGES = {
    "ae": ["--set", 'size="tiny"', "--set", "batch=2", "--set", "pool=2", "--set",
           "episode_ticks=4", "--set", "eval_worlds=1"],
    "teacher": ["--set", 'size="tiny"', "--set", "batch=2", "--set", "pool=2", "--set",
                "episode_ticks=26", "--set", 'eval_profile="smoke"', "--set", "eval_steps=1",
                "--set", "compile=false"],
    "rolling": ["--set", "batch=2", "--set", "pool=2", "--set", "rollout_max=6", "--set",
                'eval_profile="smoke"', "--set", "critic_steps=2"],
    "probe": ["--set", "width=4", "--set", "batch=2", "--set", "pool=2", "--set", "clip_len=3",
              "--set", "eval_worlds=2"],
}


def _torchrun(jobs: list[dict], folder: Path, log: Path) -> None:
    log.mkdir(parents=True, exist_ok=True)
    spec = folder / f"jobs-{log.name}.json"
    spec.write_text(json.dumps(jobs))
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1",
               NCCL_NVLS_ENABLE="0", TORCH_SYMM_MEM_DISABLE_MULTICAST="1",
               NVSHMEM_DISABLE_NVLS="1")
    env.pop("WORLD_SIZE", None)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node", "2", str(WORKER), str(spec), str(log)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _job(stage: str, run: Path, steps: int, weights: Path, kill_at: int | None = None) -> dict:
    argv = ["train", stage, "--game", "maze", "--run-dir", str(run), "--steps", str(steps),
            *QUIET, *STAGES[stage]]
    if stage == "teacher":
        argv += ["--ae", str(weights)]
    if stage == "rolling":
        argv += ["--teacher", str(weights)]
    job = {"argv": argv}
    if kill_at is not None:
        job |= {"kill_rank": 1, "kill_at": kill_at}
    return job


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_weights):
    root = tmp_path_factory.mktemp("torchrun")
    first = [_job("ae", root / "ae", 2, tiny_weights),
             _job("rolling", root / "rolling", 2, tiny_weights),
             _job("teacher", root / "teacher-cut", 4, tiny_weights, kill_at=2),
             _job("probe", root / "probe-cut", 4, tiny_weights, kill_at=2)]
    _torchrun(first, root, root / "log-first")
    # what the killed halves left, before the resume overwrites it
    cut = {stage: _tensors(root / f"{stage}-cut" / "checkpoint.safetensors")[1]
           for stage in ("teacher", "probe")}
    second = [_job("teacher", root / "teacher-cut", 4, tiny_weights),
              _job("teacher", root / "teacher-whole", 4, tiny_weights),
              _job("probe", root / "probe-cut", 4, tiny_weights),
              _job("probe", root / "probe-whole", 4, tiny_weights)]
    _torchrun(second, root, root / "log-second")
    return root, cut


def _tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    with safe_open(str(path), framework="pt") as f:
        return {n: f.get_tensor(n) for n in f.keys()}, json.loads(f.metadata()["meta"])


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_every_stage_trains_on_two_ranks(runs):
    root, _ = runs
    assert (root / "ae" / "autoencoder.safetensors").is_file()
    assert (root / "rolling" / "student.safetensors").is_file()
    for stage in ("ae", "rolling"):
        tensors, meta = _tensors(root / stage / "checkpoint.safetensors")
        assert meta["step"] == 2 and meta["world"] == 2 and len(meta["ranks"]) == 2
        assert {"rng.rank0.cpu", "rng.rank1.cpu"} <= set(tensors)
        rows = [json.loads(line) for line in _lines(root / stage / "metrics.jsonl")]
        assert [r["step"] for r in rows if r["kind"] == "train"] == [1, 2]
    _, rolling = _tensors(root / "rolling" / "checkpoint.safetensors")
    # the ranks drew their own rollout lengths: their random states differ
    assert rolling["ranks"][0]["rng"] != rolling["ranks"][1]["rng"]


def test_rank_zero_alone_writes_checkpoints_and_weights(runs):
    root, _ = runs
    for log in ("log-first", "log-second"):
        assert _lines(root / log / "writes-1") == []
        written = _lines(root / log / "writes-0")
        assert any(w.endswith("checkpoint.safetensors") for w in written)
    first = _lines(root / "log-first" / "writes-0")
    # the killed runs wrote their checkpoint and no product
    assert not any("-cut" in w and not w.endswith("checkpoint.safetensors") for w in first)
    assert not list(root.glob("*/*.tmp"))


def test_ranks_simulate_disjoint_worlds(runs):
    root, _ = runs
    seeds = [set(_lines(root / "log-first" / f"seeds-{r}")) for r in (0, 1)]
    assert seeds[0] and seeds[1] and not seeds[0] & seeds[1]


@pytest.mark.parametrize("stage", ["teacher", "probe"])
def test_a_killed_and_resumed_run_matches_an_uninterrupted_one(runs, stage):
    root, cut = runs
    assert cut[stage]["step"] == 2        # rank 1 was killed after step 2; both stopped there
    resumed, meta = _tensors(root / f"{stage}-cut" / "checkpoint.safetensors")
    whole, whole_meta = _tensors(root / f"{stage}-whole" / "checkpoint.safetensors")
    assert meta["step"] == whole_meta["step"] == 4
    assert meta["ranks"] == whole_meta["ranks"]
    assert resumed.keys() == whole.keys()
    for name in resumed:                  # weights, optimizer state, every rank's RNG
        assert torch.equal(resumed[name], whole[name]), name
    rows = [json.loads(line) for line in _lines(root / f"{stage}-cut" / "metrics.jsonl")]
    assert [r["step"] for r in rows if r["kind"] == "train"] == [1, 2, 3, 4]


def test_the_training_benchmark_reports_every_rank(tmp_path):
    out = tmp_path / "bench.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    env.pop("WORLD_SIZE", None)
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "neural_engine.cli.main", "bench", "--train", "probe", "--train-steps", "2",
         "--train-warmup", "1", "--train-profile", "0", "--json", str(out),
         *STAGES["probe"]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    row = json.loads(out.read_text())["rows"][0]
    assert row["world"] == 2 and [r["rank"] for r in row["ranks"]] == [0, 1]
    assert row["frames_per_s_total"] == pytest.approx(2 * row["frames_per_s_per_gpu"])
    assert 0.0 <= row["sync_share"] < 1.0
    assert all(r["step_ms_no_sync"] > 0 for r in row["ranks"])
    assert done.stdout.count("frames/s in total") == 1          # rank 0 alone reports
