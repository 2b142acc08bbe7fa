"""``neural-engine eval``: a world model's samplers against the simulator, with a report."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from neural_engine.cli.options import (add_device, add_dtype, add_game, number,
                                       parse_dtype, resolve_device, writable_folder)
from neural_engine.errors import EngineError
from neural_engine.games import load_game
from neural_engine.evaluation.settings import PROFILES
from neural_engine.model.weights import load_model
from neural_engine.sampler.stream import SAMPLERS

SAMPLER_NAMES = tuple(SAMPLERS)
PROFILE_NAMES = tuple(PROFILES)


def _samplers(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    bad = [n for n in names if n not in SAMPLER_NAMES]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown sampler(s) {', '.join(bad) or text!r} "
                                         f"(choose from {', '.join(SAMPLER_NAMES)})")
    return names


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a world model against the simulator",
                       description="Fidelity per horizon, drift, action control, response "
                                   "latency and throughput for each sampler, on the game's "
                                   "held-out cases; JSON and a Markdown report with plots.")
    add_game(p)
    p.add_argument("--weights", help="world-model weights (default: the game's shipped ones)")
    p.add_argument("--profile", choices=PROFILE_NAMES, default="full",
                   help="full: every measure, a few minutes on one GPU; quick: what training "
                        "validation runs, about a minute on one GPU; cpu: within 15 minutes "
                        "on a 2-core CPU (the full profile takes hours there) (default: full)")
    p.add_argument("--sampler", type=_samplers, default=None,
                   help=f"comma-separated: {', '.join(SAMPLER_NAMES)} (default: the profile's)")
    p.add_argument("--seconds", type=number(1, 3600), help="fidelity rollout length "
                   "(default: the profile's; full: 30)")
    p.add_argument("--drift-seconds", type=number(1, 86400),
                   help="realism rollout length (default: the profile's; full: 300)")
    p.add_argument("--drift-cases", type=int, help="cases rolled out for realism (full: 2)")
    p.add_argument("--cases", type=int, help="use only the first N held-out cases")
    p.add_argument("--control-worlds", type=int, help="worlds per control test (full: 8)")
    p.add_argument("--teacher-steps", type=int, help="steps of the teacher sampler (full: 32)")
    p.add_argument("--probe", help="action-control probe "
                   "(default: assets/<game>/probe.safetensors)")
    p.add_argument("--ceilings", action="store_true",
                   help="only what bounds the one-step gates, in seconds: the autoencoder's "
                        "reconstruction, the denoiser's posterior mean and the copied last "
                        "frame against the true next frame, on the profile's one-step "
                        "points (with --json: written there)")
    p.add_argument("--json", metavar="OUT.json", help="write the numbers as JSON")
    p.add_argument("--report", metavar="DIR", help="write report.md, plots and a video here")
    p.add_argument("--samples", metavar="FILE.safetensors",
                   help="with --json: also keep the frames the report shows (contact sheets, "
                        "the side-by-side case's first 8 s) here; with --from-json: read them")
    p.add_argument("--from-json", metavar="IN.json",
                   help="draw --report from an earlier run's JSON (say, one made on a GPU "
                        "machine without pygame) instead of evaluating")
    add_device(p)
    add_dtype(p)
    p.set_defaults(handler=run)


SAMPLE_SECONDS = 8.0


def write_text(path: Path, text: str) -> None:
    """Replace ``path`` whole, never half-written."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def redraw(args: argparse.Namespace) -> int:
    """``--from-json``: the report of an earlier evaluation, drawn here."""
    from neural_engine.evaluation.report import load_samples, write_report

    if not args.report:
        raise EngineError("--from-json needs --report DIR")
    try:
        report = json.loads(Path(args.from_json).read_text())
    except (OSError, ValueError) as error:
        raise EngineError(f"not an evaluation JSON: {error}", where=args.from_json) from error
    if not isinstance(report, dict) or not {"results", "cases", "simulator"} <= report.keys():
        raise EngineError("not an evaluation JSON of this engine (no results, cases or "
                          "simulator scores)", where=args.from_json)
    game = load_game(report.get("game", args.game))
    if args.samples:
        load_samples(report, Path(args.samples), game)
    path = write_report(report, Path(args.report), report.get("weights", "?"),
                        game.spec.tick_rate)
    print(f"wrote {path}")
    return 0


