"""The scaling table and its commands, without launching anything."""

import argparse
import os

from neural_engine.training import distributed
from neural_engine.training.scaling import bench_command, markdown, shown


def _row(gpus, per_gpu, **more):
    return {"stage": "teacher", "size": "small", "overrides": "batch=32", "world": gpus,
            "frames_per_s_total": gpus * per_gpu, "frames_per_s_per_gpu": per_gpu,
            "step_ms_mean": 10.0, "profile": {}, "phases_ms": {"data": 1.0}, **more}


def test_efficiency_is_frames_per_gpu_against_one_gpu():
    ranks = [{"rank": r, "step_ms_mean": 11.0 + r, "nccl_ms": 2.0, "data_ms": 1.5}
             for r in range(8)]
    table = markdown([(1, _row(1, 1000.0)),
                      (8, _row(8, 920.0, ranks=ranks, sync_share=0.06,
                               straggler_spread=0.02))], "H200")
    one, eight = table.splitlines()[-2:]
    assert "| 1 | 1,000 | 1,000 | 100.0 % |" in one
    assert "| 8 | 7,360 | 920 | 92.0 % | 18.0 | 6.0 % | 2.0 | 2.0 % | 1.5 |" in eight


def test_every_command_runs_with_nvlink_multicast_off():
    args = argparse.Namespace(train="teacher", game="maze", size="small", set=["batch=32"],
                              variant=[], weights=None, device="cuda", train_steps=50,
                              train_warmup=20, train_profile=5)
    alone, four = bench_command(args, 1, "one.json"), bench_command(args, 4, "four.json")
    assert "torch.distributed.run" not in alone
    assert four[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "4"]
    line = shown(four)
    for key in ("NCCL_NVLS_ENABLE=0", "TORCH_SYMM_MEM_DISABLE_MULTICAST=1",
                "NVSHMEM_DISABLE_NVLS=1"):
        assert line.startswith(key) or f" {key} " in line


def test_the_distributed_init_turns_multicast_off_for_its_children(monkeypatch):
    for key in distributed.MULTICAST_OFF:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setenv("NCCL_NVLS_ENABLE", "0")        # a value already set is kept
    env = distributed.init_distributed()
    assert env.world == 1
    assert {k: os.environ[k] for k in distributed.MULTICAST_OFF} == distributed.MULTICAST_OFF


def test_no_code_creates_a_multicast_object():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    sources = [p for folder in ("neural_engine", "kernels", "games")
               for p in (root / folder).rglob("*.py")]
    assert sources and not [p for p in sources if "cuMulticast" in p.read_text()]
