"""The modgap terminal section: key metrics with CIs per model and data set, verdicts and counts;
nothing at all when no modgap test ran.
"""

from __future__ import annotations

import json
import re

import pytest

from pytest_modgap.gate.summary import KEY_METRICS
from tests.gate.conftest import RunPytest
from tests.gate.helpers import GATE_TEST


def test_summary_shows_key_metrics_verdicts_and_counts(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(test_gate=GATE_TEST)
    run("--modgap-model", models["reference"], "--modgap-update").assert_outcomes(passed=1)
    result = run("--modgap-model", models["reference"])
    interval = r"-?\d\.\d{4} \[-?\d\.\d{4}, -?\d\.\d{4}\]"
    result.stdout.re_match_lines(
        [
            r"=+ modgap =+",
            r"modgap tests: 1 passed, 0 regressed, 0 updated, 0 skipped",
            re.escape(f"{models['reference']} (precomputed) (n=100, samples=100, seed=0; 95% CI)"),
            *(rf"    {name} +{interval}$" for name in KEY_METRICS),
            re.escape(
                "    baseline release: passed  [test_gate.py::test_gate[modgap:reference.npz]]"
            ),
        ]
    )


def test_quiet_without_modgap_tests_but_json_still_written(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile("def test_plain():\n    pass\n")
    target = pytester.path / "modgap.json"
    result = run("--modgap-json", str(target))
    result.assert_outcomes(passed=1)
    assert "= modgap =" not in result.stdout.str() and "modgap tests:" not in result.stdout.str()
    document = json.loads(target.read_text())
    assert document["measurements"] == [] and document["counts"]["passed"] == 0


def test_report_dir_without_matplotlib_says_so_in_the_terminal(
    pytester: pytest.Pytester,
    run: RunPytest,
    models: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    pytester.makepyfile(
        test_measure="""
        import pytest

        @pytest.mark.modgap(samples=50)
        def test_measure(modgap):
            modgap.measure()
        """
    )
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    report_dir = pytester.path / "report"
    result = run("--modgap-model", models["reference"], f"--modgap-report-dir={report_dir}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            f"figures and index.html written to {report_dir}",
            "modgap: figures not drawn: matplotlib is not installed; "
            'pip install "pytest-modgap[figures]" adds it.',
        ]
    )
    assert sorted(path.name for path in report_dir.iterdir()) == ["index.html"]
