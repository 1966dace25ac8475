"""Benchmark of the memory a large run history costs its readers: a ~100 MB history (44,000 entries).

Writes the history into a temporary folder, then runs each reader in a process of its own and prints
its resident memory before the call (after the imports), its peak (ru_maxrss), what the call added
(the peak less the start) and the seconds the call took. Readers: reading the file once (the reference),
`modgap history PATH` (prints every run), and the change-since-previous lookup of
`modgap measure --history` and pytest --modgap-history (the last entry of one model and data set).
Run: python benchmarks/bench_history.py [--entries N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import resource
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_data import run_child  # noqa: E402

from pytest_modgap.reports.history import append_history, read_history  # noqa: E402

MODELS = ("./checkpoints/release", "./checkpoints/candidate", "openai/clip-vit-base-patch32")
DATASETS = ("shapes", "flickr30k:/data/flickr30k", "mscoco:/data/coco", "cifar100:/data/cifar")
METRICS = 24
"""Metrics per entry: about what a report with text2, retrieval and zero-shot metrics holds."""
CHUNK = 1000


def _entry(number: int) -> dict[str, object]:
    """History entry ``number``: a model and data set in turn, every metric with its interval."""
    value = (number % 997) / 997
    metrics = {
        f"metric_{index:02d}": {"value": value + index, "ci": [value + index - 0.01, value + index]}
        for index in range(METRICS)
    }
    when = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=number)
    return {
        "format": "pytest-modgap-history/1",
        "time": when.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "model": MODELS[number % len(MODELS)],
        "dataset": DATASETS[number % len(DATASETS)],
        "samples": 1000,
        "seed": 0,
        "truncate_dim": None,
        "n": 1000,
        "ci_level": 0.95,
        "metrics": metrics,
        "git_commit": f"{number:040x}",
        "source": "pytest",
    }


def write_history(path: Path, entries: int) -> None:
    """``entries`` lines, appended in chunks as many runs would."""
    for start in range(0, entries, CHUNK):
        append_history(path, [_entry(n) for n in range(start, min(entries, start + CHUNK))])


def _child(task: str, path: str) -> None:
    """Run one reader in this process and print its peak memory as one JSON line."""
    if task == "history":
        from pytest_modgap.cli import main

    before_mb = _resident_mb()
    started = time.perf_counter()
    if task == "read-once":
        Path(path).read_bytes()
    elif task == "previous":
        found = read_history(path).previous(MODELS[0], DATASETS[0])
        assert found is not None, "the lookup found no previous run"
    elif task == "history":
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["history", path]) == 0
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"before_mb": before_mb, "peak_mb": peak_mb, "seconds": seconds}))


def _resident_mb() -> float:
    """The resident size of this process now (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def _measure(task: str, path: Path) -> dict[str, float]:
    return run_child(__file__, [task, str(path)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=44_000)
    parser.add_argument("--keep", type=Path, help="write the history here and keep it")
    parser.add_argument("--child", nargs=2, metavar=("TASK", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    with tempfile.TemporaryDirectory() as temporary:
        folder = args.keep or Path(temporary)
        path = folder / "history.jsonl"
        path.unlink(missing_ok=True)
        write_history(path, args.entries)
        print(f"history: {args.entries:,} entries, {path.stat().st_size / 2**20:.1f} MB ({path})")
        print(f"{'reader':<44}{'RSS before':>12}{'peak RSS':>12}{'added':>12}{'seconds':>10}")
        for task, label in (
            ("read-once", "reference: Path.read_bytes() once"),
            ("history", "modgap history PATH"),
            ("previous", "change since previous (measure --history)"),
        ):
            found = _measure(task, path)
            print(
                f"{label:<44}{found['before_mb']:>9.1f} MB{found['peak_mb']:>9.1f} MB"
                f"{found['peak_mb'] - found['before_mb']:>9.1f} MB{found['seconds']:>10.2f}"
            )


if __name__ == "__main__":
    main()
