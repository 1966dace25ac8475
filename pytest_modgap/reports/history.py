"""The run history: one JSON line per measurement, appended by ``--modgap-history`` and ``modgap
measure --history``, and read back for the change since the last run and the trend figures.

Appends are safe for concurrent writers: each run adds all its lines with one ``O_APPEND`` write.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pytest_modgap.errors import ModgapError

HISTORY_FORMAT = "pytest-modgap-history/1"
GIT_TIMEOUT_S = 2.0
"""How long ``git rev-parse HEAD`` may take before the commit is left out of an entry."""

CHANGE_METRICS = ("centroid_gap", "alignment", "separation", "auc", "image_cone")
"""The metrics whose change since the previous run the summaries print."""


def git_commit(directory: str | Path | None = None) -> str | None:
    """The commit checked out in ``directory`` (default: the current one), or None when it is not
    in a git work tree, git is not installed, or git does not answer within ``GIT_TIMEOUT_S``."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    if done.returncode != 0 or not commit or not all(c in "0123456789abcdef" for c in commit):
        return None
    return commit


def history_entry(
    report: Mapping[str, Any],
    *,
    model: str,
    dataset: str,
    samples: int | None,
    seed: int,
    truncate_dim: int | None = None,
    commit: str | None = None,
    source: str = "pytest",
    when: datetime | None = None,
) -> dict[str, Any]:
    """One history line from a report in ``Report.to_dict()`` form: what was measured, every
    metric with its interval, when (UTC, to the second) and at which git commit."""
    stamp = (when or datetime.now(timezone.utc)).astimezone(timezone.utc)
    metrics = {
        name: {"value": entry["value"], "ci": entry.get("ci")}
        for name, entry in report["metrics"].items()
    }
    return {
        "format": HISTORY_FORMAT,
        "time": stamp.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "model": model,
        "dataset": dataset,
        "samples": samples,
        "seed": seed,
        "truncate_dim": truncate_dim,
        "n": report["n"],
        "ci_level": report.get("ci_level"),
        "metrics": metrics,
        "git_commit": commit,
        "source": source,
    }


def append_history(path: str | Path, entries: Sequence[Mapping[str, Any]]) -> None:
    """Append ``entries`` to the history file at ``path`` (created with its folders if missing).

    All lines go out in one ``write`` on a descriptor opened with ``O_APPEND``: the kernel places
    each such write at the end of the file as a whole, so two runs (or xdist controllers of two
    runs) appending at once never interleave their lines. A write the disk cuts short raises.

    Lines are plain ASCII (``ensure_ascii``): a line separator such as U+2028 or the lone
    surrogate Python makes of a file name that is not UTF-8 is written as a ``\\u`` escape, so
    every reader splits lines at ``\\n`` only and every encoder accepts them. When an earlier
    write was cut short (a killed run, a full disk), the append starts with a newline, so the
    damaged line costs only itself and never the entry written after it.
    """
    if not entries:
        return
    data = "".join(json.dumps(entry) + "\n" for entry in entries).encode("ascii")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if _ends_mid_line(fd):
            data = b"\n" + data
        written = os.write(fd, data)
    finally:
        os.close(fd)
    if written != len(data):
        raise OSError(28, f"only {written} of {len(data)} bytes written", str(target))


def _ends_mid_line(fd: int) -> bool:
    """Whether the file open at ``fd`` is not empty and does not end with a newline."""
    size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"


@dataclass(frozen=True)
class History:
    """The readable entries of a history file, oldest first, and the lines that were not."""

    path: Path
    entries: tuple[dict[str, Any], ...]
    skipped: tuple[int, ...] = ()
    """Line numbers that do not hold a history entry (a hand edit, a disk that filled up)."""

    def previous(
        self, model: str, dataset: str, truncate_dim: int | None = None
    ) -> dict[str, Any] | None:
        """The latest entry of this model spec on this data set (and Matryoshka dimension)."""
        matching = [
            entry
            for entry in self.entries
            if entry.get("model") == model
            and entry.get("dataset") == dataset
            and entry.get("truncate_dim") == truncate_dim
        ]
        return matching[-1] if matching else None


def read_history(path: str | Path) -> History:
    """The entries of the history file at ``path`` (none when it does not exist yet).

    A line that is not a history entry is skipped and its number kept in ``History.skipped``, so
    one damaged line never hides the rest; a file that cannot be read at all is a ModgapError.
    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        return History(source, ())
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise ModgapError(
            f"History file {source} cannot be read ({reason}); give the path of a file written by "
            f"--modgap-history or `modgap measure --history`."
        ) from None
    entries: list[dict[str, Any]] = []
    skipped: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            skipped.append(number)
            continue
        if _is_entry(entry):
            entries.append(entry)
        else:
            skipped.append(number)
    return History(source, tuple(entries), tuple(skipped))


def _is_entry(entry: object) -> bool:
    """Whether a parsed line has what the readers use: model, data set, time and metrics."""
    if not isinstance(entry, dict) or entry.get("format") != HISTORY_FORMAT:
        return False
    metrics = entry.get("metrics")
    return (
        isinstance(entry.get("model"), str)
        and isinstance(entry.get("dataset"), str)
        and isinstance(entry.get("time"), str)
        and isinstance(metrics, dict)
        and all(
            isinstance(value, dict) and isinstance(value.get("value"), int | float)
            for value in metrics.values()
        )
    )


def change_text(
    previous: Mapping[str, Any],
    metrics: Mapping[str, Any],
    names: Iterable[str] = CHANGE_METRICS,
) -> str:
    """``change since the previous run (2026-01-02T03:04:05Z, abc1234): alignment -0.0123, ...``.

    ``metrics``: the new run's metrics in ``Report.to_dict()`` form (name -> {"value": ...}).
    Differences keep their sign (new minus previous).
    """
    parts = []
    before = previous["metrics"]
    for name in names:
        if name in metrics and name in before:
            difference = float(metrics[name]["value"]) - float(before[name]["value"])
            if math.isfinite(difference):
                parts.append(f"{name} {difference:+.4f}")
    return (
        f"change since the previous run ({run_label(previous)}): "
        f"{', '.join(parts) or 'no metric in common'}"
    )


def run_label(entry: Mapping[str, Any]) -> str:
    """``2026-01-02T03:04:05Z, abc1234`` (the commit when one was recorded)."""
    commit = entry.get("git_commit")
    return f"{entry['time']}, {commit[:7]}" if isinstance(commit, str) else str(entry["time"])
