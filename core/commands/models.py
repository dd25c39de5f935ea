"""``handmocap models``: what the models folder holds and what each backend still needs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "models"
HELP = "list the hand models and checkpoints found, and what is missing for each backend"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--models", type=Path, default=None, help="models folder (default: $HANDMOCAP_MODELS)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from handmocap.core.models_dir import models_dir_option, scan

    report = scan(models_dir_option(args.models))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    where = report["models_dir"] or "(none: pass --models or set HANDMOCAP_MODELS)"
    print(f"models folder: {where}")
    print("hand models:")
    for m in report["hand_models"]:
        state = "available" if m["available"] else "missing: " + "; ".join(m["missing"])
        print(f"  {m['name']:<10} {state}")
    print("checkpoints:")
    for c in report["checkpoints"]:
        print(f"  {c['backend']:<10} {c['file']:<14} {'found' if c['found'] else 'not found'}")
    print("shipped weights:")
    for w in report["shipped"]:
        state = "found" if w["found"] else "missing from this installation"
        print(f"  {w['backend']:<10} {Path(w['file']).name:<14} {state} (open hand model; "
              f"see {w['about']})")  # fmt: skip
    print("backends:")
    for b in report["backends"]:
        if b["ready"] and b["missing"]:
            state = f"ready with {b['fallback']}; for the official weights it needs " + "; ".join(
                b["missing"]
            )
        elif b["ready"]:
            state = "ready"
        elif not b["code_present"]:
            state = "not built yet in this version of handmocap"
        else:
            state = "needs " + "; ".join(b["missing"])
        print(f"  {b['name']:<10} {state}")
        if not b["code_present"] and b["missing"]:
            print(f"  {'':<10} and, once built, needs " + "; ".join(b["missing"]))
    return 0
