"""``handmocap demo``: the main job as far as it exists, on built-in data."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "demo"
HELP = "run the demo: hand models -> two-hand performance -> take -> picture"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("demo_output"), help="output folder")
    parser.add_argument("--frames", type=int, default=90, help="frames to perform (30 fps)")


def run(args: argparse.Namespace) -> int:
    from handmocap.core.demo import run_demo
    from handmocap.core.errors import HandmocapError

    if args.frames < 8:
        raise HandmocapError(f"--frames must be at least 8, got {args.frames}")
    print("building both open hand models, performing, writing the take ...")
    result = run_demo(args.out, args.frames)
    s = result.summary
    print(f"take:    {result.take_path} ({s['frames']} frames at {s['fps']:g} fps, "
          f"{s['chunks']} chunks, read back and checked)")  # fmt: skip
    print(f"picture: {result.picture_path}  (the take's frames as the camera saw them)")
    print(f"model:   {result.model_picture_path}  (both hand models, rest and poses)")
    print(f"next:    handmocap info {result.take_path}")
    return 0
