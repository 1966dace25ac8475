"""pytest-xdist (-n 2): workers ship their results; the controller prints one merged summary."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import pytest_modgap
from tests.gate.helpers import GATE_TEST, PLUGIN_ARGS

REPO_ROOT = str(Path(pytest_modgap.__file__).resolve().parents[1])

FOUR_TESTS = (
    GATE_TEST
    + """

@pytest.mark.modgap(samples=100)
def test_gate_again(modgap):
    modgap.check(modgap.measure(), baseline="release")
"""
)


def test_two_workers_record_check_and_merge(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, models: dict[str, str]
) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([REPO_ROOT, os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pytester.makepyfile(test_gate=FOUR_TESTS)
    common = (
        *PLUGIN_ARGS, "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
        f"--rootdir={pytester.path}",
    )  # fmt: skip
    cache = ("--modgap-n-boot", "50", "--modgap-cache-dir", str(pytester.path / ".cache"))
    # Recording in-process first keeps this test to one (slow: each worker loads torch) xdist run.
    recorded = pytester.runpytest(
        *common, *cache, "--modgap-model", models["reference"], "--modgap-update"
    )
    recorded.assert_outcomes(passed=2)

    target = pytester.path / "modgap.json"
    result = pytester.runpytest_subprocess(
        *common,
        *cache,
        "-n",
        "2",
        "--modgap-model",
        models["reference"],
        "--modgap-model",
        models["regressed"],
        "--modgap-json",
        str(target),
    )
    result.assert_outcomes(passed=2, failed=2)
    output = result.stdout.str()
    assert output.count("== modgap ==") == 1
    result.stdout.fnmatch_lines(
        [
            "*modgap tests: 2 passed, 2 regressed, 0 updated, 0 skipped*",
            "*baseline release: regressed (centroid_gap*",
        ]
    )
    document = json.loads(target.read_text())
    assert document["counts"]["passed"] == 2 and document["counts"]["regressed"] == 2
    assert len(document["checks"]) == 4
    assert {m["model"] for m in document["measurements"]} == {
        models["reference"],
        models["regressed"],
    }
