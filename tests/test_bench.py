"""The benchmark on the CPU with a tiny model: its structure and its arithmetic, not its times."""

import json

import pytest
import torch

from neural_engine.bench import (BenchSettings, bench_point, build_pool, machine_limits,
                                 markdown, targets, tick_cost)
from neural_engine.cli.main import main
from neural_engine.sampler.stream import SamplerConfig

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model(std=None)


def test_point_reports_every_variant_and_a_consistent_floor(model):
    limits = {"matmul_tflops": 1.0, "bandwidth_gbs": 100.0}
    settings = BenchSettings(ticks=5, warmup=1, variants=("eager", "graph", "triton"))
    row = bench_point(model, SamplerConfig(), 2, CPU, settings, limits, progress=lambda s: None)
    eager = row["variants"]["eager"]
    assert eager["tick_ms_p50"] <= eager["tick_ms_p99"]
    assert eager["ticks_per_s_total"] == pytest.approx(2 * eager["ticks_per_s"])
    assert eager["ticks_per_s"] == pytest.approx(1000 / eager["tick_ms_mean"])
    # on the CPU the host side is the whole tick; slow ticks are counted, some by the host
    assert eager["host_ms_p50"] == eager["tick_ms_p50"]
    assert eager["tick_ms_p99"] <= eager["tick_ms_max"]
    assert 0 <= eager["slow_ticks_host"] <= eager["slow_ticks"] <= 5
    # variants that cannot run here say why instead of stopping the others
    assert "CUDA" in row["variants"]["graph"]["error"]
    assert "error" in row["variants"]["triton"]
    compute = row["flops_per_tick"] / 1e12 * 1e3
    memory = row["bytes_per_tick"] / 100e9 * 1e3
    assert row["floor_ms"] == pytest.approx(max(compute, memory))
    assert eager["floor_fraction"] == pytest.approx(row["floor_ms"] / eager["tick_ms_mean"])
    assert row["best"] == "eager" and row["step_ms_eager"] == eager["tick_ms_p50"]


def test_flops_grow_with_the_streams_and_count_attention(model):
    cfg = SamplerConfig()
    costs = []
    for n in (1, 2):
        pool = build_pool(model, cfg, n, "eager", CPU, BenchSettings())
        actions = torch.zeros(n, 8)
        for _ in range(cfg.window):
            pool.step(actions)
        costs.append(tick_cost(pool, actions))
    assert costs[1]["flops"] == 2 * costs[0]["flops"]
    dn = model.config.denoiser
    attention = dn.depth * 4 * dn.heads * 5 * 16 * 14 * 16 * dn.head_dim   # Q·P, M·P
    assert costs[0]["flops"] > attention
    assert costs[1]["bytes"] > costs[0]["bytes"]


def test_machine_limits_are_positive():
    limits = machine_limits(CPU, torch.float32, repeats=2)
    assert limits["matmul_tflops"] > 0 and limits["bandwidth_gbs"] > 0


def test_targets_read_the_best_variant():
    def row(n, p50, p99):
        v = {"tick_ms_p50": p50, "tick_ms_p99": p99, "ticks_per_s": 1000 / p50}
        return {"window": 4, "ring": 8, "streams": n, "best": "graph",
                "ticks_per_s": 1000 / p50, "variants": {"graph": v}}
    found = targets([row(1, 1.0, 1.2), row(32, 30.0, 50.0), row(64, 40.0, 44.0)])
    assert [t["met"] for t in found] == [True, True, False]
    assert found[1]["value"] == 32


@pytest.mark.slow
def test_cli_writes_json_and_markdown(tmp_path):
    out, md = tmp_path / "bench.json", tmp_path / "bench.md"
    assert main(["bench", "--device", "cpu", "--size", "tiny", "--ticks", "3", "--warmup", "1",
                 "--streams", "1,2", "--no-latency", "--json", str(out),
                 "--markdown", str(md)]) == 0
    report = json.loads(out.read_text())
    assert [r["streams"] for r in report["rows"]] == [1, 2]
    assert list(report["rows"][0]["variants"]) == ["eager"]
    assert report["limits"]["matmul_tflops"] > 0
    assert md.read_text() == markdown(report)
    assert "| 4 | 8 | 2 | eager |" in md.read_text()


def test_a_point_without_a_floor_keeps_its_timings(model, monkeypatch):
    import neural_engine.bench as bench

    def broken(pool, actions):
        raise RuntimeError("no flop counter here")

    monkeypatch.setattr(bench, "tick_cost", broken)
    limits = {"matmul_tflops": 1.0, "bandwidth_gbs": 100.0}
    row = bench_point(model, SamplerConfig(), 1, CPU, BenchSettings(ticks=3, warmup=1,
                      variants=("eager",)), limits, progress=lambda s: None)
    assert row["floor_ms"] is None and "no flop counter" in row["floor_error"]
    assert row["variants"]["eager"]["tick_ms_p50"] > 0
    report = {"machine": "cpu", "game": "maze", "weights": "random", "dtype": "float32",
              "torch": torch.__version__, "ticks": 3, "warmup": 1, "timing": "test",
              "limits": {**limits, "matmul": "test"}, "rows": [row], "targets": []}
    assert "| - | - |" in markdown(report)
