"""--modgap-reference-model, --modgap-truncate-dim and --modgap-report-dir (issue 5's pytest side)."""

from __future__ import annotations

import json

import pytest

from tests.gate.conftest import RunPytest
from tests.gate.helpers import GATE_TEST

MEASURE_ONLY = """
import pytest

@pytest.mark.modgap(samples=100)
def test_measure(modgap):
    report = modgap.measure()
    assert report.n == 100
"""

EXPLICIT_COMPARE = """
import pytest

@pytest.mark.modgap(samples=100)
def test_compare(modgap):
    comparison = modgap.compare()
    assert comparison.failed == []
"""


def test_candidate_worse_than_the_reference_model_fails_with_the_difference_table(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(test_gate=MEASURE_ONLY)
    result = run(
        f"--modgap-model={models['regressed']}",
        f"--modgap-reference-model={models['reference']}",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*regressed.npz is worse than the reference model *reference.npz on centroid_gap*",
            "*metric*reference*candidate*difference (95% CI)*tolerance*verdict*",
            "> centroid_gap*WORSE (lower is better)",
            "*modgap tests: 0 passed, 1 regressed*",
            "*vs reference *reference.npz*WORSE on centroid_gap*",
        ]
    )


def test_the_same_model_as_its_reference_passes(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(test_gate=EXPLICIT_COMPARE)
    result = run(
        f"--modgap-model={models['reference']}",
        f"--modgap-reference-model={models['reference']}",
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*vs reference*not worse on any metric*"])


def test_compare_without_a_reference_model_says_which_option_to_pass(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(test_gate=EXPLICIT_COMPARE)
    result = run(f"--modgap-model={models['reference']}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*compare() needs a reference model: pass --modgap-reference-model*"]
    )


def test_truncate_dim_runs_each_test_per_dimension_with_its_own_baseline_entry(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(test_gate=GATE_TEST)
    recorded = run(
        f"--modgap-model={models['reference']}",
        "--modgap-truncate-dim=4,8",
        "--modgap-update",
        "-v",
    )
    recorded.assert_outcomes(passed=2)
    recorded.stdout.fnmatch_lines(
        [
            "*test_gate?modgap:reference.npz-dim4? PASSED*",
            "*test_gate?modgap:reference.npz-dim8? PASSED*",
            "*Matryoshka sweep of *reference.npz*",
        ]
    )
    baseline = (pytester.path / "baselines" / "release.yaml").read_text()
    assert "embeddings@4:" in baseline and "embeddings@8:" in baseline
    checked = run(f"--modgap-model={models['reference']}", "--modgap-truncate-dim=4,8")
    checked.assert_outcomes(passed=2)


def test_a_bad_truncate_dim_is_a_usage_error(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(test_gate=GATE_TEST)
    result = run(f"--modgap-model={models['reference']}", "--modgap-truncate-dim=128,wide")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--modgap-truncate-dim='128,wide': expected positive integers*"])


def test_report_dir_writes_stacked_figures_and_an_index(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytest.importorskip("matplotlib")
    pytester.makepyfile(test_gate=MEASURE_ONLY)
    report_dir = pytester.path / "report"
    result = run(
        f"--modgap-model={models['reference']}",
        f"--modgap-model={models['regressed']}",
        f"--modgap-report-dir={report_dir}",
        f"--modgap-json={pytester.path / 'results.json'}",
    )
    result.assert_outcomes(passed=2)
    # Precomputed embeddings are each their own data set: one Figure 3 per file.
    figures = sorted(report_dir.glob("figure3*.png"))
    assert len(figures) == 2
    assert all(path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for path in figures)
    index = (report_dir / "index.html").read_text()
    assert "reference.npz" in index and "regressed.npz" in index
    result.stdout.fnmatch_lines([f"*figures and index.html written to {report_dir}*"])
    # The JSON artefact stays lean: the distributions travel only where the figures need them.
    saved = json.loads((pytester.path / "results.json").read_text())
    assert all("distributions" not in entry["report"] for entry in saved["measurements"])
