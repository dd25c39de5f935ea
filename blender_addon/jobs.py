"""handmocap commands run in another Python, watched without blocking Blender.

Capture needs torch and a backend, which Blender's own Python does not have: the add-on runs
``python -m handmocap.core.cli COMMAND ...`` in the external Python named in its preferences.
A :class:`Job` starts that process and two reader threads; the threads only parse the
process's output into a queue. Everything else, Blender included, happens on the main thread
when the add-on's timer calls :meth:`Job.poll`. Nothing here imports ``bpy``.

Commands that report progress print JSON lines on stdout (``--progress json``, see
``core/progress.py``); their errors are the last ``handmocap CMD: error: ...`` line on stderr.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

RUNNING, DONE, FAILED, CANCELLED = "running", "done", "failed", "cancelled"
CANCEL_GRACE_S = 10.0  # after a cancel, the process gets this long to stop before it is killed


def command_line(python: str, *args: str) -> list[str]:
    return [python, "-m", "handmocap.core.cli", *args]


@dataclass
class Job:
    """One command in the external Python; ``poll`` it from the main thread."""

    python: str
    args: list[str]
    title: str  # what the panel calls it: "Capturing asl_hand"
    env: dict | None = None
    state: str = RUNNING
    done: int = 0
    total: int | None = None
    fps: float | None = None
    eta_s: float | None = None
    messages: list[str] = field(default_factory=list)
    output: Path | None = None  # what the command writes (a take, a video), for when it ends
    result: dict = field(default_factory=dict)  # the command's final JSON ("done" event)
    error: str = ""
    started: float = field(default_factory=time.monotonic)
    _proc: subprocess.Popen | None = None
    _events: queue.Queue = field(default_factory=queue.Queue)
    _stderr: collections.deque = field(default_factory=lambda: collections.deque(maxlen=40))
    _stdout_text: list[str] = field(default_factory=list)
    _cancel_at: float | None = None
    _readers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Job:
        """Start the process; a Python that cannot be started fails the job at once."""
        kwargs = {}
        if os.name == "posix":
            kwargs["start_new_session"] = True  # Blender's Ctrl+C does not reach it
        else:
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        try:
            self._proc = subprocess.Popen(
                command_line(self.python, *self.args), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
                encoding="utf-8", errors="replace", env=self.env, **kwargs,
            )  # fmt: skip
        except OSError as exc:
            self.state, self.error = FAILED, f"cannot run {self.python}: {exc.strerror or exc}"
            return self
        for stream, sink in ((self._proc.stdout, self._read_stdout),
                             (self._proc.stderr, self._stderr.append)):  # fmt: skip
            reader = threading.Thread(target=self._pump, args=(stream, sink), daemon=True)
            reader.start()
            self._readers.append(reader)
        return self

    # --- reader threads: parse only, no bpy, no shared state but the queue and the deque ---

    @staticmethod
    def _pump(stream, sink) -> None:
        for line in stream:
            sink(line.rstrip("\n"))
        stream.close()

    def _read_stdout(self, line: str) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        self._events.put(event if isinstance(event, dict) else {"event": "text", "text": line})

    # --- main thread ---

    @property
    def running(self) -> bool:
        return self.state == RUNNING

    @property
    def fraction(self) -> float | None:
        """Done over total, when the command said how much there is."""
        if not self.total:
            return None
        return min(max(self.done / self.total, 0.0), 1.0)

    def poll(self) -> bool:
        """Take in what the process said; -> True while it runs."""
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
            self._take(event)
        if self.state != RUNNING or self._proc is None:
            return False
        code = self._proc.poll()
        if code is None:
            if self._cancel_at is not None and time.monotonic() > self._cancel_at + CANCEL_GRACE_S:
                self._proc.kill()
            return True
        for reader in self._readers:  # the pipes are closed: the last lines come at once
            reader.join(timeout=5)
        while not self._events.empty():
            self._take(self._events.get_nowait())
        if self._cancel_at is not None:
            self.state = CANCELLED
        elif code == 0:
            self.state = DONE
        else:
            self.state, self.error = FAILED, self._error_text(code)
        return False

    def cancel(self) -> None:
        """Ask the process to stop (an interrupt: a capture keeps every finished chunk)."""
        if self._proc is None or self.state != RUNNING or self._cancel_at is not None:
            return
        self._cancel_at = time.monotonic()
        if os.name == "posix":
            self._proc.send_signal(signal.SIGINT)
        else:
            self._proc.send_signal(signal.CTRL_BREAK_EVENT)

    def wait(self, timeout: float, interval: float = 0.1) -> bool:
        """Poll until the job ends or ``timeout`` s pass (scripts and tests); -> ended."""
        end = time.monotonic() + timeout
        while self.poll():
            if time.monotonic() > end:
                return False
            time.sleep(interval)
        return True

    def _take(self, event: dict) -> None:
        kind = event.get("event")
        if kind in ("start", "progress", "done"):
            self.total = event.get("total", self.total)
            self.done = event.get("done", self.done)
            self.fps = event.get("fps", self.fps)
            self.eta_s = event.get("eta_s", self.eta_s)
        if kind == "done":
            self.result = event
        elif kind == "message":
            self.messages.append(str(event.get("text", "")))
        elif kind == "text":  # not a progress line: kept whole for stdout_json
            self._stdout_text.append(event["text"])

    def stdout_json(self) -> dict | None:
        """The command's whole stdout read as one JSON object (``--json`` commands)."""
        try:
            value = json.loads("\n".join(self._stdout_text))
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def _error_text(self, code: int) -> str:
        lines = [line for line in self._stderr if line.strip()]
        for line in reversed(lines):
            if ": error: " in line and line.startswith("handmocap"):
                return line.split(": error: ", 1)[1]
        if any("No module named handmocap" in line for line in lines):
            return f"handmocap is not installed in {self.python}"
        tail = lines[-1] if lines else "no message"
        return f"exited with status {code}: {tail}"


def default_python() -> str:
    """A guess for the preferences: a handmocap virtual environment's Python, when the
    ``handmocap`` command is on PATH, else empty (the user names one)."""
    import shutil

    found = shutil.which("handmocap")
    if not found:
        return ""
    folder = Path(found).resolve().parent
    for name in ("python", "python3", "python.exe"):
        if (folder / name).is_file():
            return str(folder / name)
    return ""
