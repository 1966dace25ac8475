"""The pytest-html integration: a modgap test's row in the ``--html`` report carries its metric
table, its verdicts and (with matplotlib) Figures 2 and 3.

Imported only when pytest-html is active and writing a report, from the plugin's makereport hook.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest

    from pytest_modgap.gate.fixture import ModgapFixture
    from pytest_modgap.gate.session import ModgapSession
    from pytest_modgap.metrics.report import Report

FIGURE_DPI = 80
"""Resolution of the figures in a row: readable, and small enough for a report of many tests."""


def add_html_extras(
    report: pytest.TestReport, session: ModgapSession, fixture: ModgapFixture
) -> None:
    """Append the test's modgap section to ``report.extras``, which pytest-html shows in its row."""
    content = test_section(session, fixture)
    if not content:
        return
    from pytest_html import extras

    # pytest-html reads the extras from this attribute of the report, which it does not declare.
    setattr(report, "extras", [*getattr(report, "extras", []), extras.html(content)])  # noqa: B010


def test_section(session: ModgapSession, fixture: ModgapFixture) -> str:
    """The HTML of one test: one metric column per measurement it made, its baseline and reference
    verdicts, then the figures; '' when the test measured nothing."""
    from pytest_modgap.reports.html import (
        check_rows,
        escape,
        figures_unavailable,
        metrics_table,
        pairs_worse_section,
        verdict_table,
    )

    measured = [
        (key, report) for key in fixture.measured if (report := session.report(key)) is not None
    ]
    if not measured:
        return ""
    results = [(_column(key.dataset, key.truncate_dim), key.dataset, r) for key, r in measured]
    parts = [
        '<div class="modgap">',
        f"<p><b>modgap</b>: {escape(fixture.model)}</p>",
        metrics_table(results),
    ]
    checks = [
        row
        for check in session.checks
        if check["nodeid"] == fixture.nodeid
        for row in check_rows(check, dataset=check["dataset"])
    ]
    if checks:
        parts.append(verdict_table("Baseline checks", checks))
    for check in session.checks:
        if check["nodeid"] == fixture.nodeid and check.get("pairs_worse"):
            heading = f"{check['dataset']} against baseline {check['baseline']}"
            parts.append(pairs_worse_section(heading, check["pairs_worse"]))
    missing = figures_unavailable()
    if missing:
        parts.append(f"<p>Figures not drawn: {escape(missing)}</p>")
    else:
        parts += [_figures(label, report) for label, _, report in results]
    parts.append("</div>")
    return "\n".join(parts)


def _column(dataset: str, dim: int | None) -> str:
    return dataset if dim is None else f"{dataset} @{dim}"


def _figures(label: str, report: Report) -> str:
    """Figures 2 (when the report has text-text similarities) and 3 of one measurement."""
    from pytest_modgap.reports.figures import figure2_png, figure3_png
    from pytest_modgap.reports.html import escape

    distributions = report.distributions
    if distributions is None:
        return ""
    drawn: list[tuple[str, Any]] = []
    if distributions.text_text is not None:
        drawn.append(("Figure 2", figure2_png([(label, report)], dpi=FIGURE_DPI)))
    drawn.append(("Figure 3", figure3_png([(label, report)], dpi=FIGURE_DPI)))
    return "".join(
        f'<img alt="{name}: {escape(label)}" style="max-width: 48%" '
        f'src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'
        for name, png in drawn
    )
