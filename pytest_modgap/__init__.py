"""pytest-modgap: modality-gap, alignment and cone-effect regression tests for multimodal encoders.

The public API is imported lazily, so ``import pytest_modgap`` (and pytest start-up) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from pytest_modgap.embedding.compare_models import compare_models
    from pytest_modgap.embedding.measurement import load_model, measure
    from pytest_modgap.errors import ModgapError, ModgapInputError
    from pytest_modgap.gate.baselines import assert_no_regression
    from pytest_modgap.metrics.catalogue import METRICS
    from pytest_modgap.metrics.engine import measure_embeddings
    from pytest_modgap.metrics.paired import Comparison, compare_embeddings
    from pytest_modgap.metrics.report import Report
    from pytest_modgap.metrics.truncation import measure_truncations
    from pytest_modgap.reports.figures import figure2, figure3
    from pytest_modgap.reports.html import write_report_dir

_LAZY = {
    "assert_no_regression": "pytest_modgap.gate.baselines",
    "Comparison": "pytest_modgap.metrics.paired",
    "compare_embeddings": "pytest_modgap.metrics.paired",
    "compare_models": "pytest_modgap.embedding.compare_models",
    "figure2": "pytest_modgap.reports.figures",
    "figure3": "pytest_modgap.reports.figures",
    "write_report_dir": "pytest_modgap.reports.html",
    "measure_truncations": "pytest_modgap.metrics.truncation",
    "measure": "pytest_modgap.embedding.measurement",
    "load_model": "pytest_modgap.embedding.measurement",
    "measure_embeddings": "pytest_modgap.metrics.engine",
    "Report": "pytest_modgap.metrics.report",
    "METRICS": "pytest_modgap.metrics.catalogue",
    "ModgapError": "pytest_modgap.errors",
    "ModgapInputError": "pytest_modgap.errors",
}

__all__ = [
    "METRICS",
    "Comparison",
    "ModgapError",
    "ModgapInputError",
    "Report",
    "__version__",
    "assert_no_regression",
    "compare_embeddings",
    "compare_models",
    "figure2",
    "figure3",
    "load_model",
    "measure",
    "measure_embeddings",
    "measure_truncations",
    "write_report_dir",
]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'pytest_modgap' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)
