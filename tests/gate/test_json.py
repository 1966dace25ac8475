"""--modgap-json PATH: every report, baseline comparison, outcome and the environment."""

from __future__ import annotations

import json

import pytest

from tests.gate.conftest import RunPytest
from tests.gate.helpers import GATE_TEST


def test_json_artefact_holds_reports_checks_outcomes_and_environment(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(test_gate=GATE_TEST)
    run("--modgap-model", models["reference"], "--modgap-update").assert_outcomes(passed=1)
    target = pytester.path / "out" / "modgap.json"
    result = run(
        "--modgap-model",
        models["reference"],
        "--modgap-model",
        models["regressed"],
        "--modgap-json",
        str(target),
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([f"results written to {target}"])

    document = json.loads(target.read_text())
    assert document["format"] == "pytest-modgap-results/1"
    assert document["counts"]["passed"] == 1 and document["counts"]["regressed"] == 1
    environment = document["environment"]
    assert {"python", "torch", "transformers", "pytest_modgap", "devices"} <= set(environment)
    assert [m["model"] for m in document["measurements"]] == [
        models["reference"],
        models["regressed"],
    ]
    report = document["measurements"][1]["report"]
    assert report["n"] == 100 and report["metrics"]["centroid_gap"]["ci"] is not None
    verdicts = {check["nodeid"]: check["verdict"] for check in document["checks"]}
    assert verdicts == {
        "test_gate.py::test_gate[modgap:reference.npz]": "passed",
        "test_gate.py::test_gate[modgap:regressed.npz]": "regressed",
    }
    regressed = next(c for c in document["checks"] if c["verdict"] == "regressed")
    gap = next(row for row in regressed["rows"] if row["metric"] == "centroid_gap")
    assert gap["verdict"] == "REGRESSED" and gap["change"] > gap["tolerance"]
    assert (
        document["tests"]["test_gate.py::test_gate[modgap:regressed.npz]"]["outcome"] == "regressed"
    )
    assert sorted(path.name for path in target.parent.iterdir()) == ["modgap.json"]
