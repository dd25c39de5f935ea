"""``handmocap demo``: the main job end to end on the real clip shipped with handmocap."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "demo"
HELP = "capture the bundled real clip, then draw the smoothed hands over it (video and sheet)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("demo_output"), help="output folder")
    parser.add_argument(
        "--frames", type=int, default=None, help="capture only the clip's first N frames"
    )
    parser.add_argument("--no-video", action="store_true", help="only the contact sheet")
    parser.add_argument(
        "--progress", choices=("bar", "json", "none"), default="bar", help="progress display"
    )


def run(args: argparse.Namespace) -> int:
    import time

    from handmocap.core.demo import run_demo
    from handmocap.core.errors import HandmocapError
    from handmocap.core.progress import ProgressReporter

    started = time.perf_counter()
    if args.frames is not None and args.frames < 1:
        raise HandmocapError(f"--frames must be at least 1, got {args.frames}")
    print("capturing the bundled real clip (asl_hand.25fps.mp4, Apache-2.0) ...")
    r = run_demo(args.out, args.frames, not args.no_video, ProgressReporter(args.progress))
    print(f"backend: {r.backend} ({r.reason})")
    print(f"take:    {r.take_path} ({r.frames} frames, captured in {r.capture_seconds:.1f} s)")
    print(f"sheet:   {r.sheet_path}  (every few frames, hands smoothed, drawn over the clip)")
    if r.video_path:
        print(f"video:   {r.video_path}  (the whole clip with the hands drawn on it)")
    total = time.perf_counter() - started
    print(f"time:    {total:.1f} s for {r.clip_seconds:.1f} s of video "
          f"(capture {r.capture_seconds:.1f} s, preview {r.preview_seconds:.1f} s)")  # fmt: skip
    print(f"next:    handmocap info {r.take_path}   |   handmocap preview {r.take_path}")
    return 0
