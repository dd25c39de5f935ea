"""``handmocap detect``: hands in still images, as text, JSON or pictures."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "detect"
HELP = "find hands in images with a backend; print them, or draw them over the images"
BACKENDS = ("acr", "dir", "mediapipe")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files")
    parser.add_argument(
        "--backend", choices=BACKENDS, default="mediapipe", help="default: mediapipe"
    )
    parser.add_argument(
        "--models", type=Path, default=None, help="models folder (default: $HANDMOCAP_MODELS)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--threshold", type=float, default=0.35, help="hand confidence (acr)")
    from handmocap.core.commands.capture import add_acr_weights_argument

    add_acr_weights_argument(parser)
    parser.add_argument(
        "--detector",
        choices=("mediapipe", "acr"),
        default="mediapipe",
        help="what finds the two hands whose crop DIR reads (dir; default: mediapipe)",
    )
    parser.add_argument("--focal", type=float, default=None, help="focal length, image pixels")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--overlay",
        type=Path,
        default=None,
        metavar="OUT",
        help="draw the hands over the image: a PNG path for one image, a folder for several",
    )


def overlay_paths(images: list[Path], overlay: Path) -> list[Path]:
    if len(images) == 1 and overlay.suffix:
        return [overlay]
    return [overlay / f"{p.stem}_hands.png" for p in images]


def build_backend(args: argparse.Namespace):
    from handmocap.core.capture import CaptureSettings, build_backend, resolve_device
    from handmocap.core.handmodel import default_models_dir

    models = args.models if args.models is not None else default_models_dir()
    settings = CaptureSettings(focal=args.focal, threshold=args.threshold,
                               detector=args.detector, weights=args.acr_weights)  # fmt: skip
    # still images: no tracking from one image to the next
    return build_backend(args.backend, models, settings, resolve_device(args.device), video=False)


def run(args: argparse.Namespace, backend=None) -> int:
    from handmocap.core.overlay import draw_overlay
    from handmocap.core.render import save_png
    from handmocap.core.video import read_rgb

    frames = [read_rgb(p) for p in args.images]  # fail on a bad image before loading weights
    backend = backend if backend is not None else build_backend(args)
    report = []
    targets = overlay_paths(args.images, args.overlay) if args.overlay else [None] * len(frames)
    for path, frame, target in zip(args.images, frames, targets, strict=True):
        hands = backend([frame])[0]
        report.append({
            "image": str(path),
            "width": frame.shape[1],
            "height": frame.shape[0],
            "backend": backend.name,
            "hands": [hands[s].to_json() for s in ("left", "right") if s in hands],
        })  # fmt: skip
        reasons = getattr(backend, "reasons", None)  # why a backend reported no hands (dir)
        if reasons and reasons[0]:
            report[-1]["reason"] = reasons[0]
        if target is not None:
            focal, center = backend.camera(frame.shape)
            faces = {s: backend.layer.faces(s, drawing=True) for s in ("left", "right")}
            target.parent.mkdir(parents=True, exist_ok=True)
            save_png(target, draw_overlay(frame, hands, faces, focal, center))
            report[-1]["overlay"] = str(target)
    if args.json:
        print(json.dumps({"images": report}, indent=1))
        return 0
    for item in report:
        found = ", ".join(f"{h['side']} ({h['score']:.2f})" for h in item["hands"]) or "no hands"
        if "reason" in item:
            found += f": {item['reason']}"
        where = f" -> {item['overlay']}" if "overlay" in item else ""
        print(f"{item['image']}: {found}{where}")
    return 0
