"""--modgap-strict (and its ini twin): a modgap test that cannot run fails instead of skipping."""

from __future__ import annotations

import pytest

from tests.gate.conftest import RunPytest

GAP_TEST = "def test_gap(modgap):\n    modgap.measure()\n"


def test_strict_turns_the_missing_model_skip_into_an_error(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(GAP_TEST)
    result = run("--modgap-strict")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "modgap (--modgap-strict): no model to measure: pass --modgap-model=SPEC*",
            "*modgap tests: 0 passed, 0 regressed, 0 updated, 0 skipped, 1 error*",
        ]
    )


def test_strict_from_the_ini_file(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(GAP_TEST)
    pytester.makeini("[pytest]\nmodgap_strict = true\n")
    run().assert_outcomes(errors=1)


def test_strict_does_not_change_a_run_with_a_model(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(GAP_TEST)
    run("--modgap-strict", "--modgap-model", models["reference"]).assert_outcomes(passed=1)
