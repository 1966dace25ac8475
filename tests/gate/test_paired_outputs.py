"""A check paired with its baseline's snapshot, as CI users read it: the failure text, the JSON
report, the HTML report (pairs with thumbnails, the baseline's figures beside the candidate's) and
the GitHub job summary."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pytest_modgap.reference import reference_model_dir
from tests.gate.conftest import REFERENCE_SAMPLES, RunPytest

GATE = f"""
import pytest

@pytest.mark.modgap(dataset="shapes", samples={REFERENCE_SAMPLES})
def test_gate(modgap):
    modgap.check(modgap.measure(), baseline="release")
"""


def test_a_paired_failure_reaches_every_output(
    pytester: pytest.Pytester,
    run: RunPytest,
    reference_embeddings: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytester.makepyfile(test_gate=GATE)
    cache = ("--modgap-cache-dir", str(reference_embeddings))
    reference = f"--modgap-model={reference_model_dir('reference')}"
    regressed = f"--modgap-model={reference_model_dir('regressed')}"
    run(*cache, reference, "--modgap-update").assert_outcomes(passed=1)
    assert list((pytester.path / "baselines" / "release.snapshots").glob("*.npz"))

    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    report_dir = pytester.path / "report"
    result = run(
        *cache,
        regressed,
        f"--modgap-json={pytester.path / 'out.json'}",
        f"--modgap-report-dir={report_dir}",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*change (paired CI)*",
            "> alignment * -0.5* [[]-0.5*, -0.5*[]] *REGRESSED (higher is better)",
            "The change column is paired*",
            "Pairs that got worse, matched similarity dropped most*",
            "  shapes pair * 'a *'  0.* -> 0.*",
        ]
    )

    (check,) = json.loads((pytester.path / "out.json").read_text())["checks"]
    assert len(check["pairs_worse"]["similarity"]) == 20
    assert check["pairs_worse"]["similarity"][0]["thumbnail"].startswith("data:image/png;base64,")
    assert all(row["change_ci"] is not None for row in check["rows"])

    page = (report_dir / "index.html").read_text()
    assert "Pairs that got worse" in page and 'class="thumb" src="data:image/png;base64,' in page
    assert "baseline release" in page  # the baseline's own column beside the candidate's
    header = re.search(r"<h2>Baseline checks</h2>\s*<table>\s*<thead><tr>(.*?)</tr>", page)
    assert header is not None
    columns = re.findall(r"<th>(.*?)</th>", header.group(1))
    assert columns[:6] == ["model", "dataset", "baseline", "metric", "verdict", "baseline_value"]
    assert "change_ci" in columns
    assert "<td>release</td>" in page  # the baseline is named, not overwritten by its value

    text = summary.read_text()
    assert "<details><summary>Pairs that got worse</summary>" in text
    assert "matched similarity dropped most" in text and "shapes pair" in text
