"""Every --modgap-* option has a modgap_* ini twin; the command line wins; bad values are clear."""

from __future__ import annotations

import pytest
import yaml

from pytest_modgap.gate.session import OPTIONS
from tests.gate.conftest import RunPytest
from tests.gate.helpers import GATE_TEST


def test_help_lists_every_option_and_ini_twin_in_one_group(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    output = run("--help").stdout.str()
    assert "modality-gap regression tests (pytest-modgap):" in output
    for spec in OPTIONS:
        assert spec.flag in output
        assert f"{spec.dest} (" in output  # the ini listing: "modgap_seed (string):"


def test_ini_twins_set_models_samples_baseline_dir_and_update(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(
        test_gate="""
        def test_gate(modgap):
            report = modgap.measure()
            assert report.n == 40
            modgap.check(report, baseline="release")
        """
    )
    pytester.makeini(
        f"""
        [pytest]
        modgap_model = {models["reference"]} {models["regressed"]}
        modgap_samples = 40
        modgap_baseline_dir = gates
        modgap_update = true
        """
    )
    result = run("-v")
    result.assert_outcomes(passed=2)
    assert "test_gate[modgap:reference.npz] PASSED" in result.stdout.str()
    assert "test_gate[modgap:regressed.npz] PASSED" in result.stdout.str()
    recorded = yaml.safe_load((pytester.path / "gates" / "release.yaml").read_text())
    assert recorded["datasets"]["embeddings"]["n"] == 40


def test_command_line_wins_over_the_ini_twin(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(test_gate=GATE_TEST.replace("@pytest.mark.modgap(samples=100)", ""))
    pytester.makeini(f"[pytest]\nmodgap_model = {models['regressed']}\nmodgap_samples = 40\n")
    result = run("--modgap-model", models["reference"], "--modgap-samples", "50", "--modgap-update")
    result.assert_outcomes(passed=1)
    recorded = yaml.safe_load((pytester.path / "baselines" / "release.yaml").read_text())
    assert recorded["model"] == models["reference"]
    assert recorded["datasets"]["embeddings"]["n"] == 50


def test_ini_value_of_the_wrong_type_is_a_usage_error(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makeini("[pytest]\nmodgap_samples = many\n")
    result = run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*ini option modgap_samples = 'many' is not an integer (*twin of --modgap-samples)*"]
    )
