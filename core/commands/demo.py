"""``handmocap demo``: the main job as far as it exists, on built-in data."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "demo"
HELP = "run the demo: hand models -> two-hand performance -> take -> picture"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("demo_output"), help="output folder")
    parser.add_argument("--frames", type=int, default=90, help="synthetic frames (30 fps)")
    parser.add_argument(
        "--clip-frames", type=int, default=None, help="frames of the real clip (default: all)"
    )
    parser.add_argument("--no-clip", action="store_true", help="skip the real clip")


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
    if not args.no_clip:
        from handmocap.core.demo import run_clip_demo
        from handmocap.core.progress import ProgressReporter

        print("capturing the bundled real clip (asl_hand.25fps.mp4, Apache-2.0) ...")
        clip = run_clip_demo(args.out, args.clip_frames, progress=ProgressReporter("bar"))
        print(
            f"capture: {clip.take_path} ({clip.frames} frames, {clip.backend} backend, "
            f"{clip.capture_seconds:.1f} s)"
        )
        print(f"sheet:   {clip.sheet_path}  (the clip's hands, smoothed, every few frames)")
        if clip.video_path:
            print(f"video:   {clip.video_path}  (the whole clip with the hands drawn on it)")
    print(f"next:    handmocap info {result.take_path}")
    return 0
