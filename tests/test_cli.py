"""The ``modgap`` command end to end on the shipped reference models and the built-in shapes data."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_modgap.cli import main
from pytest_modgap.reference import reference_model_dir

REFERENCE = str(reference_model_dir("reference"))
REGRESSED = str(reference_model_dir("regressed"))
COMMON = ["--samples", "200", "--n-boot", "50", "--device", "cpu"]


@dataclass(frozen=True)
class Run:
    status: int
    out: str
    folder: Path


def _run(argv: list[str], folder: Path) -> Run:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(argv)
    return Run(status, out.getvalue(), folder)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def regressed_run(tmp_path_factory: pytest.TempPathFactory, cache_dir: str) -> Run:
    """The regressed model as candidate against the reference model, with every extra output."""
    folder = tmp_path_factory.mktemp("regressed")
    argv = ["measure", "--model", REGRESSED, "--reference-model", REFERENCE]
    argv += ["--report-dir", str(folder / "report"), "--truncate-dim", "16,32"]
    argv += ["--json", str(folder / "report.json"), "--cache-dir", cache_dir, *COMMON]
    return _run(argv, folder)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory: pytest.TempPathFactory, cache_dir: str) -> Run:
    """The reference model (the default) as candidate against the regressed one."""
    folder = tmp_path_factory.mktemp("reference")
    argv = ["measure", "--reference-model", REGRESSED, "--json", str(folder / "report.json")]
    return _run([*argv, "--cache-dir", cache_dir, *COMMON], folder)


def _row(text: str, metric: str) -> str:
    return next(line for line in text.splitlines() if line[2:].startswith(metric + " "))


def test_regressed_candidate_fails_the_paired_comparison(regressed_run: Run) -> None:
    assert regressed_run.status == 1, regressed_run.out
    comparison = regressed_run.out.split("Paired comparison on the same 200 pairs")[1]
    for metric in ("centroid_gap", "alignment", "image_cone"):
        row = _row(comparison, metric)
        assert row.startswith(">") and "WORSE" in row, row
    assert "The candidate is worse than the reference" in comparison
    assert f"reference: {REFERENCE}" in comparison


def test_reference_candidate_passes(reference_run: Run) -> None:
    assert reference_run.status == 0, reference_run.out
    assert f"model   : {REFERENCE}" in reference_run.out
    assert "better" in _row(reference_run.out.split("Paired comparison")[1], "centroid_gap")
    assert "not worse than the reference on any metric" in reference_run.out


def test_truncation_sweep_table(regressed_run: Run) -> None:
    sweep = regressed_run.out.split("Matryoshka sweep (prefix of the 64-dimensional embeddings):")
    assert len(sweep) == 2, regressed_run.out
    lines = sweep[1].strip().splitlines()
    assert lines[0].split() == ["metric", "better", "d=16", "d=32"]
    assert any(line.startswith("alignment ") for line in lines)


def test_report_dir_stacks_reference_above_candidate(regressed_run: Run) -> None:
    report = regressed_run.folder / "report"
    assert sorted(p.name for p in report.iterdir()) == ["figure2.png", "figure3.png", "index.html"]
    page = (report / "index.html").read_text(encoding="utf-8")
    assert page.index("reference: reference") < page.index("candidate: regressed")
    # Paired comparison rows are not baseline checks: their own section and summary line.
    assert "Comparison with the reference model" in page and '<tr class="bad">' in page
    assert "Baseline checks" not in page and "baseline checks passed" not in page
    assert "Worse than the reference model on" in page
    for name in ("figure2.png", "figure3.png"):
        assert (report / name).read_bytes()[:4] == b"\x89PNG"


def test_json_report_records_the_measurement(regressed_run: Run) -> None:
    data = json.loads((regressed_run.folder / "report.json").read_text(encoding="utf-8"))
    assert data["n"] == 200
    assert data["metadata"]["model"] == REGRESSED
    assert data["metadata"]["dataset"] == "shapes"


def test_compare_two_saved_reports(
    regressed_run: Run, reference_run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = reference_run.folder / "report.json", regressed_run.folder / "report.json"
    assert main(["compare", str(old), str(new)]) == 0
    out = capsys.readouterr().out
    assert f"a: {old}, {REFERENCE} on shapes (n = 200, 95% CI)" in out
    assert f"b: {new}, {REGRESSED} on shapes (n = 200, 95% CI)" in out
    gap = _row(out, "centroid_gap")
    assert gap.startswith(">") and "worse" in gap
    assert _row(out, "image_uniformity").startswith(">")
    assert _row(out, "text_text_similarity").startswith(" "), "no direction, never marked worse"
    assert "Unpaired" in out


def test_baselines_lists_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "release-3.yaml").write_text(
        "format: pytest-modgap/1\n"
        "model: ./checkpoints/release-3\n"
        "source: recorded by pytest --modgap-update\n"
        "datasets:\n"
        "  shapes:\n"
        "    n: 200\n"
        "    metrics:\n"
        "      alignment: {value: 0.9, tolerance: 0.02}\n"
        "      centroid_gap: {value: 0.13}\n",
        encoding="utf-8",
    )
    assert main(["baselines", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"1 baseline in {tmp_path}" in out
    assert "team/release-3" in out
    assert "model     ./checkpoints/release-3" in out
    assert "source    recorded by pytest --modgap-update" in out
    assert "shapes (n = 200): alignment 0.9 (tolerance 0.02), centroid_gap 0.13" in out


def test_baselines_lists_the_shipped_paper_values(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["baselines"]) == 0
    out = capsys.readouterr().out
    assert "paper/jina-embeddings-v4" in out
    assert "alignment 0.71" in out
    assert "arXiv 2506.18902" in out


def _error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("modgap: error: "), captured.err
    return lines[0]


def test_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert "unrecognized arguments: --bogus" in _error(["measure", "--bogus"], capsys)
    assert "not a comma-separated list" in _error(["measure", "--truncate-dim", "a,b"], capsys)
    assert "see `modgap measure --help`" in _error(["measure", "--samples", "x"], capsys)
    assert "required" in _error([], capsys)


def test_file_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.json"
    assert "cannot be read" in _error(["compare", str(missing), str(missing)], capsys)
    not_json = tmp_path / "x.json"
    not_json.write_text("{", encoding="utf-8")
    assert "is not JSON" in _error(["compare", str(not_json), str(not_json)], capsys)
    not_report = tmp_path / "y.json"
    not_report.write_text('{"hello": 1}', encoding="utf-8")
    assert "not a pytest-modgap report" in _error(
        ["compare", str(not_report), str(not_report)], capsys
    )
    assert "is not a folder" in _error(["baselines", "--dir", str(tmp_path / "nope")], capsys)
    (tmp_path / "broken.yaml").write_text("model: [unclosed\n", encoding="utf-8")
    assert "broken.yaml is not valid YAML at line 2" in _error(
        ["baselines", "--dir", str(tmp_path)], capsys
    )


def test_truncating_beyond_the_embedding_size_is_an_error(
    cache_dir: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["measure", "--truncate-dim", "32,100", "--no-ci", "--cache-dir", cache_dir, *COMMON]
    assert "dim 100 exceeds the embedding size 64" in _error(argv, capsys)


def test_help_reads_well(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("measure", "compare", "baselines"):
        assert command in out
    with pytest.raises(SystemExit):
        main(["measure", "--help"])
    out = capsys.readouterr().out
    for option in ("--report-dir DIR", "--truncate-dim D1,D2,...", "--reference-model SPEC"):
        assert option in out
    assert "exit status: 0 done; 1 the candidate is worse" in out


@pytest.mark.parametrize("value", ["nan", "inf", "-0.01", "wide"])
def test_an_unusable_tolerance_is_a_usage_error(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["measure", "--model", str(tmp_path / "no-model"), "--tolerance", value]
    message = _error([*argv, "--reference-model", REFERENCE], capsys)
    assert f"argument --tolerance: {value!r} is not a tolerance: give a finite number >= 0" in (
        message
    )


def test_output_paths_are_checked_before_any_model_is_loaded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model that does not exist would be the error if the outputs were checked after it."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x", encoding="utf-8")
    measure = ["measure", "--model", str(tmp_path / "no-model")]
    assert f"--json {tmp_path}: it is a folder; give a file path" in _error(
        [*measure, "--json", str(tmp_path)], capsys
    )
    assert f"--json {blocker / 'r.json'}: {blocker} is a file, not a folder." in _error(
        [*measure, "--json", str(blocker / "r.json")], capsys
    )
    assert f"--report-dir {blocker}: {blocker} is a file, not a folder." in _error(
        [*measure, "--report-dir", str(blocker)], capsys
    )
    paper = ["paper", "--flickr30k", str(tmp_path / "no-data"), "--report-dir", str(blocker)]
    assert f"--report-dir {blocker}: {blocker} is a file, not a folder." in _error(paper, capsys)


def test_samples_all_measures_every_pair_and_more_than_the_set_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    vectors = tmp_path / "vectors.npz"
    np.savez(vectors, image=rng.normal(size=(30, 8)), text=rng.normal(size=(30, 8)))
    report = tmp_path / "report.json"
    model = ["--model", f"embeddings:{vectors}", "--no-ci", "--json", str(report)]
    assert main(["measure", *model, "--samples", "all"]) == 0
    assert json.loads(report.read_text(encoding="utf-8"))["n"] == 30
    message = _error(["measure", *model, "--samples", "31"], capsys)
    assert "more pairs than" in message and "(30)" in message and "--samples all" in message


def _vectors(path: Path, seed: int = 0, shift: float = 0.0) -> str:
    import numpy as np

    rng = np.random.default_rng(seed)
    image = rng.normal(size=(40, 8))
    np.savez(path, image=image, text=image + 0.5 * rng.normal(size=(40, 8)) + shift)
    return f"embeddings:{path}"


def test_measure_history_appends_and_prints_the_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = tmp_path / "runs" / "history.jsonl"
    model = _vectors(tmp_path / "v.npz")
    argv = ["measure", "--model", model, "--samples", "all", "--n-boot", "20"]
    assert main([*argv, "--history", str(history)]) == 0
    first = capsys.readouterr().out
    assert f"measurement appended to {history}" in first and "previous run" not in first
    _vectors(tmp_path / "v.npz", shift=0.3)  # a new release of the same model spec
    assert main([*argv, "--history", str(history)]) == 0
    second = capsys.readouterr().out
    change = next(line for line in second.splitlines() if line.startswith("change since"))
    assert "centroid_gap +" in change, change  # the shift widened the gap: a signed change
    entries = [json.loads(line) for line in history.read_text(encoding="utf-8").splitlines()]
    assert [e["source"] for e in entries] == ["modgap measure", "modgap measure"]
    assert entries[0]["model"] == model and entries[0]["n"] == 40

    report_dir = tmp_path / "history-report"
    assert main(["history", str(history), "--report-dir", str(report_dir)]) == 0
    out = capsys.readouterr().out
    assert f"embeddings:{tmp_path / 'v.npz'}: 2 runs" in out
    assert f"report folder written: {report_dir / 'index.html'}" in out
    (trend,) = report_dir.glob("trend-*.png")  # one data set, one figure, named after it
    assert trend.read_bytes()[:4] == b"\x89PNG"


def test_history_of_a_missing_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    message = _error(["history", str(tmp_path / "nope.jsonl")], capsys)
    assert "no such history file" in message and "--history" in message


def test_baselines_never_wrap_inside_an_option_or_a_metric(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command = (
        "pytest --modgap-model=/home/ci/a/rather/long/path/to/checkpoints/release-3 "
        "--modgap-baseline-dir=/home/ci/a/long/baseline/folder --modgap-update "
        "'tests/test_gap.py::test_no_gap_regression[modgap:release-3]'"
    )
    metrics = "\n".join(
        f"      {name}: {{value: 0.{index}123, tolerance: 0.02}}"
        for index, name in enumerate(
            ("centroid_gap", "pair_distance", "relative_gap", "alignment", "image_cone"), start=1
        )
    )
    (tmp_path / "release-3.yaml").write_text(
        "format: pytest-modgap/1\n"
        "model: /home/ci/a/rather/long/path/to/checkpoints/release-3\n"
        f'source: "recorded with: {command}"\n'
        f"datasets:\n  shapes:\n    n: 500\n    metrics:\n{metrics}\n",
        encoding="utf-8",
    )
    assert main(["baselines", "--dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.strip() == command for line in lines), "the command is copyable as one line"
    for index, name in enumerate(
        ("centroid_gap", "pair_distance", "relative_gap", "alignment", "image_cone"), start=1
    ):
        assert any(f"{name} 0.{index}123 (tolerance 0.02)" in line for line in lines), name


def test_a_missing_gpu_names_the_commands_own_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    argv = [
        "measure",
        "--device",
        "cuda",
        "--samples",
        "10",
        "--no-ci",
        "--cache-dir",
        str(tmp_path),
    ]
    message = _error(argv, capsys)
    assert "modgap measure --device cpu" in message


def test_report_dir_without_matplotlib_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    model = _vectors(tmp_path / "v.npz")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    argv = ["measure", "--model", model, "--samples", "all", "--no-ci"]
    assert main([*argv, "--report-dir", str(tmp_path / "report")]) == 0
    out = capsys.readouterr().out
    assert "figures not drawn: matplotlib is not installed" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["measure", "--model", "", "--samples", "10", "--no-ci"],
        ["measure", "--model", "  ", "--samples", "10", "--no-ci"],
        ["measure", "--reference-model", "", "--samples", "10", "--no-ci"],
        ["embed", "--model", "", "--out", "{tmp}/out"],
        ["paper", "--model", "", "--coco", "{tmp}/coco"],
    ],
)
def test_an_empty_model_spec_is_an_error_not_the_reference_model(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unset $CANDIDATE must not quietly measure the shipped model and exit 0."""
    argv = [arg.format(tmp=tmp_path) for arg in argv]
    option = "--reference-model" if "--reference-model" in argv else "--model"
    message = _error(argv, capsys)
    assert f"argument {option}: the model spec is empty" in message, message
    assert "unset" in message


