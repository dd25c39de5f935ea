"""``handmocap check``: what this Python can run (the add-on's Check button runs it)."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

NAME = "check"
HELP = "report this Python's handmocap, torch, CUDA devices and the backends ready to capture"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--models", type=Path, default=None, help="models folder (default: $HANDMOCAP_MODELS)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def report(models_dir: Path | None) -> dict:
    """The facts, JSON-ready: versions, CUDA devices, and per backend ready or what it lacks."""
    from handmocap.core import __version__
    from handmocap.core.models_dir import scan

    out = {"handmocap": __version__, "python": sys.executable,
           "python_version": platform.python_version(), "torch": None,
           "cuda": {"available": False, "devices": []}}  # fmt: skip
    try:
        import torch
    except ImportError as exc:
        out["torch_error"] = str(exc)
    else:
        out["torch"] = torch.__version__
        if torch.cuda.is_available():
            names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            out["cuda"] = {"available": True, "devices": names}
    found = scan(models_dir)
    out["models_dir"] = found["models_dir"]
    out["backends"] = found["backends"]
    return out


def summary(facts: dict) -> str:
    """One line for a person: what is there, which backends are ready."""
    cuda = facts["cuda"]
    gpu = ", ".join(cuda["devices"]) if cuda["available"] else "no CUDA device"
    torch = f"torch {facts['torch']}" if facts["torch"] else "no torch"
    ready = [b["name"] for b in facts["backends"] if b["ready"]]
    return (f"handmocap {facts['handmocap']}, Python {facts['python_version']}, {torch}, {gpu}; "
            f"backends ready: {', '.join(ready) or 'none'}")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from handmocap.core.models_dir import models_dir_option

    facts = report(models_dir_option(args.models))
    if args.json:
        print(json.dumps(facts, indent=2))
        return 0
    print(summary(facts))
    for b in facts["backends"]:
        if not b["ready"]:
            print(f"  {b['name']}: needs " + "; ".join(b["missing"]))
    return 0
