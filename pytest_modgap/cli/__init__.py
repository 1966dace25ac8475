"""The ``modgap`` command: measure, compare and report on models outside a test suite.

``main`` is the console-script entry point; each sub-command lives in a module of its own.
"""

from __future__ import annotations

from pytest_modgap.cli.app import main

__all__ = ["main"]
