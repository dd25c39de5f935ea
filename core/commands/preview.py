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
    parser.add_argument(
        "--height",
        type=int,
        default=720,
        metavar="PX",
        help="draw taller footage scaled down to this height (default 720; 0: full size)",
    )
    parser.add_argument("--models", type=Path, default=None, help="models folder (for MANO)")
    parser.add_argument("--no-video", action="store_true", help="only the contact sheet")


def run(args: argparse.Namespace) -> int:
    from handmocap.core.errors import HandmocapError
    from handmocap.core.handmodel import HandLayer
    from handmocap.core.models_dir import model_kind
    from handmocap.core.preview import write_preview
    from handmocap.core.render import save_png
    from handmocap.core.smoothing import PRESETS
    from handmocap.core.take import read_take

    if args.smoothing not in PRESETS:
        raise HandmocapError(f"--smoothing must be one of {', '.join(PRESETS)}")
    if args.height < 0 or args.height == 1:
        raise HandmocapError(f"--height must be 0 (full size) or at least 2, got {args.height}")
    take = read_take(args.take)
    kind = model_kind(take.manifest.hand_model)
    layer = HandLayer.from_models_dir(args.models, kind)
    stem = args.take.with_suffix("")
    sheet = args.sheet or stem.with_name(stem.name + "_sheet.png")
    video = None if args.no_video else args.output or stem.with_name(stem.name + "_preview.mp4")
    height = args.height or None
    result = write_preview(take, layer, video, True, args.smoothing, height=height)
    save_png(sheet, result.sheet)
    print(f"contact sheet: {sheet}")
    if video is not None:
        print(f"preview video: {video} ({result.frames} frames, smoothing {args.smoothing})")
    return 0