def only_ceilings(game, model, settings, label: str, out: str | None) -> int:
    """``--ceilings``: the table of ``evaluation/ceilings.py`` printed (and kept as JSON)."""
    from neural_engine.evaluation.ceilings import METRICS, ROWS, ceilings
    from neural_engine.evaluation.score import one_step_points

    bounds = ceilings(model, one_step_points(game, settings), settings.seed,
                      settings.max_streams)
    print(f"{label}: {bounds['changing']} of {bounds['points']} one-step points change")
    for row in ROWS:
        values = bounds[row]
        print(f"{row:>15}: " + ", ".join(
            f"{m} {values[m]:.4f}" if values[m] is not None else f"{m} –" for m in METRICS))
    if out:
        write_text(Path(out), json.dumps({"weights": label, "game": game.spec.name,
                                          "ceilings": bounds}, indent=2) + "\n")
        print(f"wrote {out}")
    return 0


def run(args: argparse.Namespace) -> int:
    from neural_engine.evaluation.gates import passed
    from neural_engine.evaluation.probe import load_probe
    from neural_engine.evaluation.report import public, save_samples, write_report

    if args.from_json:
        return redraw(args)
    if args.ceilings and (args.report or args.samples):
        raise EngineError("--ceilings measures no sampler: it writes only --json, no "
                          "--report or --samples")
    from neural_engine.evaluation.runner import evaluate
    from neural_engine.evaluation.settings import profile
    from neural_engine.model.weights import ASSETS_ROOT

    for value, flag in ((args.seconds, "--seconds"), (args.drift_seconds, "--drift-seconds")):
        if value is not None and not value >= 1:
            raise EngineError(f"{flag} must be at least 1")
    for value, flag in ((args.drift_cases, "--drift-cases"), (args.cases, "--cases"),
                        (args.control_worlds, "--control-worlds"),
                        (args.teacher_steps, "--teacher-steps")):
        if value is not None and value < 1:
            raise EngineError(f"{flag} must be at least 1")
    for path in (args.json, args.samples):          # before the work, not after it
        if path:
            writable_folder(Path(path).resolve().parent, path)
    if args.report:
        writable_folder(Path(args.report), args.report, create=True)
    game = load_game(args.game)
    name = game.spec.name
    device = resolve_device(args.device)
    if device.type == "cpu" and args.profile == "full":
        print("note: the full profile takes hours on a CPU; --profile cpu runs within 15 "
              "minutes on two cores", file=sys.stderr)
    model, label = load_model(name, args.weights, None, device, parse_dtype(args, device))
    probe_path = Path(args.probe) if args.probe else ASSETS_ROOT / name / "probe.safetensors"
    probe = None
    if probe_path.is_file():
        probe = load_probe(probe_path, device,
                           tuple(m.scale for m in game.spec.control.motion))
    elif args.probe:
        raise EngineError("probe file not found", where=args.probe)
    else:
        print(f"note: no action-control probe at {probe_path}; skipping action control",
              file=sys.stderr)
    settings = profile(args.profile, samplers=args.sampler, seconds=args.seconds,
                       drift_seconds=args.drift_seconds, drift_cases=args.drift_cases,
                       cases=args.cases, control_worlds=args.control_worlds,
                       teacher_steps=args.teacher_steps)

    def keep(report: dict) -> None:
        """After each sampler: the JSON so far, so a run cut short keeps what it measured
        (with --report, its report.json too: the numbers are there before the drawing)."""
        report["weights"] = label
        numbers = json.dumps(public(report), indent=2) + "\n"
        for path in ([Path(args.json)] if args.json else []) + (
                [Path(args.report) / "report.json"] if args.report else []):
            write_text(path, numbers)

    if args.ceilings:
        return only_ceilings(game, model, settings, label, args.json)
    report = evaluate(game, model, settings, probe, profile=args.profile,
                      progress=lambda m: print(m, file=sys.stderr, flush=True), partial=keep)
    keep(report)
    if args.json:
        print(f"wrote {args.json}")
    if args.samples:
        save_samples(report, Path(args.samples), SAMPLE_SECONDS, game.spec.tick_rate)
        print(f"wrote {args.samples}")
    if args.report:
        path = write_report(report, Path(args.report), label, game.spec.tick_rate)
        print(f"wrote {path}")
    for r in report["results"]:
        print(f"{r['sampler']:>22}: gates passed {passed(r['gates'])}/{len(r['gates'])}, "
              f"PSNR first 2 s {r['fidelity']['psnr_first_2s']:.2f} dB, "
              f"{r['ms_per_tick']:.1f} ms/tick")
    return 0
