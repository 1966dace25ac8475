"""Findings of a hostile run and a new user's run on the gate (issue 20, items 13 and 20): a
decimal comma named with its line, per-metric tolerances in ``check``, a misspelled baseline name."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_modgap.errors import BaselineError
from pytest_modgap.gate.baselines import assert_no_regression, load
from tests.gate.test_baseline_engine import make_report

COCO = "format: pytest-modgap/1\ndatasets:\n  coco:\n    n: 1000\n    metrics:\n"


def test_a_decimal_comma_in_braces_is_named_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text(COCO + "      alignment: {value: 0,1414}\n")
    with pytest.raises(BaselineError, match=r"unknown key\(s\) 1414 .*decimal comma \(line 6\)"):
        load("b", tmp_path)


def test_a_decimal_comma_as_a_value_says_how_to_write_it(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text(COCO + "      alignment: 0,1414\n")
    with pytest.raises(BaselineError, match=r"not '0,1414' \(a decimal comma\? write 0\.1414\)"):
        load("b", tmp_path)


def test_check_takes_a_tolerance_per_metric(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text(COCO + "      alignment: 0.60\n      image_cone: 0.20\n")
    report = make_report(alignment=0.56, image_cone=0.24)
    comparison = assert_no_regression(
        report, "b", baseline_dir=tmp_path, tolerance={"alignment": 0.05, "image_cone": 0.05}
    )
    assert [row.tolerance for row in comparison.rows] == [0.05, 0.05]
    with pytest.raises(AssertionError, match="1 of 2 metrics regressed"):
        assert_no_regression(report, "b", baseline_dir=tmp_path, tolerance={"alignment": 0.05})
    with pytest.raises(BaselineError, match=r"tolerance= names unknown metric\(s\) 'alignmnet'"):
        assert_no_regression(report, "b", baseline_dir=tmp_path, tolerance={"alignmnet": 0.05})
    with pytest.raises(BaselineError, match=r"tolerance\['alignment'\]=nan is not a usable"):
        assert_no_regression(
            report, "b", baseline_dir=tmp_path, tolerance={"alignment": float("nan")}
        )


def test_a_misspelled_baseline_name_asks_did_you_mean(tmp_path: Path) -> None:
    (tmp_path / "release-3.yaml").write_text(COCO + "      alignment: 0.60\n")
    with pytest.raises(BaselineError) as missing:
        assert_no_regression(make_report(alignment=0.6), "relase-3", baseline_dir=tmp_path)
    message = str(missing.value)
    assert "silently. Did you mean 'release-3'? If not, record this one with: pytest" in message
    with pytest.raises(BaselineError) as unrelated:
        assert_no_regression(make_report(alignment=0.6), "nightly", baseline_dir=tmp_path)
    assert "Did you mean" not in str(unrelated.value)
