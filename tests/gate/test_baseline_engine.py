"""The baseline engine without the fixture: assert_no_regression, directions, tolerances, the
shipped paper baselines, names and data set keys.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import yaml

from pytest_modgap.errors import BaselineError
from pytest_modgap.gate import baselines as baseline
from pytest_modgap.gate.baselines import BaselineRegression, assert_no_regression, dataset_key
from pytest_modgap.metrics.report import Report


def make_report(n: int = 1000, dataset: str = "coco:/data/coco", **metrics: float) -> Report:
    """A report as ``measure`` returns it, with 95% CIs of +-0.01."""
    return Report(
        metrics=metrics,
        n=n,
        ci={name: (value - 0.01, value + 0.01) for name, value in metrics.items()},
        ci_level=0.95,
        metadata={"model": "my/model", "dataset": dataset, "samples": n, "seed": 0},
    )


def test_shipped_paper_baselines_hold_the_published_values(tmp_path: Path) -> None:
    expected = {
        "paper/openai-clip": (0.15, 0.14, 0.20),
        "paper/jina-clip-v2": (0.38, 0.37, 0.32),
        "paper/jina-embeddings-v4": (0.71, 0.72, 0.56),
    }
    assert baseline.shipped_names() == sorted([*expected, "paper/liang2022-clip"])
    for name, values in expected.items():
        loaded = baseline.load(name, tmp_path)
        assert loaded.shipped and "Table 4" in (loaded.source or "")
        assert loaded.tolerance == 0.05
        for key, value in zip(("flickr30k", "coco", "cifar100"), values, strict=True):
            assert loaded.datasets[key].n == 1000
            assert loaded.datasets[key].metrics["alignment"].value == value
    liang = baseline.load("paper/liang2022-clip", tmp_path).datasets["coco"]
    assert liang.n == 5000
    assert {name: m.value for name, m in liang.metrics.items()} == {
        "centroid_gap": 0.82,
        "image_cone": 0.47,
        "text_cone": 0.51,
    }


def test_a_model_that_closes_the_gap_passes_the_paper_baseline(tmp_path: Path) -> None:
    report = make_report(alignment=0.74)
    comparison = assert_no_regression(report, "paper/jina-embeddings-v4", baseline_dir=tmp_path)
    assert comparison.verdict == "passed" and comparison.rows[0].verdict == "ok"
    clip_like = make_report(alignment=0.15)
    with pytest.raises(BaselineRegression) as raised:
        assert_no_regression(clip_like, "paper/jina-embeddings-v4", baseline_dir=tmp_path)
    message = str(raised.value)
    assert (
        "> alignment  0.7200    0.1500 [0.1400, 0.1600]  -0.5700  0.0500     REGRESSED" in message
    )
    assert "published baseline and is never re-recorded" in message
    assert isinstance(raised.value, AssertionError)


def test_direction_tolerance_and_none_metrics(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text(
        "format: pytest-modgap/1\ntolerance: 0.05\ndatasets:\n  coco:\n    n: 1000\n    metrics:\n"
        "      centroid_gap: {value: 0.40, tolerance: 0.02}\n      alignment: 0.70\n"
        "      text_text_similarity: 0.90\n"
    )
    better = make_report(centroid_gap=0.10, alignment=0.95, text_text_similarity=0.10)
    rows = {
        row.name: row.verdict
        for row in assert_no_regression(better, "b", baseline_dir=tmp_path).rows
    }
    assert rows == {
        "centroid_gap": "improved",
        "alignment": "improved",
        "text_text_similarity": "info",
    }
    # Exactly at the tolerance is not a regression, despite 0.42 - 0.40 > 0.02 in binary floats.
    edge = make_report(centroid_gap=0.42, alignment=0.65, text_text_similarity=0.9)
    assert assert_no_regression(edge, "b", baseline_dir=tmp_path).verdict == "passed"
    worse = make_report(centroid_gap=0.43, alignment=0.66, text_text_similarity=0.9)
    with pytest.raises(BaselineRegression) as raised:
        assert_no_regression(worse, "b", baseline_dir=tmp_path)
    assert [row.name for row in raised.value.comparison.regressed] == ["centroid_gap"]
    # The call's tolerance overrides the file's; metrics= restricts the check.
    assert (
        assert_no_regression(worse, "b", baseline_dir=tmp_path, tolerance=0.2).verdict == "passed"
    )
    only = assert_no_regression(worse, "b", baseline_dir=tmp_path, metrics=["alignment"])
    assert [row.name for row in only.rows] == ["alignment"]


def test_update_records_then_checks_and_never_writes_shipped(tmp_path: Path) -> None:
    report = make_report(n=200, dataset="flickr30k:/data/f30k", alignment=0.5, centroid_gap=0.3)
    written = assert_no_regression(report, "team/release-1", baseline_dir=tmp_path, update=True)
    assert written.verdict == "updated" and written.path == tmp_path / "team" / "release-1.yaml"
    data = yaml.safe_load(written.path.read_text())
    assert data["datasets"]["flickr30k"]["metrics"]["alignment"] == {
        "value": 0.5,
        "ci": [0.49, 0.51],
    }
    assert "{value: 0.5, ci: [0.49, 0.51]}" in written.path.read_text()
    assert assert_no_regression(report, "team/release-1", baseline_dir=tmp_path).verdict == "passed"
    with pytest.raises(BaselineError, match="published baseline shipped with pytest-modgap"):
        assert_no_regression(report, "paper/openai-clip", baseline_dir=tmp_path, update=True)


def test_missing_baseline_outside_pytest_names_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    with pytest.raises(BaselineError, match="record this one with: pytest --modgap-model=my/model"):
        assert_no_regression(make_report(alignment=0.5), "nope", baseline_dir=tmp_path)


@pytest.mark.parametrize("name", ["../escape", "/abs/path", "a//b", ""])
def test_baseline_names_stay_inside_the_folder(tmp_path: Path, name: str) -> None:
    with pytest.raises(BaselineError, match="is not a valid name"):
        assert_no_regression(make_report(alignment=0.5), name, baseline_dir=tmp_path)


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ("shapes", "shapes"),
        ("flickr30k:/data/flickr30k", "flickr30k"),
        ("Flickr8k:~/f8k", "flickr8k"),
        ("mscoco:/data/coco", "coco"),
        ("coco:/data/coco/annotations/captions_val2017.json", "coco"),
        ("cifar100:/data/cifar", "cifar100"),
        ("cifar100:/data/cifar#train", "cifar100#train"),
        ("jsonl:/data/pairs.jsonl", "pairs"),
        ("/data/my-set.jsonl", "my-set"),
        ("embeddings:/tmp/x.npz", "embeddings"),
        ("wds:/data/setA/shard-{000..009}.tar", "wds:setA"),
        ("wds:/data/setB/*.tar?image=png", "wds:setB"),
        ("parquet:/data/eval/train.parquet", "parquet:train.parquet"),
        ("hf:/data/coco-hf#test", "hf:coco-hf#test"),
        ("csv:/data/flickr.csv", "csv:flickr.csv"),
    ],
)
def test_dataset_keys_are_unique_per_data_set(spec: str, key: str) -> None:
    assert dataset_key(spec) == key


@pytest.mark.parametrize(
    ("spec", "key"),
    [("wds:/data/setA/{0..9}.tar", "wds"), ("cifar100:/c#train", "cifar100"), ("shapes", "shapes")],
)
def test_format_1_keys_are_the_loaders_name(spec: str, key: str) -> None:
    from pytest_modgap.gate.baselines.location import legacy_dataset_key

    assert legacy_dataset_key(spec) == key


def test_concurrent_updates_of_one_file_keep_every_data_set(tmp_path: Path) -> None:
    """Like xdist workers recording different data sets into one baseline at the same moment."""
    specs = [f"jsonl:/data/set{i}.jsonl" for i in range(8)]
    threads = [
        threading.Thread(
            target=assert_no_regression,
            args=(make_report(n=100, dataset=spec, alignment=0.5), "shared"),
            kwargs={"baseline_dir": tmp_path, "update": True},
        )
        for spec in specs
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    data = yaml.safe_load((tmp_path / "shared.yaml").read_text())
    assert sorted(data["datasets"]) == [f"set{i}" for i in range(8)]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["shared.yaml"]
