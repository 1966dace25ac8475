"""--modgap-update and the check cycle: record, pass on the same model, fail on a regressed one.

Also: a missing baseline fails with the command that records it; shipped ones are never written.
"""

from __future__ import annotations

import pytest
import yaml

from tests.gate.conftest import RunPytest
from tests.gate.helpers import GATE_TEST


def test_record_then_pass_then_fail_on_regressed_model(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(test_gate=GATE_TEST)

    recorded = run("--modgap-model", models["reference"], "--modgap-update")
    recorded.assert_outcomes(passed=1)
    recorded.stdout.fnmatch_lines(["*modgap tests: 0 passed, 0 regressed, 1 updated, 0 skipped*"])
    baseline = yaml.safe_load((pytester.path / "baselines" / "release.yaml").read_text())
    assert baseline["format"] == "pytest-modgap/2"
    entry = baseline["datasets"]["embeddings"]
    assert entry["n"] == 100
    assert set(entry["metrics"]["alignment"]) == {"value", "ci"}
    assert "--modgap-update" in baseline["source"]

    same = run("--modgap-model", models["reference"])
    same.assert_outcomes(passed=1)
    same.stdout.fnmatch_lines(["*baseline release: passed*"])

    regressed = run("--modgap-model", models["regressed"])
    regressed.assert_outcomes(failed=1)
    output = regressed.stdout.str()
    assert "metric" in output and "obtained (95% CI)" in output and "tolerance" in output
    regressed.stdout.fnmatch_lines(
        [
            "*modgap: * metrics regressed (centroid_gap*) against baseline 'release'*",
            "> centroid_gap *REGRESSED (lower is better)",
            "If this change is intended, re-record the baseline with:",
        ]
    )
    command = (
        f"  pytest --modgap-model={models['regressed']} --modgap-update "
        "'test_gate.py::test_gate[modgap:regressed.npz]'\n"
    )
    assert command in output
    assert "Traceback" not in output and "INTERNALERROR" not in output
    regressed.stdout.fnmatch_lines(["*modgap tests: 0 passed, 1 regressed, 0 updated, 0 skipped*"])


def test_missing_baseline_fails_with_the_recording_command(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(test_gate=GATE_TEST)
    result = run("--modgap-model", models["reference"])
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*Baseline 'release' does not exist yet*never created silently; record this one with:*"]
    )
    command = (
        f"pytest --modgap-model={models['reference']} --modgap-update "
        "'test_gate.py::test_gate[modgap:reference.npz]'"
    )
    assert command in result.stdout.str()
    assert not (pytester.path / "baselines").exists()


def test_update_merges_a_data_set_into_an_existing_file_atomically(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    folder = pytester.path / "baselines"
    folder.mkdir()
    kept = {"n": 500, "metrics": {"alignment": {"value": 0.5}}}
    (folder / "release.yaml").write_text(
        yaml.safe_dump({"format": "pytest-modgap/1", "datasets": {"shapes": kept}})
    )
    pytester.makepyfile(test_gate=GATE_TEST)
    run("--modgap-model", models["reference"], "--modgap-update").assert_outcomes(passed=1)
    merged = yaml.safe_load((folder / "release.yaml").read_text())
    assert merged["datasets"]["shapes"] == kept
    assert merged["datasets"]["embeddings"]["n"] == 100
    assert sorted(path.name for path in folder.iterdir()) == ["release.yaml"]


def test_update_refuses_shipped_baselines(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(
        """
        def test_paper(modgap):
            modgap.check(modgap.measure(), baseline="paper/jina-embeddings-v4")
        """
    )
    result = run("--modgap-model", models["reference"], "--modgap-update")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*'paper/jina-embeddings-v4' is a published baseline*never*"])


def test_tolerance_option_and_argument(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    """A wide default tolerance lets the regressed model pass; the call's own tolerance wins."""
    pytester.makepyfile(test_gate=GATE_TEST)
    run("--modgap-model", models["reference"], "--modgap-update").assert_outcomes(passed=1)
    run("--modgap-model", models["regressed"], "--modgap-tolerance", "5").assert_outcomes(passed=1)
    pytester.makepyfile(
        test_gate=GATE_TEST.replace('baseline="release"', 'baseline="release", tolerance=0.01')
    )
    result = run("--modgap-model", models["regressed"], "--modgap-tolerance", "5")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["> centroid_gap * 0.0100 *REGRESSED*"])


def test_recording_command_repeats_the_options_that_shape_the_measurement(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(test_gate=GATE_TEST.replace("(samples=100)", ""))
    result = run(
        "--modgap-model", models["reference"], "--modgap-samples", "80",
        "--modgap-baseline-dir", "gates", "--modgap-tolerance", "0.1",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    command = (
        f"pytest --modgap-model={models['reference']} --modgap-samples=80 "
        "--modgap-baseline-dir=gates --modgap-update 'test_gate.py::test_gate[modgap:reference.npz]'"
    )
    assert command in result.stdout.str()
