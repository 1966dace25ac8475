"""pytest-html: a modgap test's row carries its metric table, verdicts and Figures 2 and 3."""

from __future__ import annotations

import html
import sys

import pytest

from tests.gate.conftest import RunPytest
from tests.gate.helpers import GATE_TEST

pytest.importorskip("pytest_html", reason="the pytest-html integration needs pytest-html")


def _report_text(path: str) -> str:
    """The report page with pytest-html's JSON blob unescaped, as a browser would read it."""
    with open(path, encoding="utf-8") as handle:
        return html.unescape(handle.read()).replace("\\/", "/").replace('\\"', '"')


def test_each_modgap_row_carries_metrics_verdicts_and_figures(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(
        test_gate=GATE_TEST,
        test_zz_after="""
        import sys

        def test_integration_not_imported_without_an_html_report():
            assert "pytest_modgap.gate.html_plugin" not in sys.modules
        """,
    )
    sys.modules.pop("pytest_modgap.gate.html_plugin", None)
    run("--modgap-model", models["reference"], "--modgap-update").assert_outcomes(passed=2)
    (pytester.path / "test_zz_after.py").unlink()
    report = str(pytester.path / "report.html")
    result = run("--modgap-model", models["regressed"], f"--html={report}", "--self-contained-html")
    result.assert_outcomes(failed=1)
    page = _report_text(report)
    assert '<div class="modgap">' in page
    section = page.split('<div class="modgap">', 1)[1].split("</div>", 1)[0]
    assert "centroid_gap" in section and "image_cone" in section and "n = 100" in section
    assert "<h2>Baseline checks</h2>" in section and "REGRESSED" in section
    assert section.count('src="data:image/png;base64,') == 1  # Figure 3 (no second captions)
