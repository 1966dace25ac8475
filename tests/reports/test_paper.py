"""``modgap paper``: Table 4 formatting, the shipped paper values, and a run on miniature data sets.

The end-to-end run uses the shipped reference models on the real Flickr30K, MSCOCO and CIFAR-100
layouts, built tiny in a temporary folder.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_modgap.cli import main
from pytest_modgap.embedding.measurement import measure
from pytest_modgap.gate.baselines import load, shipped_dir
from pytest_modgap.gate.published import paper_values
from pytest_modgap.metrics.report import Report
from pytest_modgap.reference import reference_model_dir
from pytest_modgap.reports.paper import DEFAULT_MODELS, PAPER_BASELINES, paper_table, run_paper

from ..data.layouts import captions_for, cifar100_layout, coco_layout, flickr_captions_txt

REFERENCE = str(reference_model_dir("reference"))
REGRESSED = str(reference_model_dir("regressed"))
CLIP = "openai/clip-vit-base-patch32"
TABLE_4 = {
    CLIP: {"flickr30k": 0.15, "coco": 0.14, "cifar100": 0.20},
    "jinaai/jina-clip-v2": {"flickr30k": 0.38, "coco": 0.37, "cifar100": 0.32},
    "jinaai/jina-embeddings-v4": {"flickr30k": 0.71, "coco": 0.72, "cifar100": 0.56},
}


def _report(alignment: float, *, gap: float = 0.8, cone: float = 0.5, n: int = 1000) -> Report:
    return Report(
        metrics={"alignment": alignment, "centroid_gap": gap, "image_cone": cone},
        n=n,
        ci={"alignment": (alignment - 0.004, alignment + 0.003)},
        ci_level=0.95,
    )


def _line(text: str, start: str, after: str | None = None) -> str:
    """The first line of ``text`` (after the line containing ``after``) that starts with ``start``."""
    lines = text.splitlines()
    if after is not None:
        lines = lines[next(i for i, line in enumerate(lines) if after in line) + 1 :]
    return next(line for line in lines if line.strip().startswith(start))


# --- paper values --------------------------------------------------------------------------------


def test_paper_values_are_table_4() -> None:
    assert paper_values() == TABLE_4
    assert tuple(TABLE_4) == DEFAULT_MODELS


def test_jina_baselines_name_the_model_they_are_looked_up_by() -> None:
    for spec, name in PAPER_BASELINES.items():
        model = load(name, shipped_dir()).model
        if spec != CLIP:  # the OpenAI baseline names no checkpoint; see PAPER_BASELINES
            assert model == spec, f"{name}: model field {model!r} no longer matches {spec!r}"


# --- the table -----------------------------------------------------------------------------------


def test_table_has_a_row_per_model_and_a_column_per_data_set() -> None:
    results = {
        CLIP: {"cifar100": _report(0.2012), "flickr30k": _report(0.1523)},
        "jinaai/jina-embeddings-v4": {"flickr30k": _report(0.7049), "cifar100": _report(0.5511)},
    }
    table = paper_table(results, TABLE_4)
    header = _line(table, "model")
    # Table 4's column order, whatever order the results came in; data sets not measured are left out.
    assert header.split() == ["model", "Flickr30K", "CIFAR-100"]
    clip = _line(table, CLIP)
    assert "0.152 [0.148, 0.155] (paper 0.15)" in clip
    assert "0.201 [0.197, 0.204] (paper 0.20)" in clip
    assert clip.index("(paper 0.15)") < clip.index("(paper 0.20)")
    v4 = _line(table, "jinaai/jina-embeddings-v4")
    assert "0.705 [0.701, 0.708] (paper 0.71)" in v4 and "(paper 0.56)" in v4
    assert "1,000 pairs per data set, 95% CI" in table
    assert "which OpenAI CLIP" in table
    assert "paper: jina-embeddings-v4 (arXiv 2506.18902) Table 4" in table


def test_table_columns_line_up() -> None:
    results = {CLIP: {"coco": _report(0.14)}, "a/b": {"coco": _report(0.5)}}
    table = paper_table(results, TABLE_4)
    header, clip = _line(table, "model"), _line(table, CLIP)
    assert header.index("MSCOCO") == clip.index("0.140")


def test_context_line_per_model() -> None:
    results = {CLIP: {"flickr30k": _report(0.15, gap=0.8213, cone=0.4711)}}
    table = paper_table(results, TABLE_4)
    assert "Context (centroid_gap / image_cone, lower is better):" in table
    assert "0.821 / 0.471" in _line(table, CLIP, after="Context")


def test_custom_models_get_no_paper_value_and_missing_cells_a_dash() -> None:
    results = {
        "./checkpoints/candidate": {"flickr30k": _report(0.61), "coco": _report(0.6)},
        "jinaai/jina-clip-v2@a1b2c3": {"flickr30k": _report(0.39)},
    }
    table = paper_table(results, TABLE_4, labels={"./checkpoints/candidate": "candidate"})
    candidate = _line(table, "candidate")
    assert "0.610 [0.606, 0.613]" in candidate and "paper" not in candidate
    pinned = _line(table, "jinaai/jina-clip-v2@a1b2c3")
    assert "(paper 0.38)" in pinned, "a pinned revision is still the paper's model"
    assert pinned.split()[-1] == "-", "not measured on MSCOCO"
    assert "which OpenAI CLIP" not in table


def test_reports_without_intervals() -> None:
    report = Report(metrics={"alignment": 0.3, "centroid_gap": 1.0, "image_cone": 0.9}, n=50)
    table = paper_table({CLIP: {"coco": report}}, TABLE_4)
    assert "0.300 (paper 0.14)" in _line(table, CLIP)
    assert "50 pairs per data set, no CI" in table


# --- end to end on miniature data sets -----------------------------------------------------------

SAMPLES = 10
COMMON = ["--samples", str(SAMPLES), "--n-boot", "20", "--device", "cpu"]


@dataclass(frozen=True)
class Run:
    status: int
    out: str
    report: Path


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Flickr30K (captions.txt), MSCOCO (val2017) and CIFAR-100 (cifar-100-python/) miniatures."""
    root = tmp_path_factory.mktemp("data")
    flickr = flickr_captions_txt(
        root / "flickr30k", {f"{1000 + i}.jpg": captions_for(f"photo {i}") for i in range(12)}
    )
    images = {i: f"{i:012d}.jpg" for i in range(1, 13)}
    notes = [(10 * i + k, i, f"picture {i}, caption {k}") for i in images for k in range(2)]
    coco_layout(root / "coco", "val2017", images, notes)
    cifar100_layout(root / "cifar100", [i % 4 for i in range(16)], ["apple", "bus", "cat", "dog"])
    return {"flickr30k": flickr, "coco": root / "coco", "cifar100": root / "cifar100"}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def paper_run(
    tmp_path_factory: pytest.TempPathFactory, folders: dict[str, Path], cache_dir: Path
) -> Run:
    report = tmp_path_factory.mktemp("paper") / "report"
    argv = ["paper", "--model", REFERENCE, "--model", REGRESSED, "--report-dir", str(report)]
    argv += [f"--{key}={folder}" for key, folder in folders.items()]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main([*argv, "--cache-dir", str(cache_dir), *COMMON])
    return Run(status, out.getvalue(), report)


