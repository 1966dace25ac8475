"""Hand-edited and corrupt baseline files: one short error naming the file and the problem, never a
traceback or INTERNALERROR; a baseline that does not fit the report says why.
"""

from __future__ import annotations

import pytest

from tests.gate.conftest import RunPytest
from tests.gate.helpers import GATE_TEST

VALID_HEAD = "format: pytest-modgap/1\nmodel: m\ndatasets:\n  embeddings:\n"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "format: pytest-modgap/1\ndatasets:\n  embeddings: {n: 100\n",
            "is not valid YAML at line 4, column 1: *",
        ),
        (
            VALID_HEAD + "    n: 100\n    metrics:\n      aligment: {value: 0.5}\n",
            "is malformed: 'datasets.embeddings.metrics' names unknown metric 'aligment'; known "
            "metrics: centroid_gap, *",
        ),
        (
            VALID_HEAD + "    n: 100\n    metrics:\n      alignment: {value: high}\n",
            "is malformed: 'datasets.embeddings.metrics.alignment.value' must be a finite number, "
            "not 'high'*",
        ),
        (
            VALID_HEAD + "    n: 100\n    metrics:\n      alignment: {value: 0.5, tolerence: 1}\n",
            "is malformed: 'datasets.embeddings.metrics.alignment' has unknown key(s) tolerence*",
        ),
        (
            VALID_HEAD + "    n: lots\n    metrics:\n      alignment: 0.5\n",
            "is malformed: 'datasets.embeddings.n' must be the number of pairs measured*",
        ),
        ("format: pytest-modgap/0\ndatasets: {}\n", "is malformed: 'format' is 'pytest-modgap/0'*"),
        ("- just\n- a list\n", "is malformed: the file must be a mapping*"),
    ],
    ids=[
        "yaml",
        "unknown-metric",
        "value-type",
        "unknown-key",
        "n-type",
        "format",
        "not-a-mapping",
    ],
)
def test_corrupt_baseline_is_one_clear_error(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str], text: str, problem: str
) -> None:
    (pytester.path / "baselines").mkdir()
    path = pytester.path / "baselines" / "release.yaml"
    path.write_text(text)
    pytester.makepyfile(test_gate=GATE_TEST)
    result = run("--modgap-model", models["reference"])
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"modgap: Baseline file {path} {problem}"])
    output = result.stdout.str()
    assert "Traceback" not in output and "INTERNALERROR" not in output


def test_update_does_not_overwrite_a_corrupt_file(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    (pytester.path / "baselines").mkdir()
    path = pytester.path / "baselines" / "release.yaml"
    path.write_text("format: [unclosed\n")
    pytester.makepyfile(test_gate=GATE_TEST)
    run("--modgap-model", models["reference"], "--modgap-update").assert_outcomes(failed=1)
    assert path.read_text() == "format: [unclosed\n"


def test_baseline_without_the_reports_data_set(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    (pytester.path / "baselines").mkdir()
    (pytester.path / "baselines" / "release.yaml").write_text(
        "format: pytest-modgap/1\ndatasets:\n  coco: {n: 1000, metrics: {alignment: 0.5}}\n"
    )
    pytester.makepyfile(test_gate=GATE_TEST)
    result = run("--modgap-model", models["reference"])
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*has no entry for data set 'embeddings'; it records coco. Measure one of those*"]
    )


def test_baseline_recorded_with_another_sample_count(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(test_gate=GATE_TEST)
    run("--modgap-model", models["reference"], "--modgap-update").assert_outcomes(passed=1)
    result = run("--modgap-model", models["reference"], "--modgap-samples", "50")
    result.assert_outcomes(passed=1)  # the marker's samples=100 wins over the option
    pytester.makepyfile(test_gate=GATE_TEST.replace("samples=100", "samples=50"))
    result = run("--modgap-model", models["reference"])
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*recorded data set 'embeddings' with n=100 pairs, but this report measured n=50*"]
    )


def test_shipped_paper_baseline_is_found_and_explains_a_mismatch(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(
        """
        def test_paper(modgap):
            modgap.check(modgap.measure(), baseline="paper/jina-embeddings-v4")
        """
    )
    result = run("--modgap-model", models["reference"])
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*Baseline 'paper/jina-embeddings-v4' (*/jina-embeddings-v4.yaml) has no entry for "
            "data set 'embeddings'; it records cifar100, coco, flickr30k*under a name of your own*"
        ]
    )
