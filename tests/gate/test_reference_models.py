"""End to end on real (tiny, offline) CLIP models: record with the reference model, pass on it, fail
on the regressed one; the shipped example file is the user test.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import pytest_modgap
from pytest_modgap.reference import reference_model_dir
from tests.gate.conftest import RunPytest

EXAMPLE = Path(pytest_modgap.__file__).resolve().parents[1] / "examples" / "test_modgap_example.py"


def test_example_records_passes_on_reference_and_fails_on_regressed(
    pytester: pytest.Pytester, run: RunPytest, reference_embeddings: Path
) -> None:
    shutil.copy(EXAMPLE, pytester.path / EXAMPLE.name)
    reference = str(reference_model_dir("reference"))
    regressed = str(reference_model_dir("regressed"))
    cache = ("--modgap-cache-dir", str(reference_embeddings))

    # "--modgap-model=PATH": pytest would take a separate PATH for a test path when it picks the
    # rootdir (before plugins load); the conftest pins --rootdir, users should use this form.
    recorded = run(*cache, f"--modgap-model={reference}", "--modgap-update")
    recorded.assert_outcomes(passed=2)
    assert (pytester.path / "baselines" / "shapes-release.yaml").is_file()

    result = run(*cache, f"--modgap-model={reference}", f"--modgap-model={regressed}", "-v")
    result.assert_outcomes(passed=2, failed=2)
    output = result.stdout.str()
    assert "test_no_gap_regression[modgap:reference] PASSED" in output
    assert "test_no_gap_regression[modgap:regressed] FAILED" in output
    result.stdout.fnmatch_lines(
        [
            "*regressed (centroid_gap, * against baseline 'shapes-release'*data set 'shapes'*",
            "> centroid_gap *REGRESSED (lower is better)",
            "> alignment *REGRESSED (higher is better)",
            "If this change is intended, re-record the baseline with:",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*modgap tests: 2 passed, 1 regressed, 0 updated, 0 skipped, 1 failed*"]
    )
    result.stdout.fnmatch_lines(["E       assert 0.38* >= 0.6"])  # the example's absolute floor
