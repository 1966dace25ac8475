"""GITHUB_STEP_SUMMARY: a Markdown section per model and data set, appended to the job summary."""

from __future__ import annotations

import pytest

from tests.gate.conftest import RunPytest
from tests.gate.helpers import GATE_TEST


def test_the_job_summary_gets_verdicts_and_the_regressed_metrics(
    pytester: pytest.Pytester,
    run: RunPytest,
    models: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    summary = pytester.path / "step_summary.md"
    summary.write_text("# Earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    run().assert_outcomes(passed=1)
    assert summary.read_text(encoding="utf-8") == "# Earlier step\n", "no modgap test: no section"
    (pytester.path / "test_plain.py").unlink()
    pytester.makepyfile(test_gate=GATE_TEST)
    run("--modgap-model", models["reference"], "--modgap-update").assert_outcomes(passed=1)
    summary.write_text("# Earlier step\n", encoding="utf-8")
    result = run("--modgap-model", models["reference"], "--modgap-model", models["regressed"])
    result.assert_outcomes(passed=1, failed=1)

    text = summary.read_text(encoding="utf-8")
    assert text.startswith("# Earlier step\n"), "the file is appended to, never replaced"
    assert "## modgap: 1 passed, 1 regressed" in text
    passed = f"### ✅ `{models['reference']}` (precomputed) (n = 100)"
    failed = f"### ❌ `{models['regressed']}` (precomputed) (n = 100)"
    assert passed in text and failed in text
    block = text.split(failed)[1]
    assert "- baseline `release`: **regressed** on " in block
    assert "| metric | baseline | obtained (CI) | change | tolerance |" in block
    gap_row = next(line for line in block.splitlines() if "| centroid_gap " in line)
    cells = [cell.strip() for cell in gap_row.strip().strip("|").split("|")]
    assert cells[0] == "centroid_gap (lower is better)"
    assert float(cells[1]) < float(cells[2].split()[0])  # baseline, then the larger gap obtained
    assert cells[2].count("[") == 1 and cells[3].startswith("+") and cells[4] == "0.0200"
    reference_block = text.split(passed)[1].split(failed)[0]
    assert "- baseline `release`: **passed**" in reference_block and "|" not in reference_block
