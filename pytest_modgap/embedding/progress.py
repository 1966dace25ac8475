"""A one-line progress bar on stderr for long embedding runs, and silence everywhere else.

Shown when stderr is a terminal (or when asked for); captured output and CI logs stay clean.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

_BAR_WIDTH = 30
_MIN_INTERVAL_S = 0.1


def progress_enabled(progress: bool | None, stream: TextIO | None = None) -> bool:
    """``progress`` when given; otherwise whether ``stream`` (default stderr) is a terminal."""
    if progress is not None:
        return progress
    target = sys.stderr if stream is None else stream
    isatty = getattr(target, "isatty", None)
    return bool(isatty is not None and isatty())


class Progress:
    """Counts work done out of ``total``; redraws ``label [#####.....] done/total rate`` in place.

    A disabled reporter does nothing, so callers update it unconditionally. Redraws are throttled to
    ten a second so that small batches do not spend their time writing to the terminal.
    """

    def __init__(
        self, total: int, label: str, *, enabled: bool, stream: TextIO | None = None
    ) -> None:
        self.total = total
        self.label = label
        self.enabled = enabled
        self.done = 0
        self._stream = sys.stderr if stream is None else stream
        self._start = time.perf_counter()
        self._last_draw = float("-inf")

    def update(self, count: int) -> None:
        """Record ``count`` more items done and redraw if enough time has passed."""
        self.done += count
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last_draw >= _MIN_INTERVAL_S or self.done >= self.total:
            self._draw(now)

    def close(self) -> None:
        """Draw the final state and end the line."""
        if self.enabled:
            self._draw(time.perf_counter())
            self._stream.write("\n")
            self._stream.flush()

    def _draw(self, now: float) -> None:
        self._last_draw = now
        fraction = min(1.0, self.done / self.total) if self.total else 1.0
        filled = round(fraction * _BAR_WIDTH)
        elapsed = now - self._start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        bar = "#" * filled + "." * (_BAR_WIDTH - filled)
        self._stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total} {rate:,.0f}/s")
        self._stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
