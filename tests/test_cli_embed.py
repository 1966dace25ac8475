"""``modgap embed`` without a Ray address: the local pipeline writes a sharded folder that
``modgap measure --model embeddings:DIR`` reads."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from pytest_modgap.cli import main
from pytest_modgap.data.specs import load_dataset
from pytest_modgap.embedding.embeddings import Embeddings
from pytest_modgap.embedding.pipeline import embed_pairs
from pytest_modgap.models.loader import load_encoder
from pytest_modgap.models.precomputed import PrecomputedEmbeddings
from tests.data.formats import make_pairs, write_jsonl

pytestmark = pytest.mark.usefixtures("offline")


@dataclass(frozen=True)
class Run:
    status: int
    out: str
    err: str


def run(argv: list[str]) -> Run:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return Run(status, out.getvalue(), err.getvalue())


def local_embeddings(dataset: str, samples: int | None, seed: int, model: Path) -> Embeddings:
    """What the local pipeline computes for the pairs ``embed`` draws, on the CPU."""
    encoder = load_encoder(str(model), device="cpu")
    assert not isinstance(encoder, PrecomputedEmbeddings)
    return embed_pairs(load_dataset(dataset).sample(samples, seed), encoder, batch_size=8)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Twelve pairs with a second caption and a label each. Pair 5 repeats both captions of pair
    2, and pair 7's captions are pair 1's second and pair 0's first: the folder stores each distinct
    caption once and must map every column back to it."""
    pairs = make_pairs(12)
    pairs[5] = replace(pairs[5], captions=pairs[2].captions)
    pairs[7] = replace(pairs[7], captions=(pairs[1].captions[1], pairs[0].captions[0]))
    return str(write_jsonl(tmp_path_factory.mktemp("pairs"), pairs))


def test_embed_writes_the_vectors_the_local_pipeline_computes(
    clip_dir: Path, dataset: str, tmp_path: Path
) -> None:
    out = tmp_path / "vectors"
    argv = ["embed", "--model", str(clip_dir), "--dataset", dataset, "--out", str(out)]
    result = run([*argv, "--device", "cpu"])  # the reference below runs on the CPU too
    assert result.status == 0, result.err
    assert f"embedded 12 pairs of {dataset} with {clip_dir} into {out}" in result.out
    assert f"modgap measure --model embeddings:{out} --samples all" in result.out
    assert [path.name for path in tmp_path.iterdir()] == ["vectors"]  # no temporary folder left

    image, text, text2, groups = PrecomputedEmbeddings(f"embeddings:{out}", out).load()
    expected = local_embeddings(dataset, None, 0, clip_dir)
    assert image.shape == expected.image.shape == (12, image.shape[1])
    np.testing.assert_allclose(image, expected.image, atol=1e-6)
    np.testing.assert_allclose(text, expected.text, atol=1e-6)
    assert text2 is not None and expected.text2 is not None
    np.testing.assert_allclose(text2, expected.text2, atol=1e-6)
    assert groups is not None and groups.tolist() == [i % 4 for i in range(12)]
    assert not np.allclose(text, text2, atol=1e-3)  # the columns are not mixed up
    np.testing.assert_array_equal(text[5], text[2])
    np.testing.assert_array_equal(text[7], text2[1])
    np.testing.assert_array_equal(text2[7], text[0])
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert (manifest["pairs"], manifest["texts"]) == (12, 20)  # 24 captions, 4 of them repeats


def test_embed_samples_and_records_what_made_the_vectors(clip_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "vectors"
    argv = ["embed", "--model", str(clip_dir), "--samples", "10", "--seed", "3", "--out", str(out)]
    result = run([*argv, "--device", "cpu"])
    assert result.status == 0, result.err
    assert "embedded 10 pairs of shapes" in result.out
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert manifest["model"] == str(clip_dir)
    assert manifest["dataset"] == "shapes"
    assert (manifest["samples"], manifest["seed"], manifest["pairs"]) == (10, 3, 10)
    assert manifest["ray_address"] is None

    image, _, _, _ = PrecomputedEmbeddings(f"embeddings:{out}", out).load()
    expected = local_embeddings("shapes", 10, 3, clip_dir)
    np.testing.assert_allclose(image, expected.image, atol=1e-6)


def test_embed_refuses_a_folder_that_holds_files(
    clip_dir: Path, dataset: str, tmp_path: Path
) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = run(["embed", "--model", str(clip_dir), "--dataset", dataset, "--out", str(out)])
    assert result.status == 2
    assert "modgap: error:" in result.err and str(out) in result.err
    assert "already holds files" in result.err
    assert result.out == ""
    assert sorted(path.name for path in tmp_path.iterdir()) == ["taken"]
    assert [path.name for path in out.iterdir()] == ["notes.txt"]


def test_embed_refuses_precomputed_embeddings_as_the_model(
    clip_dir: Path, dataset: str, tmp_path: Path
) -> None:
    first = tmp_path / "first"
    embedded = run(["embed", "--model", str(clip_dir), "--dataset", dataset, "--out", str(first)])
    assert embedded.status == 0, embedded.err
    argv = ["embed", "--model", f"embeddings:{first}", "--dataset", dataset]
    result = run([*argv, "--out", str(tmp_path / "second")])
    assert result.status == 2
    assert "nothing to embed" in result.err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["first"]


def test_measure_reads_the_embedded_folder(clip_dir: Path, dataset: str, tmp_path: Path) -> None:
    out = tmp_path / "vectors"
    embedded = run(["embed", "--model", str(clip_dir), "--dataset", dataset, "--out", str(out)])
    assert embedded.status == 0, embedded.err
    argv = ["measure", "--model", f"embeddings:{out}", "--samples", "all", "--no-cache"]
    result = run([*argv, "--n-boot", "50"])
    assert result.status == 0, result.err
    assert "matched_overlap" in result.out


def out_error(argv: list[str], tmp_path: Path) -> str:
    """The one-line error of ``embed`` with a model that does not exist: an --out problem found
    after loading the model would show up as the model's error instead."""
    result = run(["embed", "--model", str(tmp_path / "no-model"), *argv])
    assert result.status == 2 and result.out == "", result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("modgap: error: --out "), result.err
    assert "Traceback" not in result.err and "[Errno" not in result.err, result.err
    return lines[0]


def test_embed_refuses_an_out_that_is_a_symbolic_link_before_embedding(tmp_path: Path) -> None:
    """The folder is filled beside --out and renamed onto it: a link would fail at the end."""
    target = tmp_path / "target"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    message = out_error(["--out", str(link)], tmp_path)
    assert f"--out {link}: it is a symbolic link (to {target})" in message
    assert list(target.iterdir()) == []


def test_embed_refuses_an_out_under_a_file_before_embedding(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x", encoding="utf-8")
    message = out_error(["--out", str(blocker / "vectors")], tmp_path)
    assert f"{blocker} is a file, not a folder" in message


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux's /sys")
def test_embed_refuses_an_out_in_a_folder_nobody_may_write(tmp_path: Path) -> None:
    """/sys refuses new folders even to root, whom a permission check alone lets through."""
    message = out_error(["--out", "/sys/kernel/modgap-vectors"], tmp_path)
    assert "--out /sys/kernel/modgap-vectors: /sys/kernel is not writable" in message
