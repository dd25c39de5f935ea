"""``handmocap demo``: the main job end to end on the real clip shipped with handmocap."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "demo"
HELP = (
    "capture the bundled real clip, draw the smoothed hands over it (video and sheet), "
    "bake them into a .blend and an FBX"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("demo_output"), help="output folder")
    parser.add_argument(
        "--frames", type=int, default=None, help="capture only the clip's first N frames"
    )
    parser.add_argument("--no-video", action="store_true", help="only the contact sheet")
    parser.add_argument("--no-blend", action="store_true", help="no .blend and no FBX")
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
    r = run_demo(args.out, args.frames, not args.no_video, ProgressReporter(args.progress),
                 bake=not args.no_blend)  # fmt: skip
    print(f"backend: {r.backend} ({r.reason})")
    print(f"take:    {r.take_path} ({r.frames} frames, captured in {r.capture_seconds:.1f} s)")
    print(f"sheet:   {r.sheet_path}  (every few frames, hands smoothed, drawn over the clip)")
    if r.video_path:
        print(f"video:   {r.video_path}  (the whole clip with the hands drawn on it)")
    if r.blend_path:
        print(f"blend:   {r.blend_path}  (open in Blender: the camera sees the hands on the clip)")
        print(f"fbx:     {r.fbx_path}  (the hands' armatures and meshes, Unity preset)")
    total = time.perf_counter() - started
    print(f"time:    {total:.1f} s for {r.clip_seconds:.1f} s of video (capture "
          f"{r.capture_seconds:.1f} s, preview {r.preview_seconds:.1f} s, .blend and FBX "
          f"{r.bake_seconds:.1f} s)")  # fmt: skip
    print(f"next:    handmocap info {r.take_path}   |   handmocap bake {r.take_path} "
          "--target RIG.blend --fbx OUT.fbx")  # fmt: skip
    return 0
