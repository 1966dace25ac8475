"""--modgap-model: a run per model with readable ids, a visible skip without one, shared reports.

Also the marker's model= pin and a short error (no traceback) for a model that cannot be loaded.
"""

from __future__ import annotations

import pytest

from tests.gate.conftest import RunPytest
from tests.gate.helpers import write_embeddings

TWO_TESTS = """
import pytest

REPORTS = {}

@pytest.mark.modgap(samples=60)
def test_first(modgap):
    REPORTS.setdefault(modgap.model, []).append(modgap.measure())

@pytest.mark.modgap(samples=60)
def test_second(modgap):
    report = modgap.measure()
    assert report is REPORTS[modgap.model][0]  # the same measurement is shared, not repeated
    assert report.n == 60
"""


def test_repeated_model_option_parametrises_with_short_ids(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(test_models=TWO_TESTS)
    result = run("--modgap-model", models["reference"], "--modgap-model", models["regressed"], "-v")
    result.assert_outcomes(passed=4)
    for name in ("test_first", "test_second"):
        for model in ("reference.npz", "regressed.npz"):
            assert f"test_models.py::{name}[modgap:{model}] PASSED" in result.stdout.str()
    result.stdout.fnmatch_lines(["*modgap tests: 4 passed, 0 regressed, 0 updated, 0 skipped*"])


def test_colliding_short_ids_fall_back_to_the_full_spec(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    for folder in ("a", "b"):
        (pytester.path / folder).mkdir()
    first = write_embeddings(pytester.path / "a" / "model.npz", gap=0.0)
    second = write_embeddings(pytester.path / "b" / "model.npz", gap=1.0)
    pytester.makepyfile("def test_x(modgap):\n    pass\n")
    result = run("--modgap-model", first, "--modgap-model", second, "--collect-only", "-q")
    assert f"[modgap:{first}]" in result.stdout.str()
    assert f"[modgap:{second}]" in result.stdout.str()


def test_without_a_model_modgap_tests_are_skipped_with_the_option_named(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        """
        def test_gap(modgap):
            raise AssertionError("must not run without a model")

        def test_plain():
            pass
        """
    )
    result = run("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*modgap tests: 0 passed, 0 regressed, 0 updated, 1 skipped*",
            "skipped 1: no model to measure: pass --modgap-model=SPEC*",
            "SKIPPED*no model to measure: pass --modgap-model=SPEC*",
        ]
    )


def test_marker_model_pins_the_model(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.modgap(model={models["reference"]!r}, samples=50)
        def test_pinned(modgap):
            assert modgap.model == {models["reference"]!r}
            assert modgap.measure().n == 50
        """
    )
    result = run("--modgap-model", models["regressed"], "-v")
    result.assert_outcomes(passed=1)
    assert "test_pinned[modgap:reference.npz] PASSED" in result.stdout.str()


def test_a_model_that_cannot_be_loaded_is_a_short_error(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile("def test_gap(modgap):\n    modgap.measure()\n")
    result = run("--modgap-model", "embeddings:missing.npz")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["modgap: Model spec 'embeddings:missing.npz'*does not exist*"])
    assert "Traceback" not in result.stdout.str()
    assert "embed" not in "".join(line for line in result.outlines if line.startswith("E "))
