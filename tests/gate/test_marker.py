"""The modgap marker: registered, validated at collection, and its dataset= / samples= used."""

from __future__ import annotations

import pytest

from tests.gate.conftest import RunPytest


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ("datset='shapes'", "unknown keyword(s) datset"),
        ("'shapes'", "positional argument(s) 'shapes'"),
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


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ("samples='many'", "samples= must be an integer, not 'many'."),
        ("templates=['a photo of a {{c}}.']", "*{{c}}*"),
    ],
)
def test_a_bad_marker_value_is_named_without_the_keyword_list(
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
    result.stdout.fnmatch_lines([f"test_bad.py::test_gap: invalid @pytest.mark.modgap: {problem}"])
    output = result.stdout.str()
    assert ".." not in output.split("invalid @pytest.mark.modgap")[1].splitlines()[0]
    assert "takes only the keywords" not in output


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
        ["@pytest.mark.modgap(*, dataset=None, samples=None, model=None*): a modality-gap test*"]
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


_PIXEL_MODEL = '''
import numpy as np


class PixelEncoder:
    """Mean colour as the image vector, letter counts as the text vector: tiny and deterministic."""

    def fingerprint(self):
        return "pixel-encoder-1"

    def encode_images(self, images):
        return np.stack([np.asarray(image, dtype=np.float32).mean(axis=(0, 1)) + 1 for image in images])

    def encode_texts(self, texts):
        return np.stack([[text.count("a") + 1.0, text.count("e") + 1.0, len(text)] for text in texts])


def build():
    return PixelEncoder()
'''


def test_a_relative_data_set_path_in_a_marker_is_taken_from_the_test_files_folder(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    """pytest is started from the project root; the manifest lies next to the test file."""
    import json

    from tests.data.layouts import write_image

    suite = pytester.mkdir("suite")
    lines = []
    for index in range(6):
        write_image(suite / "data" / "images" / f"{index}.png", seed=index)
        lines.append(
            json.dumps({"image": f"images/{index}.png", "text": f"a photo number {index}"})
        )
    (suite / "data" / "pairs.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    pytester.makepyfile(pixel_model=_PIXEL_MODEL)
    pytester.syspathinsert()
    (suite / "test_local_data.py").write_text(
        "import pytest\n\n"
        '@pytest.mark.modgap(dataset="jsonl:data/pairs.jsonl")\n'
        "def test_gap(modgap):\n"
        "    report = modgap.measure()\n"
        "    assert report.n == 6\n"
        f"    assert report.metadata['dataset'] == 'jsonl:{suite / 'data' / 'pairs.jsonl'}'\n",
        encoding="utf-8",
    )
    run("--modgap-model=pixel_model:build", "--modgap-no-cache", "suite").assert_outcomes(passed=1)


def test_a_markers_data_set_overriding_the_option_is_warned_about_once(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.modgap(dataset="shapes", samples=20)
        def test_one(modgap):
            modgap.measure()

        @pytest.mark.modgap(dataset="shapes", samples=20)
        def test_two(modgap):
            modgap.measure()

        @pytest.mark.modgap(samples=20)
        def test_without_dataset(modgap):
            modgap.measure()
        """
    )
    result = run("--modgap-model", models["reference"], "--modgap-dataset=coco:/data/coco")
    result.assert_outcomes(passed=3)
    text = result.stdout.str()
    assert text.count("ModgapWarning") == 1, text
    result.stdout.fnmatch_lines(
        [
            "*ModgapWarning: --modgap-dataset=coco:/data/coco (or modgap_dataset in the ini file) "
            "does not apply to 2 modgap test(s) whose @pytest.mark.modgap(dataset=...) names "
            "their own data set (*test_one*, *test_two*): the marker wins.*"
        ]
    )
    quiet = run("--modgap-model", models["reference"])
    quiet.assert_outcomes(passed=3)
    assert "ModgapWarning" not in quiet.stdout.str()


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("jsonl:data/pairs.jsonl", "jsonl:{dir}/data/pairs.jsonl"),
        ("data/pairs.jsonl", "{dir}/data/pairs.jsonl"),
        ("cifar100:data/cifar#train", "cifar100:{dir}/data/cifar#train"),
        ("wds:shards/part-{000..009}.tar", "wds:{dir}/shards/part-{000..009}.tar"),
        ("shapes", "shapes"),
        ("flickr8k:/data/flickr8k", "flickr8k:/data/flickr8k"),
        ("coco:~/coco", "coco:~/coco"),
        ("wds:https://example.org/shard-{0..9}.tar", "wds:https://example.org/shard-{0..9}.tar"),
    ],
)
def test_marker_data_set_paths_resolve_against_the_test_folder(spec: str, expected: str) -> None:
    from pathlib import Path

    from pytest_modgap.gate.marker_dataset import resolve_marker_dataset

    folder = Path("/project/tests/gap")
    assert resolve_marker_dataset(spec, folder) == expected.replace("{dir}", str(folder))
