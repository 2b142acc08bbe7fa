"""The evaluation report: a Markdown page with a table per sampler, plots and a video.

Written into one folder: ``report.md``, ``psnr_vs_horizon.png``, ``drift_vs_time.png``
and ``side_by_side.mp4`` (simulator | model, rolling sampler, first scripted case, or a
PNG sheet where PyAV is missing). The page names the machine and the weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from neural_engine.video import write_video


def public(report: dict) -> dict:
    """The report without its in-memory samples (what goes to JSON)."""
    return {k: v for k, v in report.items() if not k.startswith("_")}


def video_case(report: dict) -> int:
    """Index of the case shown side by side: the first scripted one."""
    return next((i for i, c in enumerate(report["cases"]) if not c.startswith("agent")), 0)


def video_pair(report: dict) -> tuple[str, str, torch.Tensor, torch.Tensor] | None:
    """(case, sampler, truth (T, H, W, 3), generated (T, H, W, 3)) for the video, if kept."""
    samples, gt = report.get("_samples", {}), report.get("_truth")
    if gt is None or not samples:
        return None
    name = "rolling" if "rolling" in samples else next(iter(samples))
    index = video_case(report)
    gen = samples[name][index]
    return report["cases"][index], name, gt[index][:len(gen)], gen


def save_samples(report: dict, path: Path, seconds: float, rate: int) -> Path | None:
    """The video's generated frames (first ``seconds``) as safetensors, so that a report
    can be drawn on another machine (the truth is re-simulated there from the seed)."""
    from safetensors.torch import save_file

    pair = video_pair(report)
    if pair is None:
        return None
    case, sampler, _, gen = pair
    save_file({"frames": gen[:round(seconds * rate)].contiguous()}, str(path),
              metadata={"case": case, "sampler": sampler})
    return path


def load_samples(report: dict, path: Path, game) -> None:
    """Put saved video frames and their re-simulated truth back into ``report``."""
    from safetensors import SafetensorError, safe_open

    from neural_engine.errors import EngineError
    from neural_engine.evaluation.cases import load_cases, materialize

    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            frames = f.get_tensor("frames")
    except (SafetensorError, OSError, KeyError) as error:
        raise EngineError(f"not a samples file: {error}", where=str(path)) from error
    if meta.get("case") not in report["cases"] or frames.dtype != torch.uint8:
        raise EngineError("samples do not belong to this report", where=str(path))
    index = report["cases"].index(meta["case"])
    cases, folder = load_cases(game)
    replay = materialize(game, cases, folder, frames.shape[0], only=index + 1)
    truth = torch.zeros(len(report["cases"]), *replay.truth.shape[1:], dtype=torch.uint8)
    truth[index] = replay.truth[index]
    gen = torch.zeros_like(truth)
    gen[index] = frames
    report["_truth"], report["_samples"] = truth, {meta.get("sampler", "rolling"): gen}


def _f(value, fmt="{:.2f}") -> str:
    return "–" if value is None else fmt.format(value)


def write_report(report: dict, folder: Path, weights: str, rate: int) -> Path:
    from neural_engine.evaluation.plot import line_chart   # pygame: only for drawing

    folder.mkdir(parents=True, exist_ok=True)
    results = report["results"]
    curves = {r["sampler"]: (list(range(1, len(r["psnr_curve"]) + 1)), r["psnr_curve"])
              for r in results}
    line_chart(folder / "psnr_vs_horizon.png", curves, "PSNR against the simulator",
               "seconds into the rollout", "PSNR (dB), mean over each second")
    drift = {r["sampler"]: (list(range(1, len(r["drift_per_second"]) + 1)),
                            r["drift_per_second"]) for r in results}
    truth = report["truth_drift"]["drift_per_second"]
    drift["simulator"] = (list(range(1, len(truth) + 1)), truth)
    line_chart(folder / "drift_vs_time.png", drift, "Drift: distance to the nearest real frame",
               "seconds into the rollout", "feature distance (lower is better)")
    video = None
    pair = video_pair(report)
    if pair is not None:
        side = torch.cat(pair[2:], 2).numpy()                             # (T, H, 2W, 3)
        video = write_video(folder / "side_by_side.mp4", side, fps=rate)
    elif (folder / "side_by_side.mp4").is_file():
        video = folder / "side_by_side.mp4"
    settings = report["settings"]
    lines = [
        f"# Evaluation: {report['game']}",
        "",
        f"- weights: `{weights}`",
        f"- machine: {report['machine']} (device `{report['device']}`, {report['dtype']}, "
        f"torch {report['torch']})",
        f"- cases: {', '.join(report['cases'])} (held-out seeds, "
        f"`games/{report['game']}/eval/cases.toml`); fidelity over {settings['seconds']:g} s, "
        f"drift over {settings['drift_seconds']:g} s on {', '.join(report['drift_cases'])}",
        "- metrics are defined in `docs/evaluation.md`",
        "",
        "| sampler | steps/frame | PSNR 1 s | 2 s | 5 s | 10 s | 30 s | PSNR first 2 s | "
        "SSIM first 2 s | ΔDrift | drift last/first min | turn acc. | move acc. | "
        "latency ticks (plain / late) | ms/tick (streams) |",
        "|" + "---|" * 15,
    ]
    for r in results:
        cfg = r["config"]
        ps = [_f(r["psnr"].get(f"{h}s")) for h in (1, 2, 5, 10, 30)]
        lines.append(
            f"| {r['sampler']} | {cfg['window'] * cfg['steps_per_tick']} | " + " | ".join(ps)
            + f" | {_f(r['psnr_first_2s'])} | {_f(r['ssim_first_2s'], '{:.3f}')} | "
            f"{_f(r['delta_drift'], '{:.3f}')} | "
            f"{_f(r['drift_ratio_last_vs_first_minute'], '{:.3f}')} | "
            f"{_f(r['turn_accuracy'], '{:.3f}')} | {_f(r['move_accuracy'], '{:.3f}')} | "
            f"{_f(r['latency_ticks'], '{}')} / {_f(r['latency_ticks_late_binding'], '{}')} | "
            f"{r['ms_per_tick']:.1f} ({r['streams']}) |")
    t = report["truth_drift"]
    probe = report.get("truth_probe_accuracy")
    lines += [
        "",
        f"Simulator frames under the same actions: ΔDrift {t['delta_drift']:.3f}, drift "
        f"per minute {', '.join(f'{v:.3f}' for v in t['drift_per_minute'])}"
        + (f"; probe on true frames: turn {probe['turn']:.3f}, move {probe['move']:.3f}"
           if probe else ""),
        "",
        "![PSNR against the simulator](psnr_vs_horizon.png)",
        "",
        "![drift over time](drift_vs_time.png)",
        "",
    ]
    if video is not None:
        lines.append(f"Side by side (simulator | model): [{video.name}]({video.name})")
    if report.get("notes"):
        lines += ["", "Notes:"] + [f"- {note}" for note in report["notes"]]
    path = folder / "report.md"
    path.write_text("\n".join(lines) + "\n")
    (folder / "report.json").write_text(json.dumps(public(report), indent=2) + "\n")
    return path
