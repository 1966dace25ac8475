"""Tolerances are finite and >= 0 wherever they come in (issue 9, item 3).

Every comparison with NaN is false, so a NaN (or infinite) tolerance would pass every check, and a
negative one would fail every check: the option, its ini twin, every ``tolerance=`` argument and
every tolerance in a baseline file refuse them, naming where the value came from.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from pytest_modgap.errors import BaselineError, ModgapInputError
from pytest_modgap.gate import baselines as baseline
from pytest_modgap.gate.baselines import assert_no_regression
from pytest_modgap.metrics.paired import compare_embeddings
from tests.gate.conftest import RunPytest
from tests.gate.helpers import GATE_TEST
from tests.gate.test_baseline_engine import make_report

BAD = ["nan", "inf", "-0.01"]


@pytest.mark.parametrize("value", BAD)
def test_the_tolerance_option_is_a_usage_error_before_any_test(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str], value: str
) -> None:
    pytester.makepyfile(test_gate=GATE_TEST)
    result = run("--modgap-model", models["regressed"], f"--modgap-tolerance={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    result.stderr.fnmatch_lines(
        [f"*--modgap-tolerance={float(value)}: a tolerance must be a finite number >= 0*"]
    )
    assert "test_gate" not in result.stdout.str()


def test_the_ini_twin_is_checked_and_named(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(test_gate=GATE_TEST)
    pytester.makeini("[pytest]\nmodgap_tolerance = nan\n")
    result = run("--modgap-model", models["regressed"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*ini option modgap_tolerance = nan (in tox.ini): a tolerance must be a finite number*"]
    )


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    """A baseline ``b`` in ``tmp_path`` recording centroid_gap 0.40 for coco."""
    (tmp_path / "b.yaml").write_text(
        "format: pytest-modgap/1\ndatasets:\n  coco: {n: 1000, metrics: {centroid_gap: 0.40}}\n"
    )
    return tmp_path


@pytest.mark.parametrize(
    "value",
    [math.nan, math.inf, -0.01, "0.1", True, 10**400],
    ids=["nan", "inf", "negative", "text", "bool", "huge-int"],
)
@pytest.mark.parametrize("argument", ["tolerance", "default_tolerance"])
def test_the_api_refuses_unusable_tolerances(recorded: Path, value: object, argument: str) -> None:
    much_worse = make_report(centroid_gap=0.90)
    loaded = baseline.load("b", recorded)
    with pytest.raises(BaselineError, match=rf"^{argument}=.* is not a usable tolerance"):
        baseline.compare(much_worse, loaded, **{argument: value})  # type: ignore[arg-type]
    with pytest.raises(BaselineError, match=rf"^{argument}=.* is not a usable tolerance"):
        baseline.check(much_worse, "b", baseline_dir=recorded, **{argument: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0])
def test_assert_no_regression_refuses_them_even_when_recording(
    recorded: Path, value: float
) -> None:
    for update in (False, True):
        with pytest.raises(BaselineError, match="tolerance=.*finite number >= 0"):
            assert_no_regression(
                make_report(centroid_gap=0.9), "b", baseline_dir=recorded, tolerance=value,
                update=update,
            )  # fmt: skip


@pytest.mark.parametrize(
    "tolerance",
    [math.inf, math.nan, -0.5, True, {"centroid_gap": math.inf}, {"alignment": math.nan}],
    ids=["inf", "nan", "negative", "bool", "mapping-inf", "mapping-nan"],
)
def test_compare_embeddings_refuses_them(tolerance: object) -> None:
    rng = np.random.default_rng(0)
    image, text = rng.normal(size=(40, 8)), rng.normal(size=(40, 8))
    shifted = image + np.eye(8)[0] * 3.0
    with pytest.raises(ModgapInputError, match="finite, non-negative absolute change"):
        compare_embeddings(
            (shifted, text, None, None), (image, text, None, None), n_boot=20,
            tolerance=tolerance,  # type: ignore[arg-type]
        )  # fmt: skip


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ("tolerance: .nan\n", "'tolerance' must be a finite number, not nan"),
        ("tolerance: -0.1\n", "'tolerance' must be >= 0.0, not -0.1"),
        ("tolerance: .inf\n", "'tolerance' must be a finite number, not inf"),
        ("", "'datasets.coco.metrics.centroid_gap.tolerance' must be a finite number, not nan"),
    ],
)
def test_tolerances_in_a_baseline_file_are_checked(tmp_path: Path, entry: str, field: str) -> None:
    metric = "{value: 0.4, tolerance: .nan}" if not entry else "0.4"
    (tmp_path / "b.yaml").write_text(
        f"format: pytest-modgap/1\n{entry}datasets:\n  coco: {{n: 1000, metrics: "
        f"{{centroid_gap: {metric}}}}}\n"
    )
    with pytest.raises(BaselineError, match=f"b.yaml is malformed: {field}"):
        baseline.load("b", tmp_path)


FIXTURE_TOLERANCES = """
import math
import pytest

@pytest.mark.modgap(samples=100)
def test_check(modgap):
    modgap.check(modgap.measure(), baseline="release", tolerance=math.nan)

@pytest.mark.modgap(samples=100)
def test_compare(modgap):
    modgap.compare(tolerance=math.inf)
"""


def test_the_fixture_refuses_them_with_a_message(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(test_gate=GATE_TEST)
    run("--modgap-model", models["reference"], "--modgap-update").assert_outcomes(passed=1)
    pytester.makepyfile(test_gate=FIXTURE_TOLERANCES)
    result = run(
        f"--modgap-model={models['regressed']}", f"--modgap-reference-model={models['reference']}"
    )
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*modgap: tolerance=nan is not a usable tolerance: give the absolute change*",
            "*modgap: tolerance=inf is not a usable tolerance*",
        ],
        consecutive=False,
    )
    assert "Traceback" not in result.stdout.str()


COMPARE_TWICE = """
import pytest

@pytest.mark.modgap(samples=100)
def test_loose(modgap):
    modgap.compare(tolerance=100.0)

@pytest.mark.modgap(samples=100)
def test_strict(modgap):
    modgap.compare(tolerance=0.0)
"""


def test_a_comparison_is_not_reused_under_another_tolerance(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    """The first test's loose verdict must not pass the second, stricter test."""
    pytester.makepyfile(test_gate=COMPARE_TWICE)
    result = run(
        f"--modgap-model={models['regressed']}",
        f"--modgap-reference-model={models['reference']}",
        "-v",
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_loose* PASSED*", "*test_strict* FAILED*"])
