"""Training curves of several runs side by side: does a run on more GPUs learn the same?

Reads each run folder's ``metrics.jsonl`` (the training loop's rows), draws one metric
against the step for every run (``evaluation/plot.py``) and says how far the curves lie
apart against their own noise: the mean gap between each run and the first at the steps
both logged, and each run's noise, the spread of its logged value around a running
mean of five rows. Two runs with the same global batch on 1 and on 2 GPUs should differ
by no more than that noise (they see different worlds, so not by nothing).

    python -m neural_engine.training.curves runs/g1 runs/g2 --out docs/ddp_loss.png

It knows nothing about stages or GPUs: only metric rows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from neural_engine.errors import EngineError


def read_curve(folder: Path, key: str) -> dict[int, float]:
    """``{step: value}`` of ``key`` over the training rows of ``folder``'s metrics."""
    path = folder / "metrics.jsonl"
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise EngineError(f"cannot read the metrics: {exc.strerror}", where=str(path)) from None
    curve = {}
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if row.get("kind") == "train" and key in row:
            curve[int(row["step"])] = float(row[key])
    if not curve:
        raise EngineError(f"no training rows with {key!r}", where=str(path))
    return curve


def noise(curve: dict[int, float], span: int = 5) -> float:
    """The spread of a curve's values around its running mean of ``span`` rows."""
    ys = [curve[s] for s in sorted(curve)]
    if len(ys) < span + 1:
        return 0.0
    off = [ys[i] - statistics.fmean(ys[i - span // 2:i + span // 2 + 1])
           for i in range(span // 2, len(ys) - span // 2)]
    return statistics.pstdev(off)


def compare(curves: dict[str, dict[int, float]]) -> list[dict]:
    """Per run: its noise, and the mean gap to the first run at the steps both logged."""
    names = list(curves)
    first = curves[names[0]]
    out = []
    for name in names:
        shared = sorted(set(first) & set(curves[name]))
        gap = statistics.fmean(curves[name][s] - first[s] for s in shared) if shared else None
        out.append({"run": name, "rows": len(curves[name]), "noise": noise(curves[name]),
                    "mean_gap_to_first": gap, "shared_steps": len(shared),
                    "last": curves[name][max(curves[name])]})
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m neural_engine.training.curves",
                                description="Plot one metric of several training runs.")
    p.add_argument("runs", nargs="+", help="run folders (each with metrics.jsonl)")
    p.add_argument("--key", default="loss", help="the metric (default: loss)")
    p.add_argument("--label", action="append", default=[],
                   help="a name per run, in order (default: the folder names)")
    p.add_argument("--out", required=True, help="the chart (PNG)")
    p.add_argument("--title", default=None)
    args = p.parse_args(argv)
    labels = args.label + [Path(r).name for r in args.runs[len(args.label):]]
    try:
        curves = {label: read_curve(Path(run), args.key) for label, run in zip(labels, args.runs)}
    except EngineError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    from neural_engine.evaluation.plot import line_chart   # pygame: only for drawing

    line_chart(args.out, {k: (sorted(c), [c[s] for s in sorted(c)]) for k, c in curves.items()},
               args.title or f"{args.key} against the step", "step", args.key)
    for row in compare(curves):
        gap = "–" if row["mean_gap_to_first"] is None else f"{row['mean_gap_to_first']:+.4f}"
        print(f"{row['run']}: {row['rows']} rows, last {row['last']:.4f}, noise "
              f"{row['noise']:.4f}, mean gap to {labels[0]} {gap} over "
              f"{row['shared_steps']} steps")
    print(f"chart: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
