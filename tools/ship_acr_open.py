"""Ship a trained light ACR as handmocap's own acr weights (``core/assets/acr_open``).

From a ``handmocap train`` run of ``configs/acr_light.toml``: one checkpoint's weights
(``best.pt`` by validation MPJPE unless ``--checkpoint`` names another; fp16, weights only),
the config they were trained with, the training record (CSV), the held-out evaluation on a
test set that training never saw (``heldout.json``) and the training curve
(``docs/acr_open_training.png``). The folder's README.md is written by hand from these.

    handmocap data synth --out data/synth_light_test --count 256 --size 128 --seed 2000
    python tools/ship_acr_open.py runs/acr_light --test data/synth_light_test --checkpoint last.pt

The shipped weights are ``last.pt``: their run's validation MPJPE never left chance level, so
``best.pt`` was an early step (``core/assets/acr_open/README.md``).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "core" / "assets" / "acr_open"
CURVE = ROOT / "docs" / "acr_open_training.png"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the handmocap train output folder")
    parser.add_argument("--test", type=Path, required=True, help="held-out synthetic dataset")
    parser.add_argument("--checkpoint", default="best.pt", help="best.pt or last.pt")
    args = parser.parse_args()

    from handmocap.core.cli import main as cli
    from handmocap.training.report import export_weights, plot_training

    weights = export_weights(args.run / args.checkpoint, TARGET / "acr_open.pt", half=True)
    shutil.copy(ROOT / "configs" / "acr_light.toml", TARGET / "config.toml")
    (TARGET / "record").mkdir(exist_ok=True)
    for name in ("train.csv", "val.csv"):
        shutil.copy(args.run / name, TARGET / "record" / name)
    report = TARGET / "heldout.json"
    code = cli(["evaluate", str(weights), "--data", str(args.test), "--kind", "synthetic",
                "--device", "cpu", "--json", str(report)])  # fmt: skip
    if code:
        raise SystemExit(code)
    plot_training(args.run, CURVE, title="light ACR (1.6 M parameters, 128 px) on synthetic hands")
    summary = json.loads(report.read_text())["summary"]["all"]
    size = weights.stat().st_size / 1e6
    print(f"{weights} ({size:.1f} MB); held-out MPJPE {summary['mpjpe']:.1f} mm, "
          f"PA-MPJPE {summary['pa_mpjpe']:.1f} mm; curve {CURVE}")  # fmt: skip


if __name__ == "__main__":
    main()
