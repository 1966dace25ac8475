"""The plugin on and no modgap test run leaves torch and transformers unloaded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import pytest_modgap
from tests.gate.helpers import PLUGIN_ARGS

REPO_ROOT = str(Path(pytest_modgap.__file__).resolve().parents[1])


def test_a_run_without_modgap_tests_imports_no_torch_or_transformers(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([REPO_ROOT, os.environ.get("PYTHONPATH", "")]))
    pytester.makepyfile(
        test_plain="""
        import sys

        def test_plain(request):
            assert request.config.pluginmanager.has_plugin(
                "modgap"
            ) or request.config.pluginmanager.has_plugin("pytest_modgap.gate.plugin")
            heavy = [name for name in ("torch", "transformers", "pytest_modgap.embedding.measurement")
                     if name in sys.modules]
            assert heavy == []
        """
    )
    # The plugin's whole surface runs: options parsed, marker registered, summary and JSON hooks.
    result = pytester.runpytest_subprocess(
        *PLUGIN_ARGS, "-p", "no:cacheprovider", "--modgap-json", str(pytester.path / "r.json")
    )
    result.assert_outcomes(passed=1)
    assert "== modgap ==" not in result.stdout.str()  # quiet: no modgap test ran
