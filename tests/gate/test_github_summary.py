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


def test_the_job_summary_lists_the_slices_that_regressed() -> None:
    from pytest_modgap.gate.github_summary import _baseline_lines, _Measurement

    slice_row = {
        "metric": "alignment",
        "baseline": 0.70,
        "obtained": 0.55,
        "ci": [0.52, 0.58],
        "change": -0.15,
        "tolerance": 0.02,
        "better": "higher",
        "verdict": "REGRESSED",
        "slice": "outdoor",
    }
    check = {
        "baseline": "release",
        "verdict": "regressed",
        "rows": [{**slice_row, "verdict": "ok", "obtained": 0.70, "change": 0.0, "slice": None}],
        "slices": [slice_row, {**slice_row, "slice": "indoor", "verdict": "ok"}],
        "regressed_slices": ["outdoor"],
    }
    text = "\n".join(_baseline_lines(_Measurement("k", {}, [check], [], None)))
    assert "slices that regressed, worst first: `outdoor`" in text
    assert "| outdoor | alignment (higher is better) | 0.7000 | 0.5500 [0.5200, 0.5800] |" in text
    assert "indoor" not in text
