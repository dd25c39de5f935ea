"""``handmocap preview``: the take's hands drawn over its footage, as a video and a sheet."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "preview"
HELP = "draw a take's hands over its footage: an MP4 and a contact sheet PNG"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("take", type=Path, metavar="TAKE")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        metavar="OUT.mp4",
        help="the video to write (default: TAKE_preview.mp4 beside the take)",
    )
    parser.add_argument(
        "--sheet",
        type=Path,
        default=None,
        metavar="OUT.png",
        help="the contact sheet (default: TAKE_sheet.png beside the take)",
    )
    parser.add_argument(
        "--smoothing",
        default="offline",
        help="smoothing preset: none, one-euro-acr or offline (default)",
    )
    parser.add_argument("--models", type=Path, default=None, help="models folder (for MANO)")
    parser.add_argument("--no-video", action="store_true", help="only the contact sheet")


def run(args: argparse.Namespace) -> int:
    from handmocap.core.errors import HandmocapError
    from handmocap.core.handmodel import HandLayer
    from handmocap.core.preview import contact_sheet, render_preview
    from handmocap.core.render import save_png
    from handmocap.core.smoothing import PRESETS
    from handmocap.core.take import read_take

    if args.smoothing not in PRESETS:
        raise HandmocapError(f"--smoothing must be one of {', '.join(PRESETS)}")
    take = read_take(args.take)
    kind = "mano" if take.manifest.hand_model.startswith("mano") else "openhand"
    layer = HandLayer.from_models_dir(args.models, kind)
    stem = args.take.with_suffix("")
    sheet = args.sheet or stem.with_name(stem.name + "_sheet.png")
    save_png(sheet, contact_sheet(take, layer, smoothing=args.smoothing))
    print(f"contact sheet: {sheet}")
    if not args.no_video:
        video = args.output or stem.with_name(stem.name + "_preview.mp4")
        frames = render_preview(take, layer, video, args.smoothing)
        print(f"preview video: {video} ({frames} frames, smoothing {args.smoothing})")
    return 0
