"""``handmocap info TAKE``: what a take holds, as a short text block or one JSON object."""

from __future__ import annotations

import argparse
from typing import Any

NAME = "info"
HELP = "Summarize a take: frames, duration, hands detected, backend, and whether it is complete."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments: the take directory and ``--json``."""
    parser.add_argument("take", help="the take directory (NAME.take)")
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object (for scripts) instead of text"
    )


def run(args: argparse.Namespace) -> int:
    """Read and check the whole take, then print its summary; a bad take raises TakeError."""
    import json

    from handmocap.core.take import read_take, summarize

    summary = summarize(read_take(args.take))
    print(json.dumps(summary) if args.json else format_summary(summary))
    return 0


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.1f} %"


def format_summary(summary: dict[str, Any]) -> str:
    """The plain-text block of ``handmocap info`` for a :func:`~handmocap.core.take.summarize`."""
    s = summary
    state = "complete" if s["complete"] else "incomplete (capture stopped; resume to finish)"
    expected = f" of {s['frame_count']} expected" if s["frame_count"] is not None else ""
    checkpoint = f", checkpoint {s['checkpoint']}" if s["checkpoint"] else ""
    per_frame = s["hands_per_frame"]
    rates = s["detection_rate"]
    lines = [
        f"take        {s['path']}  [{state}]",
        f"source      {s['source'] or '(none)'}",
        f"frames      {s['frames']}{expected}, {s['duration_s']:.2f} s at {s['fps']:g} fps, "
        f"{s['chunks']} chunk{'s' if s['chunks'] != 1 else ''}",
        f"frame size  {s['width']} x {s['height']} px, focal length {s['focal_length']:g} px",
        f"backend     {s['backend']}{checkpoint}, hand model {s['hand_model']}",
        f"hands       0 in {per_frame['0']} frames, 1 in {per_frame['1']}, 2 in {per_frame['2']}",
        f"detected    left {_percent(rates['left'])}, right {_percent(rates['right'])}",
    ]
    for side in ("left", "right"):
        g, st = s["gaps"][side], s["status"][side]
        if g["count"]:
            lines.append(
                f"gaps {side:<6} {g['count']}, longest {g['longest']} frames; missing frames: "
                f"{st['not_detected']} not detected, {st['low_score']} low score, "
                f"{st['rejected']} rejected by tracking"
            )
        else:
            lines.append(f"gaps {side:<6} none")
    from handmocap.core.smoothing import describe_presets

    lines.append("smoothing   presets for preview and bake (the take itself stays raw):")
    lines += [f"            {line}" for line in describe_presets().splitlines()]
    return "\n".join(lines)
