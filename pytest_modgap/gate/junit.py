"""The JUnit XML properties of a modgap test: its metrics and verdicts, recorded with pytest's
``record_property``, so ``--junitxml`` carries them to GitLab, Jenkins and other CI dashboards.

Names (``<data set>`` is the baseline key: ``shapes``, ``flickr30k``, ``shapes@128``):
``modgap.model``; ``modgap.<data set>.n``; ``modgap.<data set>.<metric>`` (the value) and
``modgap.<data set>.<metric>.ci`` (``[low, high]``); ``modgap.<data set>.baseline.<name>``
(passed, regressed or updated) and ``...baseline.<name>.regressed`` (the regressed metrics);
``modgap.<data set>.reference.<spec>`` (worse or not worse) and ``...reference.<spec>.worse``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Property = tuple[str, str]


def _number(value: float) -> str:
    """Full precision, as JSON would write it (``repr`` of the float)."""
    return repr(float(value))


def measurement_properties(dataset: str, report: Mapping[str, Any]) -> list[Property]:
    """The size and every metric (with its interval) of one measurement, a report in
    ``Report.to_dict()`` form, under ``modgap.<dataset>.``."""
    prefix = f"modgap.{dataset}"
    properties = [(f"{prefix}.n", str(report["n"]))]
    for name, entry in report["metrics"].items():
        properties.append((f"{prefix}.{name}", _number(entry["value"])))
        ci = entry.get("ci")
        if ci is not None:
            properties.append((f"{prefix}.{name}.ci", f"[{_number(ci[0])}, {_number(ci[1])}]"))
    return properties


def check_properties(check: Mapping[str, Any]) -> list[Property]:
    """One baseline check (``Comparison.to_dict()``): its verdict, and what regressed."""
    prefix = f"modgap.{check['dataset']}.baseline.{check['baseline']}"
    properties = [(prefix, str(check["verdict"]))]
    regressed = [row["metric"] for row in check["rows"] if row["verdict"] == "REGRESSED"]
    if regressed:
        properties.append((f"{prefix}.regressed", ",".join(regressed)))
    return properties


def reference_properties(dataset: str, reference: str, failed: list[str]) -> list[Property]:
    """One paired comparison with the reference model: worse or not, and on which metrics."""
    prefix = f"modgap.{dataset}.reference.{reference}"
    properties = [(prefix, "worse" if failed else "not worse")]
    if failed:
        properties.append((f"{prefix}.worse", ",".join(failed)))
    return properties
