"""``handmocap capture``: footage in, a take out."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "capture"
HELP = "reconstruct the hands in a video or image folder into a take (resumable)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=Path, metavar="VIDEO_OR_IMAGE_FOLDER")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="TAKE",
        help="the take folder to write (resumed if it holds an unfinished take)",
    )
    parser.add_argument(
        "--backend",
        choices=("auto", "acr", "dir", "mediapipe"),
        default="auto",
        help="auto: the best backend whose files are present (says which)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument(
        "--models", type=Path, default=None, help="models folder (default: $HANDMOCAP_MODELS)"
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=64,
        help="frames per chunk: the unit of work, of writing and of resuming",
    )
    parser.add_argument("--start", type=int, default=0, help="first frame (index)")
    parser.add_argument("--end", type=int, default=None, help="stop before this frame")
    parser.add_argument("--focal", type=float, default=None, help="focal length, frame pixels")
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    parser.add_argument("--threshold", type=float, default=0.35, help="hand confidence (acr)")
    add_acr_weights_argument(parser)
    parser.add_argument(
        "--detector",
        choices=("mediapipe", "acr"),
        default="mediapipe",
        help="what finds the two hands whose crop DIR reads (dir; default: mediapipe)",
    )
    parser.add_argument(
        "--progress",
        choices=("bar", "json", "none"),
        default="bar",
        help="bar on stderr, or one JSON line per update on stdout",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing take")


def add_acr_weights_argument(parser: argparse.ArgumentParser) -> None:
    """``--acr-weights``, shared with ``handmocap detect``."""
    from handmocap.core.models_dir import ACR_WEIGHTS

    parser.add_argument(
        "--acr-weights",
        choices=ACR_WEIGHTS,
        default="auto",
        help="acr: official (wild.pkl with MANO), open (handmocap's own, trained on synthetic "
        "hands of the open hand model) or auto (official when its files are there)",
    )


def run(args: argparse.Namespace) -> int:
    from handmocap.core.capture import CaptureSettings, capture
    from handmocap.core.models_dir import default_models_dir
    from handmocap.core.progress import ProgressReporter

    settings = CaptureSettings(
        backend=args.backend,
        device=args.device,
        chunk=args.batch,
        start=args.start,
        end=args.end,
        focal=args.focal,
        precision=args.precision,
        threshold=args.threshold,
        detector=args.detector,
        weights=args.acr_weights,
    )
    models = args.models if args.models is not None else default_models_dir()
    progress = ProgressReporter(args.progress)
    report = capture(args.source, args.output, settings, models, progress, args.overwrite)
    if args.progress != "json":
        fps = report.frames / max(report.seconds, 1e-9)
        seen = ", ".join(f"{s} hand in {n}" for s, n in report.hands_seen.items())
        print(
            f"take: {report.take} ({report.frames} frames, {seen}; {report.backend}, "
            f"{report.seconds:.1f} s, {fps:.1f} frames/s)"
        )
        if not any(report.hands_seen.values()):
            print(f"no hand was seen in {args.source}: the take is valid but empty")
        if report.skipped:
            print(f"{len(report.skipped)} image(s) skipped: see the messages above")
    return 0
