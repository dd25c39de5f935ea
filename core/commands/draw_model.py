"""``handmocap draw-model``: a picture of the hand model, both sides, rest and a few poses."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "draw-model"
HELP = "draw the hand model (both sides, rest and a few poses, two views) into a PNG"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("hand_model.png"), help="PNG to write")
    parser.add_argument("--models", type=Path, default=None, help="models folder (for MANO)")
    parser.add_argument(
        "--kind", choices=("auto", "openhand", "mano"), default="openhand", help="which model"
    )
    parser.add_argument("--cell", type=int, default=260, help="size of one picture cell, px")


def run(args: argparse.Namespace) -> int:
    from handmocap.core.handmodel import HandLayer
    from handmocap.core.picture import model_sheet
    from handmocap.core.render import save_png

    layer = HandLayer.from_models_dir(args.models, args.kind)
    image = model_sheet(layer, cell=args.cell)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_png(args.out, image)
    kind = layer.models["right"].kind
    print(f"wrote {args.out} ({kind} hand model, {image.shape[1]}x{image.shape[0]} px)")
    return 0