@pytest.mark.parametrize(
    "command", [["measure"], ["embed", "--out", "{tmp}/out"], ["paper", "--coco", "{tmp}/coco"]]
)
def test_a_negative_seed_is_a_usage_error(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """numpy refuses a negative seed with a bare ValueError after the data set is loaded."""
    argv = [arg.format(tmp=tmp_path) for arg in command]
    message = _error([*argv, "--seed", "-1"], capsys)
    assert "argument --seed: '-1' is not a seed: give an integer >= 0" in message, message


def test_the_default_samples_shrink_to_a_smaller_set_and_say_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The user did not ask for 1,000 pairs: a 40-pair set is measured whole, and the output says
    how many; an explicit --samples beyond the set stays an error."""
    model = _vectors(tmp_path / "v.npz")
    report = tmp_path / "report.json"
    argv = ["measure", "--model", model, "--no-ci", "--json", str(report)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "measuring all 40 pairs: the set holds fewer than the default --samples 1000" in out
    assert json.loads(report.read_text(encoding="utf-8"))["n"] == 40
    message = _error([*argv, "--samples", "1000"], capsys)
    assert "more pairs than" in message and "(40)" in message


def test_the_default_samples_shrink_for_a_data_set_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.data.formats import make_pairs, write_jsonl

    dataset = str(write_jsonl(tmp_path, make_pairs(6)))
    argv = ["measure", "--dataset", dataset, "--no-ci", "--device", "cpu", "--no-cache"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "measuring all 6 pairs: the set holds fewer than the default --samples 1000" in out
    assert f"dataset : {dataset} (6 pairs, seed 0)" in out


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse rewraps option help


@pytest.mark.parametrize("command", [[], ["measure"], ["embed"]])
def test_help_lists_every_spec_form_the_loaders_know(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The lists come from the registries, so a new loader or model family cannot be missing."""
    from pytest_modgap.data.specs import describe_dataset_specs
    from pytest_modgap.models.loader import MODEL_SPEC_FORMS

    out = _help(command, capsys)
    for form in ("wds:", "parquet:", "hf:", "csv:", "open_clip:", "embeddings:DIR"):
        assert form in out, form
    for line in describe_dataset_specs().splitlines()[1:]:
        assert " ".join(line.split()) in out, line
    for form, description in MODEL_SPEC_FORMS:
        assert f"{form} {description}" in out, form


@pytest.mark.parametrize("command", ["measure", "embed"])
def test_ray_help_names_every_address_form(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "local, auto, ray://HOST:PORT or HOST:PORT" in _help([command], capsys)


def test_the_reference_comparison_uses_the_gates_default_tolerance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One default for one idea: `--reference-model` without --tolerance allows what a baseline
    without a tolerance allows."""
    from pytest_modgap.gate.baselines import DEFAULT_TOLERANCE

    candidate = _vectors(tmp_path / "candidate.npz", seed=1)
    reference = _vectors(tmp_path / "reference.npz", seed=2)
    argv = ["measure", "--model", candidate, "--reference-model", reference, "--samples", "all"]
    main([*argv, "--no-ci"])
    comparison = capsys.readouterr().out.split("Paired comparison on the same 40 pairs")[1]
    assert f" {DEFAULT_TOLERANCE:.4f} " in _row(comparison, "alignment")
    assert f"(default: {DEFAULT_TOLERANCE}, a baseline's default)" in _help(["measure"], capsys)


def test_errors_from_the_loaders_name_the_commands_own_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The loaders serve pytest and the command alike; the command's user never typed
    --modgap-model, so the message must name what they typed."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x", encoding="utf-8")
    quick = ["--samples", "10", "--no-ci", "--no-cache"]
    message = _error(["measure", "--model", str(blocker), *quick], capsys)
    assert "Point --model at a directory" in message, message
    argv = ["measure", "--model", REFERENCE, "--reference-model", str(blocker), *quick]
    message = _error(argv, capsys)
    assert "Point --reference-model at a directory" in message, message
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "config.json").write_text('{"auto_map": {"AutoModel": "modeling.M"}}')
    message = _error(["measure", "--model", str(remote), *quick], capsys)
    assert "allow it with --trust-remote-code" in message, message
    shards = f"wds:{tmp_path}/missing/{{000..001}}.tar"
    message = _error(["measure", "--dataset", shards, *quick], capsys)
    assert f"relative paths are taken from the current directory, {Path.cwd()}" in message
    assert "pytest runs in" not in message, message


def test_errors_outside_the_command_keep_the_pytest_options(tmp_path: Path) -> None:
    from pytest_modgap.errors import EncoderError
    from pytest_modgap.models.source import resolve_model_source

    blocker = tmp_path / "a-file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(EncoderError, match="Point --modgap-model at a directory"):
        resolve_model_source(str(blocker))
