"""The evaluation report: frames first, then the playability gates and what bounds them
(the ceilings), then every number.

Written into one folder: ``report.md``, ``report.json``, a contact sheet per sampler
(``contact-<sampler>.png``: for a still, a turning and a walking test, the simulator's
row over the sampler's at fixed times), ``psnr_vs_horizon.png``, ``drift_vs_time.png``
and ``side_by_side.mp4`` (simulator | model, default sampler, first scripted case, or a
PNG sheet where PyAV is missing). The page names the machine, the profile and the
weights. Frames can travel in a samples file, so a report evaluated on a machine
without pygame can be drawn on another.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from neural_engine.errors import EngineError
from neural_engine.evaluation.gates import PASS, UNMEASURED
from neural_engine.evaluation.settings import DEFAULT_SAMPLER
from neural_engine.video import write_png, write_video

GAP = 4                                   # pixels between the blocks of a contact sheet


def public(report: dict) -> dict:
    """The report without its in-memory frames (what goes to JSON)."""
    return {k: v for k, v in report.items() if not k.startswith("_")}


def video_case(report: dict) -> int:
    """Index of the case shown side by side: the first scripted one."""
    return next((i for i, c in enumerate(report["cases"]) if not c.startswith("agent")), 0)


def video_pair(report: dict) -> tuple[str, str, torch.Tensor, torch.Tensor] | None:
    """(case, sampler, truth (T, H, W, 3), generated (T, H, W, 3)) for the video, if kept."""
    samples, gt = report.get("_samples", {}), report.get("_truth")
    if gt is None or not samples:
        return None
    name = DEFAULT_SAMPLER if DEFAULT_SAMPLER in samples else next(iter(samples))
    index = video_case(report)
    gen = samples[name][index]
    return report["cases"][index], name, gt[index][:len(gen)], gen


def save_samples(report: dict, path: Path, seconds: float, rate: int) -> Path | None:
    """The video's generated frames (first ``seconds``) and every sampler's contact frames
    as safetensors, so that a report can be drawn on another machine (the video's truth
    is re-simulated there from the seed)."""
    from safetensors.torch import save_file

    tensors, meta = {}, {}
    pair = video_pair(report)
    if pair is not None:
        case, sampler, _, gen = pair
        tensors["frames"] = gen[:round(seconds * rate)].contiguous()
        meta |= {"case": case, "sampler": sampler}
    contact = {}
    for sampler, cases in report.get("_contact", {}).items():
        for name, c in cases.items():
            tensors[f"contact/{sampler}/{name}/generated"] = c["generated"].contiguous()
            tensors[f"contact/{sampler}/{name}/truth"] = c["truth"].contiguous()
            contact.setdefault(sampler, {})[name] = {"kind": c["kind"], "times": c["times"]}
    if not tensors:
        return None
    meta["contact"] = json.dumps(contact)
    save_file(tensors, str(path), metadata=meta)
    return path


def load_samples(report: dict, path: Path, game) -> None:
    """Put saved frames (and the video's re-simulated truth) back into ``report``."""
    from safetensors import SafetensorError, safe_open

    from neural_engine.evaluation.cases import load_cases, materialize

    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
            contact = json.loads(meta.get("contact", "{}"))
    except (SafetensorError, OSError, ValueError) as error:
        raise EngineError(f"not a samples file: {error}", where=str(path)) from error
    if any(t.dtype != torch.uint8 for t in tensors.values()):
        raise EngineError("samples must be 8-bit frames", where=str(path))
    report["_contact"] = {
        sampler: {name: info | {"generated": tensors[f"contact/{sampler}/{name}/generated"],
                                "truth": tensors[f"contact/{sampler}/{name}/truth"]}
                  for name, info in cases.items()}
        for sampler, cases in contact.items()}
    if "frames" not in tensors:
        return
    if meta.get("case") not in report["cases"]:
        raise EngineError("samples do not belong to this report", where=str(path))
    frames = tensors["frames"]
    index = report["cases"].index(meta["case"])
    cases, folder = load_cases(game)
    replay = materialize(game, cases, folder, frames.shape[0], only=index + 1)
    truth = torch.zeros(len(report["cases"]), *replay.truth.shape[1:], dtype=torch.uint8)
    truth[index] = replay.truth[index]
    gen = torch.zeros_like(truth)
    gen[index] = frames
    report["_truth"], report["_samples"] = truth, {meta.get("sampler", DEFAULT_SAMPLER): gen}


def contact_sheet(cases: dict) -> np.ndarray:
    """Blocks of two rows (truth over generated), one block per contact case, as one
    image; frames beyond a block's width stay dark."""
    blocks = [(c["truth"].numpy(), c["generated"].numpy()) for c in cases.values()]
    h, w = blocks[0][0].shape[1:3]
    columns = max(len(t) for t, _ in blocks)
    sheet = np.zeros((len(blocks) * (2 * h + GAP) - GAP, columns * (w + GAP) - GAP, 3), np.uint8)
    for b, rows in enumerate(blocks):
        for r, frames in enumerate(rows):
            top = b * (2 * h + GAP) + r * h
            for k, frame in enumerate(frames):
                sheet[top:top + h, k * (w + GAP):k * (w + GAP) + w] = frame
    return sheet


def _f(value, fmt="{:.2f}") -> str:
    return "–" if value is None else fmt.format(value)


def _mark(row: dict, fmt: str) -> str:
    if row["status"] == UNMEASURED:
        return "not measured"
    return f"{_f(row['value'], fmt)} {'pass' if row['status'] == PASS else '**FAIL**'}"


FORMATS = {"one_step_psnr": "{:.2f}", "stillness": "{:.2f}", "loop_closure": "{:.2f}",
           "beats_causal": "{:.3f}"}


def gates_table(report: dict) -> list[str]:
    """One row per gate (titles and rules as the evaluation judged them), the simulator's
    value, then each sampler's value with its mark."""
    results = report["results"]
    head = "| gate | pass | simulator | " + " | ".join(r["sampler"] for r in results) + " |"
    lines = [head, "|" + "---|" * (3 + len(results))]
    for gate in report["simulator"]["gates"]:
        fmt = FORMATS.get(gate["gate"], "{:.3f}")
        cells = [_f(gate["value"], fmt)]
        for r in results:
            row = next(g for g in r["gates"] if g["gate"] == gate["gate"])
            cells.append(_mark(row, fmt))
        lines.append(f"| {gate['title']} | {gate['rule']} | " + " | ".join(cells) + " |")
    return lines


CEILING_ROWS = (("autoencoder", "autoencoder: decode(encode(truth))"),
                ("posterior_mean", "denoiser's posterior mean (x0 at noise level 1)"),
                ("copy", "copy of the last true frame"))

CEILINGS_TEXT = (
    "What limits the one-step gates, on the same points. The posterior mean is the "
    "denoiser's own average of the next frames it thinks possible from the true context "
    "and actions: the best PSNR a sampler of this denoiser can expect on average (a "
    "sample is sharper and scores lower than the mean; the mean is blurred where the "
    "model is unsure). The autoencoder's numbers bound every model that uses this "
    "autoencoder: every frame a model shows comes out of its decoder, so none can expect "
    "to be closer to the truth or truer in sharpness than the decoder's reconstruction "
    "of the truth itself (a sharpness gate of 0.85 cannot pass if the reconstruction "
    "reads 0.85).")


def ceilings_table(report: dict) -> list[str]:
    """The ceilings (``ceilings.py``) beside each sampler's one step, as rows of
    PSNR, SSIM and sharpness against the true next frame; [] for a report without them."""
    bounds = report.get("ceilings")
    if not bounds:
        return []
    lines = [f"One step from {bounds['context_frames']} true context frames, the "
             f"{bounds['changing']} of {bounds['points']} points whose frame changes.", "",
             "| frame scored against the true next frame | PSNR (dB) | SSIM | sharpness |",
             "|---|---|---|---|"]
    rows = [(title, bounds[key]) for key, title in CEILING_ROWS]
    rows += [(f"{r['sampler']}: one sample", r["one_step"]) for r in report["results"]]
    for title, row in rows:
        lines.append(f"| {title} | {_f(row['psnr'])} | {_f(row['ssim'], '{:.3f}')} | "
                     f"{_f(row['sharpness'], '{:.3f}')} |")
    return lines + ["", CEILINGS_TEXT]


def _accuracies(acc: dict | None, axes: list[str], fmt: str = "{:.3f}") -> str:
    """The accuracies of the scored axes, slash-separated (– where not measured)."""
    return " / ".join(_f(None if acc is None else acc.get(a), fmt) for a in axes)


def summary_table(report: dict) -> list[str]:
    axes = report["axes"]
    lines = ["| sampler | steps/frame | PSNR 1 / 2 / 5 / 10 / 30 s | PSNR first 2 s | "
             "SSIM first 2 s | sharpness first 2 s | one-step PSNR (copy) | ΔDrift | "
             f"drift last/first min | {' / '.join(axes)} acc. | held key | "
             "moving while blocked | loop (dB) | "
             "still (dB, last) | latency ticks (plain / late) | ms/tick (streams) |",
             "|" + "---|" * 16]
    for r in report["results"]:
        fid, one, real, ctl = r["fidelity"], r["one_step"], r["realism"], r["controls"]
        cfg = r["config"]
        ps = " / ".join(_f(fid["psnr"].get(f"{h}s"), "{:.1f}") for h in (1, 2, 5, 10, 30))
        acc = fid["accuracy"]
        still = list(ctl["still_psnr"].values())[-1] if ctl["still_psnr"] else None
        lines.append(
            f"| {r['sampler']} | {cfg['window'] * cfg['steps_per_tick']} | {ps} | "
            f"{_f(fid['psnr_first_2s'])} | {_f(fid['ssim_first_2s'], '{:.3f}')} | "
            f"{_f(fid['sharpness_first_2s'], '{:.3f}')} | {_f(one['psnr'])} "
            f"({_f(one['copy_psnr'])}) | {_f(real['delta_drift'], '{:.3f}')} | "
            f"{_f(real['drift_ratio_last_vs_first_minute'], '{:.3f}')} | "
            f"{_accuracies(acc, axes)} | "
            f"{_f(ctl['held'], '{:.3f}')} | {_f(ctl['blocked_moving'], '{:.3f}')} | "
            f"{_f(ctl['loop_psnr'])} | {_f(still)} | {_f(r['latency_ticks'], '{}')} / "
            f"{_f(r['latency_ticks_late_binding'], '{}')} | {r['ms_per_tick']:.1f} "
            f"({r['streams']}) |")
    return lines


def minutes_table(report: dict) -> list[str]:
    sim = report["simulator"]["realism"]
    count = len(sim["drift_per_minute"])
    lines = ["| sampler | " + " | ".join(f"minute {m + 1}" for m in range(count)) + " |",
             "|" + "---|" * (count + 1),
             "| simulator: drift / Fréchet to the bank | " + " | ".join(
                 f"{d:.2f} / {f:.1f}" for d, f in zip(sim["drift_per_minute"],
                                                       sim["frechet_to_bank_per_minute"])) + " |"]
    for r in report["results"]:
        real = r["realism"]
        lines.append(f"| {r['sampler']}: drift ×sim / sharpness / Fréchet to the truth | "
                     + " | ".join(f"{d:.2f} / {s:.2f} / {f:.1f}" for d, s, f in zip(
                         real["drift_vs_simulator_per_minute"], real["sharpness_per_minute"],
                         real["frechet_per_minute"])) + " |")
    return lines


def _test_cell(entry: dict, axes: list[str]) -> str:
    acc = entry.get("accuracy")
    parts = [] if acc is None else [_accuracies(acc, axes, "{:.2f}").replace(" / ", "/")]
    for key, label in (("held", "held"), ("blocked_moving", "blocked→moving"),
                       ("loop_psnr", "dB")):
        if entry.get(key) is not None:
            parts.append(f"{label} {entry[key]:.2f}")
    if entry.get("still_psnr"):
        parts.append(" ".join(f"{k} {v:.1f}" for k, v in entry["still_psnr"].items()))
    return ", ".join(parts) or "–"


def controls_table(report: dict) -> list[str]:
    rows = [("simulator", report["simulator"])] + [(r["sampler"], r) for r in report["results"]]
    names = report["controls"]
    lines = ["| test | " + " | ".join(name for name, _ in rows) + " |",
             "|" + "---|" * (len(rows) + 1)]
    for test in names:
        lines.append(f"| {test} | " + " | ".join(
            _test_cell(r["controls"]["tests"][test], report["axes"]) for _, r in rows) + " |")
    return lines


def per_case_table(report: dict) -> list[str]:
    results = report["results"]
    lines = ["| case | " + " | ".join(r["sampler"] for r in results) + " |",
             "|" + "---|" * (len(results) + 1)]
    for case in report["cases"]:
        cells = []
        for r in results:
            c = r["fidelity"]["per_case"][case]
            acc = c.get("accuracy")
            one = r["one_step"]["per_case"].get(case, {})
            cells.append(f"{c['psnr_first_2s']:.2f} dB, sharp {c['sharpness_first_2s']:.2f}"
                         + ("" if acc is None else
                            ", " + _accuracies(acc, report["axes"], "{:.2f}").replace(" / ", "/"))
                         + (f", one-step {one['psnr']:.1f} (copy {one['copy_psnr']:.1f})"
                            if one else ""))
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    return lines


def write_report(report: dict, folder: Path, weights: str, rate: int) -> Path:
    from neural_engine.evaluation.plot import line_chart   # pygame: only for drawing

    folder.mkdir(parents=True, exist_ok=True)
    results = report["results"]
    settings = report["settings"]
    lines = [
        f"# Evaluation: {report['game']}",
        "",
        f"- weights: `{weights}`",
        f"- machine: {report['machine']} (device `{report['device']}`, {report['dtype']}, "
        f"torch {report['torch']}); profile `{report.get('profile', 'custom')}`",
        f"- fidelity cases: {', '.join(report['cases'])} (held-out seeds, "
        f"`games/{report['game']}/eval/cases.toml`), {settings['seconds']:g} s each; realism "
        f"over {settings['drift_seconds']:g} s on {', '.join(report['drift_cases'])}; control "
        f"tests (`eval/controls.toml`) in {settings['control_worlds']} worlds each",
        "- metrics and gates are defined in `docs/evaluation.md`",
        "",
    ]
    for sampler, cases in report.get("_contact", {}).items():
        if not cases:
            continue
        image = write_png(folder / f"contact-{sampler}.png", contact_sheet(cases))
        what = "; ".join(f"{name} at {', '.join(f'{t:g}' for t in c['times'])} s"
                         for name, c in cases.items())
        lines += [f"![{sampler}: simulator row over generated row]({image.name})", "",
                  f"*{sampler}*, each pair of rows the simulator over the model: {what}.", ""]
    lines += ["## Playability gates", ""] + gates_table(report)
    if ceilings := ceilings_table(report):
        lines += ["", "## Ceilings", ""] + ceilings
    lines += ["", "## Summary", ""] + summary_table(report)
    lines += ["", "## Realism per minute", ""] + minutes_table(report)
    axes = "/".join(report["axes"])
    lines += ["", f"## Control tests ({axes} accuracy, then the test's own measure)",
              ""] + controls_table(report)
    lines += ["", f"## Per case (PSNR first 2 s, sharpness ratio, {axes} accuracy, "
              "one-step PSNR over changing frames)", ""] + per_case_table(report)
    curves = {r["sampler"]: (list(range(1, len(r["fidelity"]["psnr_curve"]) + 1)),
                             r["fidelity"]["psnr_curve"]) for r in results}
    line_chart(folder / "psnr_vs_horizon.png", curves, "PSNR against the simulator",
               "seconds into the rollout", "PSNR (dB), mean over each second")
    drift = {r["sampler"]: (list(range(1, len(r["realism"]["drift_per_second"]) + 1)),
                            r["realism"]["drift_per_second"]) for r in results}
    truth = report["simulator"]["realism"]["drift_per_second"]
    drift["simulator"] = (list(range(1, len(truth) + 1)), truth)
    line_chart(folder / "drift_vs_time.png", drift, "Drift: distance to the nearest real frame",
               "seconds into the rollout", "feature distance (lower is better)")
    lines += ["", "![PSNR against the simulator](psnr_vs_horizon.png)", "",
              "![drift over time](drift_vs_time.png)", ""]
    pair = video_pair(report)
    if pair is not None:
        side = torch.cat(pair[2:], 2).numpy()                             # (T, H, 2W, 3)
        video = write_video(folder / "side_by_side.mp4", side, fps=rate)
        lines.append(f"Side by side (simulator | {pair[1]}, {pair[0]}): "
                     f"[{video.name}]({video.name})")
    if report.get("notes"):
        lines += ["", "Notes:"] + [f"- {note}" for note in report["notes"]]
    path = folder / "report.md"
    path.write_text("\n".join(lines) + "\n")
    (folder / "report.json").write_text(json.dumps(public(report), indent=2) + "\n")
    return path
