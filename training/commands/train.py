"""``handmocap train``: train ACR or DIR from a config file (resumes from the output folder).

Data-parallel: ``torchrun --nproc-per-node N -m handmocap.core.cli train --config FILE``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "train"
HELP = "train ACR or DIR from a TOML config (resumes where the output folder left off)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="TOML training config")
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (default: runs/<config name>)"
    )
    parser.add_argument(
        "--max-steps", type=int, default=None, help="stop after this many optimizer steps in all"
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="start from scratch even if the output folder has a checkpoint",
    )
    parser.add_argument(
        "--models", type=Path, default=None, help="models folder with mano/ to train with real MANO"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import shutil

    from handmocap.training.config import load_config
    from handmocap.training.trainer import Trainer

    config = load_config(args.config)
    out = args.out or Path("runs") / args.config.stem
    trainer = Trainer(config, out, progress=not args.quiet, models_dir=args.models)
    if trainer.dist.main:
        out.mkdir(parents=True, exist_ok=True)
        if not (out / "config.toml").exists() or args.restart:
            shutil.copyfile(args.config, out / "config.toml")
    result = trainer.run(max_steps=args.max_steps, resume=not args.restart)
    if trainer.dist.main:
        last = result.record[-1] if result.record else {}
        summary = ", ".join(
            f"{k} {v:.2f}"
            for k, v in last.items()
            if k.startswith("mpjpe") and isinstance(v, float)
        )
        print(
            f"trained {result.step} steps ({result.epoch} epochs) into {out}"
            + (f"; validation {summary}" if summary else "")
        )
    return 0
