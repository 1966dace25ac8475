"""Baselines that know what they measured: one entry per data set, refused comparisons with other
pairs or prompts, slices that survive, exact values, symlinked files, formats old and new."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from pytest_modgap import measure
from pytest_modgap.errors import BaselineError
from pytest_modgap.gate.baselines import assert_no_regression, load
from pytest_modgap.metrics.report import Report
from pytest_modgap.reference import reference_model_dir
from tests.data.formats import Pair, make_pairs, write_images, write_shards

Measure = Callable[..., Report]


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> Measure:
    """``measure`` with the shipped reference model (or ``variant``), few resamples, one cache."""
    cache = tmp_path_factory.mktemp("cache")

    def run(dataset: str, *, variant: str = "reference", **options: object) -> Report:
        model = str(reference_model_dir(variant))
        return measure(model, dataset, cache_dir=cache, n_boot=100, progress=False, **options)

    return run


@pytest.fixture(scope="module")
def two_shard_sets(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """Two WebDataset sets in folders setA and setB: the same images, other captions."""
    root = tmp_path_factory.mktemp("wds")
    pairs = make_pairs(24, second=False)
    other = [Pair(p.image, p.suffix, (f"{p.captions[0]} (B)",), p.label) for p in pairs]
    set_a = write_shards(root / "setA", pairs, shards=2)
    set_b = write_shards(root / "setB", other, shards=2)
    return f"wds:{set_a}/shard-{{0..1}}.tar", f"wds:{set_b}/shard-{{0..1}}.tar"


@pytest.fixture(scope="module")
def classes(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A JSONL manifest whose string labels are class names (zero-shot prompts are built, and
    each class of 22 pairs is a slice)."""
    folder = tmp_path_factory.mktemp("classes")
    pairs = make_pairs(66, second=False)
    names = write_images(folder, pairs)
    kinds = ("circle", "square", "triangle")
    lines = [
        json.dumps({"image": name, "text": pair.captions[0], "label": kinds[i % 3]})
        for i, (name, pair) in enumerate(zip(names, pairs, strict=True))
    ]
    (folder / "animals.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return f"jsonl:{folder / 'animals.jsonl'}"


def test_two_shard_sets_in_one_baseline_keep_two_entries_each_checked_against_its_own(
    tmp_path: Path, measured: Measure, two_shard_sets: tuple[str, str]
) -> None:
    set_a, set_b = two_shard_sets
    report_a, report_b = measured(set_a), measured(set_b)
    assert_no_regression(report_a, "gate", baseline_dir=tmp_path, update=True)
    assert_no_regression(report_b, "gate", baseline_dir=tmp_path, update=True)
    recorded = load("gate", tmp_path)
    assert sorted(recorded.datasets) == ["wds:setA", "wds:setB"]
    assert recorded.datasets["wds:setA"].identity.dataset == set_a  # type: ignore[union-attr]
    assert assert_no_regression(report_a, "gate", baseline_dir=tmp_path, tolerance=0).verdict == (
        "passed"
    )
    assert assert_no_regression(report_b, "gate", baseline_dir=tmp_path, tolerance=0).verdict == (
        "passed"
    )


def test_two_data_sets_landing_on_one_key_are_refused_when_recorded(
    tmp_path: Path, measured: Measure, two_shard_sets: tuple[str, str]
) -> None:
    set_a, set_b = two_shard_sets
    report_a, report_b = measured(set_a), measured(set_b)
    assert_no_regression(report_a, "gate", baseline_dir=tmp_path, update=True, entry="eval")
    before = (tmp_path / "gate.yaml").read_bytes()
    with pytest.raises(BaselineError, match=r"entry 'eval' records data set .*setA.*another data "):
        assert_no_regression(report_b, "gate", baseline_dir=tmp_path, update=True, entry="eval")
    assert (tmp_path / "gate.yaml").read_bytes() == before
    assert_no_regression(report_b, "gate", baseline_dir=tmp_path, update=True, entry="eval-b")
    assert sorted(load("gate", tmp_path).datasets) == ["eval", "eval-b"]


def test_a_run_on_other_pairs_under_an_entry_is_refused_naming_the_differences(
    tmp_path: Path, measured: Measure
) -> None:
    assert_no_regression(measured("shapes", samples=40), "gate", baseline_dir=tmp_path, update=True)
    other = measured("shapes", samples=40, seed=1)
    with pytest.raises(BaselineError) as refused:
        assert_no_regression(other, "gate", baseline_dir=tmp_path)
    message = str(refused.value)
    assert "entry 'shapes' measured something else than this run" in message
    assert "the pairs: the entry measured pairs with fingerprint" in message
    assert "seed: recorded 0, this run 1" in message
    assert "re-record" in message


def test_a_run_with_other_templates_is_refused(
    tmp_path: Path, measured: Measure, classes: str
) -> None:
    recorded = measured(classes)
    assert "zeroshot_top1" in recorded
    assert_no_regression(recorded, "gate", baseline_dir=tmp_path, update=True)
    entry = yaml.safe_load((tmp_path / "gate.yaml").read_text())["datasets"]["animals"]
    assert entry["identity"]["templates"] == ["a photo of a {c}."]
    other = measured(classes, templates=["a drawing of a {c}."])
    with pytest.raises(BaselineError, match=r"templates: recorded \['a photo of a \{c\}\.'\], "):
        assert_no_regression(other, "gate", baseline_dir=tmp_path)


def test_slices_survive_an_update_that_records_none(
    tmp_path: Path, measured: Measure, classes: str
) -> None:
    report = measured(classes)
    assert sorted(report.slices) == ["circle", "square", "triangle"]
    assert_no_regression(report, "gate", baseline_dir=tmp_path, update=True, slices=True)
    assert_no_regression(report, "gate", baseline_dir=tmp_path, update=True)
    assert sorted(load("gate", tmp_path).datasets["animals"].slices) == sorted(report.slices)
    assert assert_no_regression(report, "gate", baseline_dir=tmp_path, slices=True).slice_rows


def test_tolerance_zero_passes_the_report_just_recorded(tmp_path: Path, measured: Measure) -> None:
    report = measured("shapes", samples=40)
    assert_no_regression(report, "gate", baseline_dir=tmp_path, update=True, slices=True)
    comparison = assert_no_regression(report, "gate", baseline_dir=tmp_path, tolerance=0)
    assert comparison.verdict == "passed"
    assert all(row.change == 0.0 for row in comparison.rows)
    recorded = load("gate", tmp_path).datasets["shapes"].metrics
    assert {name: recorded[name].value for name in recorded} == dict(report.metrics)


def test_an_update_through_a_symlink_updates_its_target_and_keeps_the_link(
    tmp_path: Path, measured: Measure
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    mine = tmp_path / "mine"
    mine.mkdir()
    report = measured("shapes", samples=40)
    assert_no_regression(report, "team", baseline_dir=shared, update=True, snapshots=False)
    (mine / "team.yaml").symlink_to(shared / "team.yaml")
    other = measured("shapes", samples=40, variant="regressed")
    assert_no_regression(other, "team", baseline_dir=mine, update=True)
    assert (mine / "team.yaml").is_symlink()
    target = yaml.safe_load((shared / "team.yaml").read_text())
    assert target["model"].endswith("regressed")
    assert (shared / "team.snapshots").is_dir()  # the snapshot lies beside the file it belongs to
    assert assert_no_regression(other, "team", baseline_dir=mine, tolerance=0).snapshot


def test_a_file_of_a_future_format_names_the_upgrade_and_never_deletion(tmp_path: Path) -> None:
    (tmp_path / "gate.yaml").write_text(
        "format: pytest-modgap/3\ndatasets: {shapes: {n: 40, metrics: {alignment: 0.5}}}\n"
    )
    with pytest.raises(BaselineError) as refused:
        load("gate", tmp_path)
    message = str(refused.value)
    assert "written by a newer pytest-modgap" in message
    assert "pip install -U pytest-modgap" in message
    assert "delete" not in message


def test_a_format_1_file_still_checks_as_numbers(tmp_path: Path, measured: Measure) -> None:
    report = measured("shapes", samples=40)
    (tmp_path / "old.yaml").write_text(
        "format: pytest-modgap/1\nprotocol: {samples: 40, seed: 0}\n"
        f"datasets:\n  shapes:\n    n: 40\n    metrics:\n"
        f"      alignment: {{value: {report['alignment'] - 0.01}}}\n"
        f"      centroid_gap: {report['centroid_gap'] + 0.5}\n"
    )
    comparison = assert_no_regression(report, "old", baseline_dir=tmp_path)
    assert comparison.verdict == "passed" and comparison.snapshot is None
    verdicts = {row.name: row.verdict for row in comparison.rows}
    assert verdicts == {"alignment": "ok", "centroid_gap": "improved"}


def test_a_format_1_file_finds_a_shard_set_under_the_loaders_name(
    tmp_path: Path, measured: Measure, two_shard_sets: tuple[str, str]
) -> None:
    report = measured(two_shard_sets[0])
    (tmp_path / "old.yaml").write_text(
        f"format: pytest-modgap/1\ndatasets:\n  wds: {{n: {report.n}, metrics: "
        f"{{alignment: {report['alignment']}}}}}\n"
    )
    assert assert_no_regression(report, "old", baseline_dir=tmp_path).dataset == "wds"


def test_other_devices_and_versions_are_noted_not_refused(
    tmp_path: Path, measured: Measure
) -> None:
    report = measured("shapes", samples=40)
    assert_no_regression(report, "gate", baseline_dir=tmp_path, update=True)
    path = tmp_path / "gate.yaml"
    data = yaml.safe_load(path.read_text())
    data["datasets"]["shapes"]["run"].update(device="cuda:0", dtype="bfloat16", torch="2.11.0")
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    comparison = assert_no_regression(report, "gate", baseline_dir=tmp_path, tolerance=0)
    assert comparison.verdict == "passed"
    assert "device: recorded on cuda, checked on cpu" in comparison.notes
    assert "dtype: recorded with bfloat16, checked with float32" in comparison.notes
    assert any(note.startswith("torch: recorded with 2.11.0") for note in comparison.notes)