def test_paper_prints_table_4_for_every_model(paper_run: Run) -> None:
    assert paper_run.status == 0, paper_run.out
    table = paper_run.out.split("Cross-modal alignment")[1]
    assert _line(table, "model").split() == ["model", "Flickr30K", "MSCOCO", "CIFAR-100"]
    for label in ("reference", "regressed"):
        row = _line(table, label)
        cells = row.split()[1:]
        assert len(cells) == 9, row  # three data sets x "value [low, high]"
        assert "paper" not in row, "the reference models are not in the paper"
        assert " / " in _line(table, label, after="Context")
    assert "Table 4" not in table, "no paper values, no paper line"
    assert f"{SAMPLES} pairs per data set, 95% CI" in table
    assert paper_run.out.count("measured ") == 6, "one progress line per model and data set"


def test_paper_writes_stacked_figures_per_data_set(paper_run: Run) -> None:
    names = sorted(path.name for path in paper_run.report.iterdir())
    assert "index.html" in names
    for dataset in ("flickr30k", "mscoco", "cifar-100"):
        assert f"figure3-{dataset}.png" in names, names
    assert "figure2-flickr30k.png" in names and "figure2-mscoco.png" in names
    for name in names:
        if name.endswith(".png"):
            assert (paper_run.report / name).read_bytes()[:4] == b"\x89PNG"
    page = (paper_run.report / "index.html").read_text(encoding="utf-8")
    assert "2 models (reference, regressed) on 3 data sets (Flickr30K, MSCOCO, CIFAR-100)" in page
    assert f"report folder written: {paper_run.report / 'index.html'}" in paper_run.out


