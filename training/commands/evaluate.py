"""``handmocap evaluate``: measure a trained checkpoint on a dataset, as the papers' tables."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "evaluate"
HELP = "measure a checkpoint from handmocap train on a dataset (MPJPE, MPVPE, PA-*, MRRPE, PCK)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from handmocap.training.config import DATA_KINDS

    parser.add_argument("checkpoint", type=Path, help="a checkpoint written by handmocap train")
    parser.add_argument("--data", type=Path, required=True, help="dataset folder")
    parser.add_argument("--kind", choices=DATA_KINDS, default="synthetic", help="dataset kind")
    parser.add_argument("--split", default="test", help="the reader's split (not synthetic)")
    parser.add_argument(
        "--protocol",
        default="intaghand",
        help="alignment: intaghand (middle root + scale), dir (wrist + scale), acr (middle "
        "root), freihand (Procrustes)",
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--limit", type=int, default=None, help="at most this many samples")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto")
    parser.add_argument("--models", type=Path, default=None, help="models folder (for MANO)")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    import torch
    from tqdm import tqdm

    from handmocap.core.errors import HandmocapError
    from handmocap.training.data import TrainingSet, open_dataset
    from handmocap.training.evaluate import load_for_evaluation, measure
    from handmocap.training.metrics import PROTOCOLS, format_table
    from handmocap.training.tasks import input_size

    if args.protocol not in PROTOCOLS:
        raise HandmocapError(f"unknown protocol {args.protocol!r}: use one of {sorted(PROTOCOLS)}")
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    task, config = load_for_evaluation(args.checkpoint, args.models, device)
    dataset = open_dataset(args.kind, str(args.data), args.split, input_size(config))
    samples = TrainingSet(dataset, task.add_targets)
    total = len(samples) if args.limit is None else min(args.limit, len(samples))
    with tqdm(total=-(-total // args.batch_size), unit="batch", file=sys.stderr,
              desc="evaluate") as bar:  # fmt: skip
        evaluator, counts = measure(task, samples, device, args.batch_size, args.protocol,
                                    limit=args.limit, progress=bar.update)  # fmt: skip
    summary = evaluator.summary()
    print(f"{args.checkpoint} on {args.data} ({args.kind}, {total} samples, "
          f"protocol {args.protocol}; errors in mm, 2D errors in pixels)")  # fmt: skip
    print(format_table(summary))
    print(f"hands found: {counts['found']} of {counts['labelled']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"protocol": args.protocol, "summary": summary,
                                         **counts}, indent=1, default=float))  # fmt: skip
    return 0
