"""Fixtures of the plugin tests: pytester, reference / regressed embeddings, a plugin runner.

Every run is offline, uses a cache under the test's own folder and a small bootstrap, so it is fast.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.gate.helpers import PLUGIN_ARGS, write_embeddings

# These tests need the pytester plugin: pyproject's addopts enables it for the suite ("-p pytester"),
# since pytest refuses pytest_plugins in a conftest below the rootdir.

RunPytest = Callable[..., pytest.RunResult]

# Plugins the inner runs do not need: hypothesis' pytest plugin alone adds ~2 s to every in-process
# run here, and the unraisable-exception check ends each run with full gc passes over this process.
FAST_ARGS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:unraisableexception")


@pytest.fixture(scope="session", autouse=True)
def _heavy_modules_loaded(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Import torch and the measurement stack once, in this process.

    In-process pytester runs drop every module they import when they end; torch cannot be imported
    twice in one process, so it has to be loaded before the first run (and is then kept).
    """
    from pytest_modgap.embedding.measurement import measure

    spec = write_embeddings(tmp_path_factory.mktemp("warmup") / "warm.npz", gap=0.0, n=8)
    measure(spec, n_boot=10)


REFERENCE_SAMPLES = 200
"""Pairs of ``shapes`` that ``reference_embeddings`` holds for both shipped models."""


@pytest.fixture(scope="session")
def reference_embeddings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An embedding cache holding both shipped models' embeddings of ``REFERENCE_SAMPLES`` shapes
    pairs (seed 0), measured in this process.

    Measuring here loads transformers once for the session (in-process runs would drop and
    re-import it each time); the runs of the tests then read their embeddings from the cache and,
    since a cache hit loads no model, import no transformers at all.
    """
    from pytest_modgap.embedding.measurement import measure
    from pytest_modgap.reference import reference_model_dir

    cache = tmp_path_factory.mktemp("reference-cache")
    for variant in ("reference", "regressed"):
        measure(
            str(reference_model_dir(variant)),
            "shapes",
            samples=REFERENCE_SAMPLES,
            cache_dir=cache,
            n_boot=10,
        )
    return cache


@pytest.fixture
def models(pytester: pytest.Pytester) -> dict[str, str]:
    """``reference`` (small gap) and ``regressed`` (large gap) embeddings in the test folder."""
    return {
        "reference": write_embeddings(pytester.path / "reference.npz", gap=0.0),
        "regressed": write_embeddings(pytester.path / "regressed.npz", gap=3.0),
    }


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> RunPytest:
    """Run pytest in-process with the plugin: offline, a private cache, 50 bootstrap resamples."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    cache = str(pytester.path / ".modgap-cache")

    # pytest picks its rootdir before any plugin is loaded, so the value of "--modgap-model PATH"
    # counts as a path there and could move the rootdir (and the default baseline folder) out of
    # the test's folder: pin it.
    rootdir = f"--rootdir={pytester.path}"

    def run_pytest(*args: str) -> pytest.RunResult:
        base = (*PLUGIN_ARGS, *FAST_ARGS, rootdir, "--modgap-cache-dir", cache)
        return pytester.runpytest(*base, "--modgap-n-boot", "50", *args)

    return run_pytest
