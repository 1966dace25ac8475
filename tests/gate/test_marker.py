"""The modgap marker: registered, validated at collection, and its dataset= / samples= used."""

from __future__ import annotations

import pytest

from tests.gate.conftest import RunPytest


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ("datset='shapes'", "unknown keyword(s) datset"),
        ("'shapes'", "positional argument(s) 'shapes'"),
        ("samples='many'", "samples= must be an integer, not 'many'"),
    ],
)
def test_invalid_marker_is_a_collection_error_naming_test_and_keywords(
    pytester: pytest.Pytester, run: RunPytest, arguments: str, problem: str
) -> None:
    pytester.makepyfile(
        test_bad=f"""
        import pytest

        @pytest.mark.modgap({arguments})
        def test_gap(modgap):
            pass
        """
    )
    result = run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            f"test_bad.py::test_gap: invalid @pytest.mark.modgap: {problem}. The modgap marker "
            "takes only the keywords dataset=, samples=, model=*"
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_marker_without_the_fixture_is_a_collection_error(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        test_bad="""
        import pytest

        @pytest.mark.modgap(samples=10)
        def test_gap():
            pass
        """
    )
    result = run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*test_gap*does not take the modgap fixture; add `modgap`*"])


def test_marker_is_registered_and_passes_strict_markers(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.modgap(samples=10)
        def test_gap(modgap):
            pass
        """
    )
    run("--strict-markers").assert_outcomes(skipped=1)
    run("--markers").stdout.fnmatch_lines(
        ["@pytest.mark.modgap(*, dataset=None, samples=None, model=None)*"]
    )


def test_marker_samples_and_class_level_marker_apply(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.modgap(samples=40)
        class TestGap:
            def test_marker_samples(self, modgap):
                assert modgap.measure().n == 40

            def test_argument_wins(self, modgap):
                assert modgap.measure(samples=30).n == 30

            @pytest.mark.modgap(samples=20)
            def test_closest_marker_wins(self, modgap):
                assert modgap.measure().n == 20
        """
    )
    run("--modgap-model", models["reference"]).assert_outcomes(passed=3)
