"""The run history: one JSON line per measurement, appended by ``--modgap-history`` and ``modgap
measure --history``, and read back for the change since the last run and the trend figures.

Appends are safe for concurrent writers: each run adds all its lines with one ``O_APPEND`` write.
Reads take a line at a time, so a history that has grown for years costs what its readers keep.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pytest_modgap.errors import ModgapError

if sys.platform != "win32":
    import fcntl

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
        if sys.platform != "win32":
            # Another append in flight can show its half-written end to the check below; holding
            # the lock while checking and writing keeps that from adding an empty line.
            fcntl.flock(fd, fcntl.LOCK_EX)
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


SeriesKey = tuple[str, str, int | None]
"""(model spec, data set, Matryoshka dimension): the runs whose changes are compared."""


class History:
    """A history file, read when first asked: its entries oldest first and the lines that hold none.

    The file can grow without bound (one line per measurement of every run), so what each reader
    keeps is only what it needs: ``previous`` one entry per model and data set, read in one pass a
    line at a time; ``entries`` every entry, each metric held as three floats (``MetricValues``).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._read: tuple[tuple[dict[str, Any], ...], tuple[int, ...]] | None = None
        self._latest: dict[SeriesKey, dict[str, Any]] | None = None

    @property
    def entries(self) -> tuple[dict[str, Any], ...]:
        """Every entry, in file order (oldest first); ``entry["metrics"]`` is a MetricValues."""
        return self._read_all()[0]

    @property
    def skipped(self) -> tuple[int, ...]:
        """Line numbers that do not hold a history entry (a hand edit, a disk that filled up)."""
        return self._read_all()[1]

    def previous(
        self, model: str, dataset: str, truncate_dim: int | None = None
    ) -> dict[str, Any] | None:
        """The latest entry of this model spec on this data set (and Matryoshka dimension).

        The first call reads the file once and keeps the last entry of every series, so asking for
        each measurement of a run costs one pass, and memory does not grow with the file.
        """
        if self._latest is None:
            found = (
                self._read[0]
                if self._read is not None
                else (entry for _, entry in _scan(self.path) if entry is not None)
            )
            self._latest = {_series(entry): entry for entry in found}
        return self._latest.get((model, dataset, truncate_dim))

    def _read_all(self) -> tuple[tuple[dict[str, Any], ...], tuple[int, ...]]:
        if self._read is None:
            compact = _Compactor()
            entries: list[dict[str, Any]] = []
            skipped: list[int] = []
            for number, entry in _scan(self.path):
                if entry is None:
                    skipped.append(number)
                else:
                    entries.append(compact.entry(entry))
            self._read = (tuple(entries), tuple(skipped))
        return self._read


class MetricValues(Mapping[str, dict[str, Any]]):
    """An entry's metrics, name -> ``{"value": v, "ci": [low, high] or None}``, held as floats.

    A parsed metric costs about 400 bytes in dicts, lists and floats, and a 100 MB history holds
    a million of them; here it costs 24 bytes, and entries with the same metric names share one
    name table. Each lookup builds a fresh dict, so readers cannot change the history by accident.
    """

    __slots__ = ("_index", "_numbers")

    def __init__(self, index: dict[str, int], numbers: array[float]) -> None:
        self._index = index
        self._numbers = numbers

    def __getitem__(self, name: str) -> dict[str, Any]:
        start = 3 * self._index[name]
        value, low, high = self._numbers[start : start + 3]
        return {"value": value, "ci": None if math.isnan(low) else [low, high]}

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def __repr__(self) -> str:
        return f"MetricValues({dict(self)!r})"


class _Compactor:
    """Turns parsed entries into compact ones, sharing the strings and name tables they repeat."""

    def __init__(self) -> None:
        self._strings: dict[str, str] = {}
        self._tables: dict[tuple[str, ...], dict[str, int]] = {}

    def entry(self, entry: dict[str, Any]) -> dict[str, Any]:
        metrics: dict[str, dict[str, Any]] = entry["metrics"]
        names = tuple(metrics)
        table = self._tables.get(names)
        if table is None:
            table = self._tables[names] = {name: i for i, name in enumerate(names)}
        numbers = array("d")
        for metric in metrics.values():
            numbers.extend((float(metric["value"]), *_interval(metric.get("ci"))))
        compact = {
            self._shared(key): self._shared(value) if key in _REPEATED_FIELDS else value
            for key, value in entry.items()
        }
        compact["metrics"] = MetricValues(table, numbers)
        return compact

    def _shared(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._strings.setdefault(value, value)
        return value


_REPEATED_FIELDS = frozenset({"model", "dataset", "source", "git_commit", "format"})
"""The fields whose values repeat from entry to entry (each run's time is its own)."""


def _interval(ci: object) -> tuple[float, float]:
    """``ci`` as (low, high); NaN, NaN when the entry has none (or holds no two numbers)."""
    if (
        isinstance(ci, list | tuple)
        and len(ci) == 2
        and all(isinstance(bound, int | float) for bound in ci)
    ):
        return float(ci[0]), float(ci[1])
    return math.nan, math.nan


def read_history(path: str | Path) -> History:
    """The history file at ``path`` (no entries when it does not exist yet), read on first use.

    A line that is not a history entry is skipped and its number kept in ``History.skipped``, so
    one damaged line never hides the rest; a file that cannot be read at all is a ModgapError.
    Lines are split at ``\\n`` only: a U+2028 that an older version wrote raw inside a data set
    path is text, not a line end.
    """
    source = Path(path)
    try:
        source.open("rb").close()
    except FileNotFoundError:
        pass
    except OSError as error:
        raise _unreadable(source, error) from None
    return History(source)


def _scan(path: Path) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """Each non-blank line's number and its entry (None when it holds none), a line at a time."""
    try:
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield number, _parse(line)
    except FileNotFoundError:
        return
    except OSError as error:
        raise _unreadable(path, error) from None


def _parse(line: bytes) -> dict[str, Any] | None:
    """The entry on one line, or None for anything else (JSON or not, valid UTF-8 or not)."""
    try:
        entry = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return entry if _is_entry(entry) else None


def _unreadable(path: Path, error: OSError) -> ModgapError:
    reason = error.strerror or str(error)
    return ModgapError(
        f"History file {path} cannot be read ({reason}); give the path of a file written by "
        f"--modgap-history or `modgap measure --history`."
    )


def _series(entry: Mapping[str, Any]) -> SeriesKey:
    return entry["model"], entry["dataset"], entry.get("truncate_dim")


def _is_entry(entry: object) -> bool:
    """Whether a parsed line has what the readers use: model, data set, time, dimension and
    metrics with numeric values."""
    if not isinstance(entry, dict) or entry.get("format") != HISTORY_FORMAT:
        return False
    metrics = entry.get("metrics")
    dim = entry.get("truncate_dim")
    return (
        isinstance(entry.get("model"), str)
        and isinstance(entry.get("dataset"), str)
        and isinstance(entry.get("time"), str)
        and (dim is None or (isinstance(dim, int) and not isinstance(dim, bool)))
        and isinstance(metrics, dict)
        and all(
            isinstance(value, dict)
            and isinstance(value.get("value"), int | float)
            and not isinstance(value.get("value"), bool)
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
