"""Benchmark of pytest-modgap's start-up cost on a suite with no modgap tests (target: <= 5%).

Runs a generated 100-test suite with the plugin and without it (-p no:modgap), interleaved, and
prints the median wall and CPU times and the overhead ratio, and what the plugin costs to import.
Run: python benchmarks/bench_startup.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 0.05

# The plugin loads from its pytest11 entry point once the project is installed; from a checkout it
# is named with -p, and "without" is then simply not naming it.
INSTALLED = bool(importlib.metadata.entry_points(group="pytest11", name="modgap"))
WITH_PLUGIN: tuple[str, ...] = () if INSTALLED else ("-p", "pytest_modgap.gate.plugin")
WITHOUT_PLUGIN: tuple[str, ...] = ("-p", "no:modgap") if INSTALLED else ()


def write_suite(folder: Path, files: int = 10, tests_per_file: int = 10) -> None:
    """A plain suite: ``files`` modules of ``tests_per_file`` trivial tests, and an ini file."""
    (folder / "pytest.ini").write_text("[pytest]\n")
    for index in range(files):
        body = "\n".join(
            f"def test_{index}_{number}():\n    assert {number} + 1 == {number + 1}\n"
            for number in range(tests_per_file)
        )
        (folder / f"test_plain_{index}.py").write_text(body)


def environment(pycache: Path) -> dict[str, str]:
    """The subprocesses' environment: the checkout importable, and bytecode caching on.

    Users' installs keep .pyc files; with PYTHONDONTWRITEBYTECODE set (as on some CI images) every
    run would recompile and re-assertion-rewrite the plugin's modules, which measures the compiler,
    not the plugin. The caches go to a private PYTHONPYCACHEPREFIX so the checkout stays clean.
    """
    variables = {
        key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"
    }
    paths = [str(ROOT), os.environ.get("PYTHONPATH", "")]
    variables.update(
        PYTHONPATH=os.pathsep.join(filter(None, paths)), PYTHONPYCACHEPREFIX=str(pycache)
    )
    return variables


def run_once(folder: Path, plugin_args: tuple[str, ...]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one ``python -m pytest -q`` run, in seconds.

    CPU time is the steadier of the two on a shared machine: other processes stretch wall time.
    """
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugin_args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    completed = subprocess.run(
        command, cwd=folder, env=environment(folder / "pycache"), capture_output=True, text=True
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0:
        raise SystemExit(
            f"pytest failed ({' '.join(command)}):\n{completed.stdout}{completed.stderr}"
        )
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def plugin_import_seconds(folder: Path, repeats: int) -> float:
    """Median time to import pytest_modgap.gate.plugin in a fresh interpreter that already has pytest."""
    code = (
        "import time, pytest; s = time.perf_counter(); import pytest_modgap.gate.plugin; "
        "print(time.perf_counter() - s)"
    )
    command = [sys.executable, "-c", code]
    variables = environment(folder / "pycache")
    samples = [
        float(
            subprocess.run(
                command, env=variables, capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(repeats)
    ]
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="runs per variant (default 15)")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        write_suite(folder)
        run_once(folder, WITH_PLUGIN)  # warm the file system and bytecode caches
        with_times, without_times = [], []
        # Interleaved, so a background load affects both variants alike.
        for _ in range(arguments.repeats):
            without_times.append(run_once(folder, WITHOUT_PLUGIN))
            with_times.append(run_once(folder, WITH_PLUGIN))
        import_seconds = plugin_import_seconds(folder, 5)

    print(
        f"plugin loaded from: {'pytest11 entry point' if INSTALLED else '-p pytest_modgap.gate.plugin'}"
    )
    print(f"suite: 100 plain tests, {arguments.repeats} interleaved runs per variant, medians")
    for index, label in ((0, "wall time"), (1, "CPU time ")):
        without = statistics.median(times[index] for times in without_times)
        with_plugin = statistics.median(times[index] for times in with_times)
        overhead = with_plugin / without - 1.0
        verdict = "OK" if overhead <= TARGET else "OVER"
        print(
            f"  {label}: without {without * 1000:7.1f} ms, with {with_plugin * 1000:7.1f} ms, "
            f"overhead {overhead:+.1%} (target <= {TARGET:.0%}: {verdict})"
        )
    print(f"  import of pytest_modgap.gate.plugin alone: {import_seconds * 1000:.1f} ms")


if __name__ == "__main__":
    main()
