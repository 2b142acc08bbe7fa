"""Loss curves of several runs: read, compared against their noise, drawn."""

import json

from neural_engine.training import curves


def _run(folder, values):
    folder.mkdir()
    rows = [{"kind": "train", "step": 10 * (i + 1), "loss": v} for i, v in enumerate(values)]
    rows.insert(2, {"kind": "eval", "step": 20, "psnr": 1.0})
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_two_runs_are_compared_and_drawn(tmp_path, capsys):
    a = _run(tmp_path / "g1", [1.0, 0.8, 0.7, 0.6, 0.55, 0.5, 0.48, 0.46])
    b = _run(tmp_path / "g2", [1.1, 0.9, 0.8, 0.7, 0.65, 0.6, 0.58, 0.56])
    assert curves.read_curve(a, "loss")[20] == 0.8
    rows = curves.compare({"1 GPU": curves.read_curve(a, "loss"),
                           "2 GPUs": curves.read_curve(b, "loss")})
    assert rows[0]["mean_gap_to_first"] == 0.0
    assert abs(rows[1]["mean_gap_to_first"] - 0.1) < 1e-9 and rows[1]["shared_steps"] == 8
    out = tmp_path / "loss.png"
    assert curves.main([str(a), str(b), "--label", "1 GPU", "--label", "2 GPUs",
                        "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert "2 GPUs: 8 rows" in capsys.readouterr().out


def test_a_run_without_rows_is_one_error_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "metrics.jsonl").write_text("")
    assert curves.main([str(tmp_path / "empty"), "--out", str(tmp_path / "x.png")]) == 1
    assert "no training rows" in capsys.readouterr().err