def test_every_model_sees_the_pairs_modgap_measure_samples(
    folders: dict[str, Path], cache_dir: Path
) -> None:
    run = run_paper(
        {"coco": folders["coco"]},
        [REGRESSED, REFERENCE],
        samples=SAMPLES,
        seed=3,
        n_boot=20,
        device="cpu",
        cache_dir=cache_dir,
    )
    assert list(run.results) == [REGRESSED, REFERENCE]
    assert run.labels == {REGRESSED: "regressed", REFERENCE: "reference"}
    assert run.report_index is None
    for spec, row in run.results.items():
        alone = measure(
            spec,
            f"coco:{folders['coco']}",
            samples=SAMPLES,
            seed=3,
            n_boot=20,
            device="cpu",
            cache_dir=cache_dir,
        )
        report = row["coco"]
        assert report.n == SAMPLES
        assert report["alignment"] == pytest.approx(alone["alignment"], abs=1e-6)
        assert report.ci["alignment"] == pytest.approx(alone.ci["alignment"], abs=1e-6)
        assert report.metadata["dataset"] == f"coco:{folders['coco']}"
        assert report.metadata["samples"] == SAMPLES


# --- errors --------------------------------------------------------------------------------------


def _error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("modgap: error: "), captured.err
    assert "measured " not in captured.out, "nothing is measured after a bad argument"
    return lines[0]


def test_a_data_set_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    message = _error(["paper", "--model", REFERENCE], capsys)
    assert "no data set given" in message and "--flickr30k DIR" in message
    assert "see `modgap paper --help`" in message


def test_usage_errors(folders: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    coco = ["--coco", str(folders["coco"])]
    assert "invalid int value" in _error(["paper", *coco, "--samples", "many"], capsys)
    assert "unrecognized arguments: --dataset" in _error(["paper", "--dataset", "x"], capsys)
    assert "does not exist" in _error(["paper", "--flickr30k", str(folders["coco"] / "no")], capsys)


def test_a_model_not_on_this_machine_fails_before_embedding(
    folders: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    argv = ["paper", "--coco", str(folders["coco"]), "--cache-dir", str(tmp_path), *COMMON]
    message = _error([*argv, "--model", REFERENCE, "--model", "nobody/no-such-model"], capsys)
    assert "'nobody/no-such-model'" in message and "not in the local hub cache" in message
    assert not any(tmp_path.iterdir()), "the first model was not embedded before the error"


def test_remote_code_needs_trust_remote_code(
    folders: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "jina-like"
    model.mkdir()
    config = {"model_type": "jina_clip", "auto_map": {"AutoModel": "modeling_clip.JinaCLIPModel"}}
    (model / "config.json").write_text(json.dumps(config), encoding="utf-8")
    argv = ["paper", "--coco", str(folders["coco"]), "--samples", "10", "--model", str(model)]
    message = _error(argv, capsys)
    assert "its own Python code" in message and "--trust-remote-code" in message


def test_precomputed_embeddings_are_refused(
    folders: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["paper", "--coco", str(folders["coco"]), "--samples", "10"]
    argv += ["--model", "embeddings:vectors.npz"]
    assert "precomputed embeddings belong to one data set" in _error(argv, capsys)


def test_help_names_the_defaults_and_the_clip_caveat(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["paper", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--flickr30k DIR", "--coco DIR", "--cifar100 DIR", "--model SPEC"):
        assert option in out
    for model in DEFAULT_MODELS:
        assert model in out
    assert "The paper does not say which OpenAI CLIP it used" in out
