"""--junitxml: each modgap test carries its metrics and verdicts as JUnit properties."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import pytest

from tests.gate.conftest import RunPytest
from tests.gate.helpers import GATE_TEST


def _properties(path: str) -> dict[str, dict[str, str]]:
    """Test name -> {property name: value} of a JUnit XML file."""
    root = ElementTree.parse(path).getroot()
    return {
        case.attrib["name"]: {
            prop.attrib["name"]: prop.attrib["value"] for prop in case.iter("property")
        }
        for case in root.iter("testcase")
    }


def test_junit_xml_carries_metrics_and_verdicts(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(test_gate=GATE_TEST)
    run("--modgap-model", models["reference"], "--modgap-update").assert_outcomes(passed=1)
    xml = str(pytester.path / "junit.xml")
    result = run(
        "--modgap-model",
        models["reference"],
        "--modgap-model",
        models["regressed"],
        f"--junitxml={xml}",
    )
    result.assert_outcomes(passed=1, failed=1)
    cases = _properties(xml)
    passed = cases["test_gate[modgap:reference.npz]"]
    failed = cases["test_gate[modgap:regressed.npz]"]
    assert passed["modgap.model"] == models["reference"]
    assert passed["modgap.embeddings.n"] == "100"
    assert -1.0 <= float(passed["modgap.embeddings.alignment"]) <= 1.0
    low, high = (float(x) for x in passed["modgap.embeddings.alignment.ci"].strip("[]").split(","))
    assert low <= float(passed["modgap.embeddings.alignment"]) <= high
    assert passed["modgap.embeddings.baseline.release"] == "passed"
    assert "modgap.embeddings.baseline.release.regressed" not in passed
    assert failed["modgap.embeddings.baseline.release"] == "regressed"
    assert "centroid_gap" in failed["modgap.embeddings.baseline.release.regressed"].split(",")
    assert float(failed["modgap.embeddings.centroid_gap"]) > float(
        passed["modgap.embeddings.centroid_gap"]
    )


def test_junit_xml_carries_the_reference_verdict(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(
        test_gate="""
        import pytest

        @pytest.mark.modgap(samples=100)
        def test_gate(modgap):
            modgap.measure()
        """
    )
    xml = str(pytester.path / "junit.xml")
    result = run(
        "--modgap-model",
        models["regressed"],
        "--modgap-reference-model",
        models["reference"],
        f"--junitxml={xml}",
    )
    result.assert_outcomes(failed=1)
    failed = _properties(xml)["test_gate[modgap:regressed.npz]"]
    key = f"modgap.embeddings.reference.{models['reference']}"
    assert failed[key] == "worse"
    assert "centroid_gap" in failed[f"{key}.worse"].split(",")
