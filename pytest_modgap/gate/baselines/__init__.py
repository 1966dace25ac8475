"""The baseline engine: load, validate, compare, explain and (atomically) write YAML baselines.

Every baseline check of pytest-modgap, with the fixture or without it, goes through this module.

One module a job: ``schema`` (the file format), ``yaml_loader`` and ``parsing`` (reading),
``location`` (names and folders), ``comparison`` and ``table`` (the verdict and its text),
``writing`` and ``locking`` (recording), ``checking`` (the check the fixture and the API call).

Metric names are those of ``METRICS``; its ``better`` field says which way a change is a regression.
A metric regresses when it moves in the worse direction by more than its tolerance (absolute).
The tolerance is the first one given of: the check's ``tolerance`` argument, the metric's own
``tolerance``, the file's ``tolerance``, ``default_tolerance`` (``--modgap-tolerance``), 0.02.
Moving the better way never fails; metrics whose direction is ``none`` are shown, never fail.
With ``slices=True`` each recorded slice (``Report.slices``: a manifest's ``slice``, or a class) is
compared the same way, and the failure names the slices that regressed, worst first.

Names under ``paper/`` are the published values shipped with the package (read-only).

A baseline decides whether a release passes, so a hostile or careless file must not be able to
change a verdict or take the run down. It is read with ``yaml.load(text, Loader=_BaselineLoader)``,
a ``yaml.SafeLoader`` subclass (the same safe tags and constructors: no Python objects) that also
refuses anchors and aliases (an "alias bomb" expands a few lines into gigabytes), nesting deeper
than ``MAX_DEPTH`` (checked as the nodes are composed, before any recursion could overflow) and
duplicate mapping keys (plain YAML keeps the last one silently). Every error quotes values through
``short()``, so no message grows with the file.
"""

from pytest_modgap.gate.baselines.checking import (
    BaselineRegression,
    assert_no_regression,
    check,
    record_command,
)
from pytest_modgap.gate.baselines.comparison import (
    Comparison,
    MetricComparison,
    check_tolerance,
    compare,
)
from pytest_modgap.gate.baselines.identity import package_version
from pytest_modgap.gate.baselines.location import (
    dataset_key,
    load,
    resolve,
    shipped_dir,
    shipped_names,
)
from pytest_modgap.gate.baselines.parsing import parse
from pytest_modgap.gate.baselines.quoting import short
from pytest_modgap.gate.baselines.schema import (
    DEFAULT_TOLERANCE,
    FORMAT,
    MAX_DEPTH,
    SHIPPED_PREFIX,
    Baseline,
    DatasetBaseline,
    MetricBaseline,
)
from pytest_modgap.gate.baselines.writing import write
from pytest_modgap.gate.baselines.yaml_loader import read_yaml

__all__ = [
    "DEFAULT_TOLERANCE",
    "FORMAT",
    "MAX_DEPTH",
    "SHIPPED_PREFIX",
    "Baseline",
    "BaselineRegression",
    "Comparison",
    "DatasetBaseline",
    "MetricBaseline",
    "MetricComparison",
    "assert_no_regression",
    "check",
    "check_tolerance",
    "compare",
    "dataset_key",
    "load",
    "package_version",
    "parse",
    "read_yaml",
    "record_command",
    "resolve",
    "shipped_dir",
    "shipped_names",
    "short",
    "write",
]
