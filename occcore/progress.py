"""A progress bar on stderr for long runs, fed by ``progress`` events."""
from __future__ import annotations

import sys
import time

from occcore.plugin import Event


class ProgressBar:
    """Call with events; draws ``step [#####.....] done/total`` at most 5 times a second."""

    def __init__(self, stream=None, enabled: bool | None = None, width: int = 30):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.width = width
        self._last = 0.0
        self._open = False

    def __call__(self, event: Event) -> None:
        if not self.enabled:
            return
        if event.kind == "progress" and event.total > 0:
            now = time.monotonic()
            if now - self._last < 0.2 and event.done < event.total:
                return
            self._last = now
            filled = int(self.width * min(event.done, event.total) / event.total)
            bar = "#" * filled + "." * (self.width - filled)
            label = event.message or event.step
            self.stream.write(f"\r{label:<14} [{bar}] {event.done}/{event.total}")
            self.stream.flush()
            self._open = True
        elif event.kind == "step-finished" and self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False
