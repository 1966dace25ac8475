"""--modgap-history: one JSON line per measurement, and the change since the previous run."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from pytest_modgap.reports.history import read_history
from tests.gate.conftest import RunPytest
from tests.gate.helpers import GATE_TEST, write_embeddings

MEASURE_TEST = """
import pytest

@pytest.mark.modgap(samples=50)
def test_measure(modgap):
    modgap.measure()
"""


def _lines(path: object) -> list[dict[str, object]]:
    with open(str(path), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_each_run_appends_its_measurements_and_shows_the_change(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(test_gate=GATE_TEST)
    history = pytester.path / "history" / "modgap.jsonl"
    run("--modgap-model", models["reference"], "--modgap-update").assert_outcomes(passed=1)
    first = run("--modgap-model", models["reference"], f"--modgap-history={history}")
    first.assert_outcomes(passed=1)
    assert "change since the previous run" not in first.stdout.str()
    first.stdout.fnmatch_lines([f"1 measurement(s) appended to {history}"])

    second = run(
        "--modgap-model",
        models["reference"],
        "--modgap-model",
        models["regressed"],
        f"--modgap-history={history}",
    )
    second.assert_outcomes(passed=1, failed=1)
    changed = [line for line in second.stdout.lines if "change since the previous run" in line]
    # Only the reference model ran before; the same embeddings give the same values.
    assert len(changed) == 1, second.stdout.str()
    assert re.search(r"\(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\): centroid_gap \+0\.0000, ", changed[0])

    entries = _lines(history)
    assert [entry["model"] for entry in entries] == [
        models["reference"],
        models["reference"],
        models["regressed"],
    ]
    entry = entries[-1]
    assert entry["format"] == "pytest-modgap-history/1" and entry["source"] == "pytest"
    assert entry["dataset"] == models["regressed"] and entry["n"] == 100
    assert entry["samples"] == 100 and entry["seed"] == 0 and entry["truncate_dim"] is None
    assert entry["git_commit"] is None  # the test folder is no git work tree
    metrics = entry["metrics"]
    assert isinstance(metrics, dict)
    low, high = metrics["alignment"]["ci"]
    assert low <= metrics["alignment"]["value"] <= high


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_entry_names_the_git_commit_and_the_ini_twin_works(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(
        test_gate="""
        import pytest

        @pytest.mark.modgap(samples=50)
        def test_gate(modgap):
            modgap.measure()
        """
    )
    pytester.makeini("[pytest]\nmodgap_history = runs/history.jsonl\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "test"]):
        subprocess.run([*git, *command], cwd=pytester.path, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=pytester.path, capture_output=True, text=True, check=True
    ).stdout.strip()
    run("--modgap-model", models["reference"]).assert_outcomes(passed=1)
    (entry,) = _lines(pytester.path / "runs" / "history.jsonl")
    assert entry["git_commit"] == head


def test_an_unwritable_history_path_stops_the_run_before_it_starts(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(test_gate=GATE_TEST)
    result = run("--modgap-model", models["reference"], f"--modgap-history={pytester.path}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--modgap-history={pytester.path}: it is a folder*"])


def test_a_data_set_path_that_is_not_utf8_writes_the_history_and_the_json(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    # Linux file names are bytes: Python gives the \xff of this one as a lone surrogate (\udcff),
    # which a strict UTF-8 encoder refuses.
    name = os.fsdecode(b"embeddings-\xff.npz")
    spec = write_embeddings(pytester.path / name, gap=0.0)
    pytester.makepyfile(test_gate=MEASURE_TEST)
    history = pytester.path / "history.jsonl"
    results = pytester.path / "results.json"
    result = run("--modgap-model", spec, f"--modgap-history={history}", f"--modgap-json={results}")
    result.assert_outcomes(passed=1)
    assert "could not write" not in result.stdout.str()
    (entry,) = read_history(history).entries
    assert entry["dataset"] == spec
    assert json.loads(results.read_text(encoding="utf-8"))["measurements"][0]["model"] == spec


def test_an_output_that_fails_never_stops_the_others(
    pytester: pytest.Pytester, run: RunPytest, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the history writer broke")

    monkeypatch.setattr("pytest_modgap.reports.history.append_history", broken)
    spec = write_embeddings(pytester.path / "reference.npz", gap=0.0)
    pytester.makepyfile(test_gate=MEASURE_TEST)
    history = pytester.path / "history.jsonl"
    results = pytester.path / "results.json"
    result = run("--modgap-model", spec, f"--modgap-history={history}", f"--modgap-json={results}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [f"modgap: could not write --modgap-history={history} (RuntimeError: the history*broke)"]
    )
    assert "Traceback" not in result.stdout.str() and not history.exists()
    assert json.loads(results.read_text(encoding="utf-8"))["measurements"][0]["model"] == spec
