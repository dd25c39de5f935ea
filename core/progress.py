"""Progress of long work: a bar for people, JSON lines for programs (the Blender add-on).

``ProgressReporter("bar")`` draws a tqdm bar on stderr with frames per second and time left;
``ProgressReporter("json")`` prints one JSON object per update on stdout, e.g.::

    {"event": "progress", "done": 128, "total": 325, "fps": 31.2, "eta_s": 6.3}

plus ``{"event": "start", ...}``, ``{"event": "message", "text": ...}`` and
``{"event": "done", ...}`` lines, each flushed at once so a reading process sees it live.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

MODES = ("bar", "json", "none")


class ProgressReporter:
    def __init__(self, mode: str = "bar", total: int | None = None, what: str = "frames"):
        if mode not in MODES:
            raise ValueError(f"progress mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode, self.total, self.what = mode, total, what
        self.done = 0
        self._start = time.perf_counter()
        self._bar = None

    def start(self, **info: Any) -> None:
        self._start = time.perf_counter()
        if self.mode == "json":
            self._emit({"event": "start", "total": self.total, **info})
        elif self.mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, unit=self.what[:-1] or "it", dynamic_ncols=True)

    def message(self, text: str) -> None:
        """A line for the user (what was picked and why, what was skipped)."""
        if self.mode == "json":
            self._emit({"event": "message", "text": text})
        elif self.mode == "bar" and self._bar is not None:
            self._bar.write(text, file=sys.stderr)
        else:  # even with no progress display, what was picked or skipped is said
            print(text, file=sys.stderr)

    def advance(self, count: int) -> None:
        self.done += count
        if self.mode == "bar" and self._bar is not None:
            self._bar.update(count)
        elif self.mode == "json":
            elapsed = max(time.perf_counter() - self._start, 1e-9)
            fps = self.done / elapsed
            left = None if self.total is None else max(self.total - self.done, 0) / max(fps, 1e-9)
            eta = None if left is None else round(left, 1)
            self._emit(
                {"event": "progress", "done": self.done, "total": self.total,
                 "fps": round(fps, 2), "eta_s": eta}
            )  # fmt: skip

    def finish(self, **info: Any) -> None:
        elapsed = time.perf_counter() - self._start
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self.mode == "json":
            self._emit({"event": "done", "done": self.done, "seconds": round(elapsed, 2), **info})

    @staticmethod
    def _emit(obj: dict) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()
