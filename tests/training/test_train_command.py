"""End to end on the command line: render a few synthetic samples, train the tiny ACR config on
them, resume, and evaluate the checkpoint."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from handmocap.core.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_synth_train_resume_evaluate(tmp_path, capsys):
    data = tmp_path / "data" / "synth_tiny"
    assert main(["data", "synth", "--out", str(data), "--count", "12", "--size", "128"]) == 0
    configs = tmp_path / "configs"
    configs.mkdir()
    shutil.copy(ROOT / "configs" / "acr_tiny.toml", configs / "acr_tiny.toml")
    run = tmp_path / "run"
    args = ["train", "--config", str(configs / "acr_tiny.toml"), "--out", str(run), "--quiet"]
    assert main([*args, "--max-steps", "1"]) == 0
    assert main(args) == 0  # resumes at step 1, finishes the 2 epochs of 2 steps
    out = capsys.readouterr().out
    assert "trained 4 steps (2 epochs)" in out
    steps = [int(r["step"]) for r in csv.DictReader((run / "train.csv").open())]
    assert steps == [1, 2, 3, 4]
    assert (run / "config.toml").exists() and (run / "best.pt").exists()

    report = tmp_path / "eval.json"
    code = main(["evaluate", str(run / "last.pt"), "--data", str(data), "--limit", "8",
                 "--batch-size", "4", "--json", str(report)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "mpjpe" in printed.lower() and "hands found" in printed
    numbers = json.loads(report.read_text())
    assert numbers["protocol"] == "intaghand"
    assert numbers["summary"]["all"]["mpjpe"] > 0


def test_train_command_names_a_missing_dataset(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text('[data]\nkind = "synthetic"\nroot = "nowhere"\n')
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    assert "nowhere" in capsys.readouterr().err
