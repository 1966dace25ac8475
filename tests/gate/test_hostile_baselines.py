"""Hostile and careless baseline files (issue 9, items 6, 9 and 10): alias bombs, deep nesting,
duplicate keys, huge values, non-UTF-8 bytes, and fuzzing of the parser.

Each is one short BaselineError naming the file (and the line where there is one), fast and never
a traceback; the fuzz tests check that nothing but the project's own errors escapes.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_modgap.errors import BaselineError
from pytest_modgap.gate import baselines as baseline
from pytest_modgap.metrics.catalogue import METRICS
from tests.gate.conftest import RunPytest
from tests.gate.helpers import GATE_TEST

VALID = (
    "format: pytest-modgap/1\n"
    "datasets:\n"
    "  coco:\n"
    "    n: 1000\n"
    "    metrics:\n"
    "      alignment: {value: 0.7, ci: [0.69, 0.71], tolerance: 0.02}\n"
)
# Messages name the path and quote at most SHORT_LIMIT characters of any value.
MESSAGE_LIMIT = 600


def parse(text: str, path: Path = Path("baselines/b.yaml")) -> baseline.Baseline:
    return baseline.parse(text, path, name="b")


def refused(text: str) -> str:
    """The message of the BaselineError that ``text`` raises, checked to be short."""
    with pytest.raises(BaselineError) as raised:
        parse(text)
    message = str(raised.value)
    assert message.startswith("Baseline file baselines/b.yaml "), message
    assert len(message) < MESSAGE_LIMIT, message[:1000]
    return message


def alias_bomb(levels: int) -> str:
    """``levels`` anchors, each a list of ten aliases of the previous one: 10**levels leaves."""
    lines = ["format: &l0 [pytest-modgap/1]"]
    for level in range(1, levels + 1):
        lines.append(f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * 10)}]")
    return "\n".join(lines) + f"\ndatasets: *l{levels}\n"


def test_the_parser_still_reads_a_valid_baseline() -> None:
    entry = parse(VALID).datasets["coco"].metrics["alignment"]
    assert (entry.value, entry.ci, entry.tolerance) == (0.7, (0.69, 0.71), 0.02)


def test_an_alias_bomb_is_refused_at_its_first_anchor_quickly() -> None:
    started = time.perf_counter()
    message = refused(alias_bomb(6))  # a million leaves: an error quoting them runs to megabytes
    assert time.perf_counter() - started < 1.0
    assert "is refused at line 1, column 9: anchors and aliases (&name, *name) are not " in message


def test_a_lone_alias_is_refused_too() -> None:
    assert "line 2, column 11: anchors and aliases" in refused("format: x\ndatasets: *nothing\n")


def test_deep_nesting_is_refused_without_recursion() -> None:
    message = refused("datasets: " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert f"mappings and lists nest deeper than {baseline.MAX_DEPTH} levels" in message
    assert "line 1, column 42" in message  # the bracket that opens level 33


def test_nesting_up_to_the_limit_is_read() -> None:
    depth = baseline.MAX_DEPTH - 1  # the file's own mapping is the first level
    message = refused(VALID + "source: " + "[" * depth + "]" * depth + "\n")
    assert "is malformed: 'source' must be text, not list" in message
    assert "nest deeper" in refused(VALID + "source: " + "[" * (depth + 1) + "]" * (depth + 1))


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            VALID + "format: pytest-modgap/1\n",
            "line 7, column 1: duplicate key 'format' (first at line 1)",
        ),
        (
            VALID + "      alignment: 0.1\n",
            "line 7, column 7: duplicate key 'alignment' (first at line 6)",
        ),
        (
            VALID.replace("tolerance: 0.02}", "tolerance: 0.02, value: 0.1}"),
            "line 6, column 66: duplicate key 'value' (first at line 6)",
        ),
    ],
    ids=["top-level", "metric", "flow-mapping"],
)
def test_duplicate_keys_are_refused_naming_the_key_and_line(text: str, where: str) -> None:
    message = refused(text)
    assert f"is refused at {where}; YAML would keep only the last value" in message


def test_keys_that_are_the_same_text_are_one_data_set_twice() -> None:
    text = (
        VALID
        + "  2017: {n: 10, metrics: {alignment: 0.5}}\n  '2017': {n: 10, metrics: {alignment: 0.6}}\n"
    )
    assert "'datasets' has the data set key '2017' twice" in refused(text)


@pytest.mark.parametrize(
    "text",
    [
        "format: " + "x" * 100_000 + "\ndatasets: {}\n",
        VALID + "k" * 1000 + ": 1\n",  # YAML allows keys of up to 1024 characters
        VALID.replace("0.7,", "'" + "7" * 100_000 + "',"),
        VALID.replace("n: 1000", "n: [" + "1, " * 2_000 + "1]"),
        VALID.replace("coco", "c" * 1000).replace("n: 1000", "n: 1"),
        VALID + "model: !!python/name:" + "x" * 100_000 + "\n",
    ],
    ids=["format", "unknown-key", "value", "n", "data-set-key", "tag"],
)
def test_errors_quote_a_short_prefix_of_any_value(text: str) -> None:
    assert "..." in refused(text)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (VALID + "recorded: {date: 2025-13-45}\n", "line 7, column 18: cannot read '2025-13-45'"),
        (
            VALID + "source: !!timestamp soon\n",
            "line 7, column 9: cannot read 'soon' as 'timestamp'",
        ),
        (
            VALID.replace("n: 1000", "n: !!int many"),
            "line 4, column 8: cannot read 'many' as 'int'",
        ),
        (VALID.replace("n: 1000", "n: " + "9" * 5000), "line 4, column 8: cannot read '999"),
        (VALID.replace("0.02}", "1" + "0" * 400 + "}"), "tolerance' must be a finite number"),
    ],
    ids=["bad-date", "bad-timestamp", "bad-int", "huge-n", "huge-tolerance"],
)
def test_values_yaml_cannot_convert_are_errors_with_a_line(text: str, problem: str) -> None:
    assert problem in refused(text)


def test_a_non_utf8_file_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = tmp_path / "b.yaml"
    path.write_bytes(VALID.encode("utf-8") + b"source: caf\xe9\n")
    with pytest.raises(BaselineError) as raised:
        baseline.load("b", tmp_path)
    assert str(raised.value).startswith(
        f"Baseline file {path} is not UTF-8 text: byte 0xe9 at line 7 cannot be decoded. Save "
        f"the file as UTF-8"
    )


def test_the_plugin_reports_a_non_utf8_baseline_as_a_test_failure(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    folder = pytester.path / "baselines"
    folder.mkdir()
    (folder / "release.yaml").write_bytes(b"\xff\xfe" + "format: x\n".encode("utf-16-le"))
    pytester.makepyfile(test_gate=GATE_TEST)
    result = run("--modgap-model", models["reference"])
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [f"modgap: Baseline file {folder / 'release.yaml'} is not UTF-8 text: byte 0xff at line 1*"]
    )
    assert "UnicodeDecodeError" not in result.stdout.str()


def test_the_modgap_baselines_command_uses_the_same_loader(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_modgap.cli import main

    (tmp_path / "bomb.yaml").write_text(alias_bomb(6), encoding="utf-8")
    assert main(["baselines", "--dir", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "bomb.yaml is refused at line 1, column 9: anchors and aliases" in error
    assert len(error) < MESSAGE_LIMIT


# Fuzzing: whatever the file holds, only the project's own errors escape, and they stay short.

# Numbers at the edges: NaN and infinities, and ints beyond the float range (10**400 overflows).
_EDGES = st.sampled_from([10**400, -(10**309), math.nan, math.inf, -1.0])
_NUMBERS = _EDGES | st.floats() | st.integers()
_SCALARS = (
    st.none()
    | st.booleans()
    | _NUMBERS
    | st.text(max_size=12)
    | st.sampled_from(["pytest-modgap/1", "2025-06-30", "0.5", "n", "value"])
)
_ANY = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=4)
    ),
    max_leaves=24,
)
_METRIC_ENTRY = (
    _NUMBERS
    | _SCALARS
    | st.dictionaries(
        st.sampled_from(["value", "ci", "tolerance", "other"]),
        _NUMBERS | _SCALARS | st.lists(_NUMBERS | _SCALARS, max_size=3),
        max_size=4,
    )
)
_BASELINE_LIKE = st.fixed_dictionaries(
    {
        "format": st.just("pytest-modgap/1"),
        "datasets": st.dictionaries(
            st.text(max_size=8) | st.integers(),
            st.fixed_dictionaries(
                {
                    "n": st.integers(-3, 10**6) | _SCALARS,
                    "metrics": st.dictionaries(
                        st.sampled_from([*METRICS, "alignmnet"]), _METRIC_ENTRY, max_size=4
                    ),
                }
            )
            | _ANY,
            max_size=3,
        ),
    },
    optional={"tolerance": _NUMBERS | _SCALARS, "model": _SCALARS, "source": _SCALARS},
)
_YAML_TOKENS = [
    *"{}[]:,-&*!#|>'\"?% \n\n  \t",
    "&a ",
    "*a",
    "!!int ",
    "!!float ",
    "!!timestamp ",
    "!!binary ",
    "!!set ",
    "!!python/object:os.system ",
    "<<: ",
    "---\n",
    "...\n",
    ".nan",
    "-.inf",
    "2025-13-45",
    "1e999",
    "9" * 30,
    "format: pytest-modgap/1\n",
    "datasets:\n",
    "  coco:\n",
    "    n: 100\n",
    "    metrics:\n",
    "      alignment: ",
    "value: ",
    "tolerance: ",
    "\x00",
    "\ufeff",
    "\ud800",
]
_YAML_ISH = st.lists(st.sampled_from(_YAML_TOKENS), max_size=40).map("".join)
_FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _only_baseline_errors(text: str) -> None:
    try:
        parse(text)
    except BaselineError as error:
        assert len(str(error)) < MESSAGE_LIMIT, str(error)[:1000]


@_FUZZ
@given(structure=_BASELINE_LIKE)
def test_fuzz_random_structures(structure: object) -> None:
    """Baseline-shaped, so that every level of the validation is reached; anything goes below."""
    _only_baseline_errors(yaml.safe_dump(structure, allow_unicode=True))


@_FUZZ
@given(text=_YAML_ISH | st.text(max_size=200))
def test_fuzz_random_yaml_ish_text(text: str) -> None:
    _only_baseline_errors(text)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@_FUZZ
@given(data=st.binary(max_size=300) | _YAML_ISH.map(lambda text: text.encode("utf-8", "replace")))
def test_fuzz_random_bytes_through_load(fuzz_dir: Path, data: bytes) -> None:
    (fuzz_dir / "b.yaml").write_bytes(data)
    try:
        baseline.load("b", fuzz_dir)
    except BaselineError as error:
        assert len(str(error)) < MESSAGE_LIMIT + len(str(fuzz_dir)), str(error)[:1000]
