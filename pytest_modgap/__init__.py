"""pytest-modgap: modality-gap, alignment and cone-effect regression tests for multimodal encoders.

The public API is imported lazily, so ``import pytest_modgap`` (and pytest start-up) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from pytest_modgap.engine import measure_embeddings
    from pytest_modgap.errors import ModgapError, ModgapInputError
    from pytest_modgap.measurement import load_model, measure
    from pytest_modgap.metric_info import METRICS
    from pytest_modgap.report import Report

_LAZY = {
    "measure": "pytest_modgap.measurement",
    "load_model": "pytest_modgap.measurement",
    "measure_embeddings": "pytest_modgap.engine",
    "Report": "pytest_modgap.report",
    "METRICS": "pytest_modgap.metric_info",
    "ModgapError": "pytest_modgap.errors",
    "ModgapInputError": "pytest_modgap.errors",
}

__all__ = [
    "METRICS",
    "ModgapError",
    "ModgapInputError",
    "Report",
    "__version__",
    "load_model",
    "measure",
    "measure_embeddings",
]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'pytest_modgap' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)
