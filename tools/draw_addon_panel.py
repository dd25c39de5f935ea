"""A schematic picture of the add-on's sidebar panel, drawn from its own draw code.

Blender draws its interface only in a window, which the ``bpy`` module never opens, so no
screenshot can be taken where there is no display. ``tests/blender_addon/addon_check.py``
runs the panel's draw functions into a recording layout in each state of a real session
(installed zip, real clip) and writes what they drew: every label, property with its value,
button with its poll (greyed when it cannot run) and progress bar, in order. This script lays
those out in Blender's default dark theme, one column per state. It is a schematic: the
widgets are Blender's, the look only resembles it (rows are drawn one item per line).

Usage::

    BLENDER_USER_RESOURCES=/tmp/b HANDMOCAP_MODELS= .venv/bin/python \\
        tests/blender_addon/addon_check.py dist/handmocap-0.1.0.zip /tmp/addon.json /tmp/work \\
        VIDEO .venv/bin/python
    .venv/bin/python tools/draw_addon_panel.py /tmp/addon.json docs/addon_panel.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

STATES = (
    ("no_take", "1. Saved .blend, video chosen"),
    ("progress", "2. Capturing in the background"),
    ("cancelled", "3. Cancelled: the part done is kept"),
    ("done", "4. Captured: build, bake, retarget, export"),
)
WIDTH, LINE, PAD = 380, 26, 10
BG, PANEL, HEADER = (48, 48, 48), (61, 61, 61), (45, 45, 45)
TEXT, DIM, ALERT = (230, 230, 230), (128, 128, 128), (230, 90, 80)
FIELD, BUTTON, BAR = (34, 34, 34), (84, 84, 84), (71, 114, 179)
SKIP_PANELS = {"Preferences"}


def _font(size: int):
    return ImageFont.load_default(size=size)


def draw_state(log: list, title: str) -> Image.Image:
    """One column: the panels of one state, top to bottom."""
    lines = 2 + sum(1 for e in log if e[0] in ("panel", "label", "prop", "operator", "progress"))
    image = Image.new("RGB", (WIDTH, lines * LINE + 3 * PAD), BG)
    d = ImageDraw.Draw(image)
    font, small = _font(14), _font(13)
    d.text((PAD, PAD), title, fill=TEXT, font=_font(15))
    y = PAD + LINE + 6
    skipping = False
    for entry in log:
        kind = entry[0]
        if kind == "panel":
            skipping = entry[1] in SKIP_PANELS
            if skipping:
                continue
            y += 4
            d.rectangle((PAD, y, WIDTH - PAD, y + LINE - 4), fill=HEADER)
            d.text((PAD + 8, y + 4), f"v  {entry[1]}", fill=TEXT, font=font)
            y += LINE
            continue
        if skipping or kind not in ("label", "prop", "operator", "progress"):
            continue
        x0, x1 = PAD + 8, WIDTH - PAD - 8
        if kind == "label":
            _, icon, alert, text = entry
            colour = ALERT if alert or icon == "ERROR" else TEXT
            d.text((x0, y + 4), _fit(d, text, small, x1 - x0), fill=colour, font=small)
        elif kind == "prop":
            _, _, label, value, enabled = entry
            colour = TEXT if enabled else DIM
            if isinstance(value, bool):
                d.rectangle((x0, y + 4, x0 + 14, y + 18), fill=FIELD, outline=DIM)
                if value:
                    d.line((x0 + 3, y + 11, x0 + 6, y + 15, x0 + 12, y + 6), fill=TEXT, width=2)
                d.text((x0 + 22, y + 4), label, fill=colour, font=small)
            else:
                split = x0 + 110
                d.text((x0, y + 4), label, fill=colour, font=small)
                d.rounded_rectangle((split, y + 2, x1, y + LINE - 4), 4, fill=FIELD)
                d.text((split + 6, y + 4), _fit(d, str(value), small, x1 - split - 12),
                       fill=colour, font=small)  # fmt: skip
        elif kind == "operator":
            _, _, _, shown, enabled, _icon = entry
            d.rounded_rectangle((x0, y + 2, x1, y + LINE - 4), 4, fill=BUTTON)
            width = d.textlength(shown, font=font)
            d.text(((x0 + x1 - width) / 2, y + 3), shown, fill=TEXT if enabled else DIM,
                   font=font)  # fmt: skip
        elif kind == "progress":
            _, factor, text = entry
            d.rounded_rectangle((x0, y + 2, x1, y + LINE - 4), 4, fill=FIELD)
            if factor > 0:
                d.rounded_rectangle((x0, y + 2, x0 + (x1 - x0) * factor, y + LINE - 4), 4,
                                    fill=BAR)  # fmt: skip
            d.text((x0 + 6, y + 4), _fit(d, text, small, x1 - x0 - 12), fill=TEXT, font=small)
        y += LINE
    return image.crop((0, 0, WIDTH, y + PAD))


def _fit(d: ImageDraw.ImageDraw, text: str, font, width: float) -> str:
    """``text`` cut with an ellipsis to fit ``width`` pixels, as Blender cuts labels."""
    if d.textlength(text, font=font) <= width:
        return text
    while text and d.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..."


def draw(result: dict, out: Path) -> Path:
    columns = [draw_state(result["draws"][key], title) for key, title in STATES]
    height = max(c.height for c in columns)
    sheet = Image.new("RGB", (len(columns) * (WIDTH + PAD) + PAD, height + 2 * PAD), (30, 30, 30))
    for i, column in enumerate(columns):
        sheet.paste(column, (PAD + i * (WIDTH + PAD), PAD))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result", type=Path, help="the JSON written by addon_check.py")
    parser.add_argument("out", type=Path, help="the PNG to write")
    args = parser.parse_args()
    print(draw(json.loads(args.result.read_text()), args.out))


if __name__ == "__main__":
    main()
