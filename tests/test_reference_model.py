"""The shipped reference models: they load offline, tokenise any text, and differ in the gap."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_modgap.data.builtin import load_shapes
from pytest_modgap.errors import ModgapError
from pytest_modgap.reference import REFERENCE_VARIANTS, reference_model_dir
from pytest_modgap.reference.train import (
    IMAGE_SIZE,
    MAX_TEXT_LENGTH,
    embed_pairs,
    gap_and_alignment,
    main,
)


def _load(directory: Path) -> tuple[Any, Any]:
    from transformers import AutoProcessor, CLIPModel

    return CLIPModel.from_pretrained(directory), AutoProcessor.from_pretrained(directory)


@pytest.fixture(scope="module")
def shipped() -> dict[str, tuple[Any, Any]]:
    return {variant: _load(reference_model_dir(variant)) for variant in REFERENCE_VARIANTS}


@pytest.fixture(scope="module")
def measured(shipped: dict[str, tuple[Any, Any]]) -> dict[str, dict[str, float]]:
    pairs = load_shapes().sample(300, seed=0)
    return {
        variant: gap_and_alignment(*embed_pairs(model, processor, pairs))
        for variant, (model, processor) in shipped.items()
    }


@pytest.mark.parametrize("variant", REFERENCE_VARIANTS)
def test_shipped_model_loads_offline_and_is_small(
    variant: str, shipped: dict[str, tuple[Any, Any]]
) -> None:
    model, processor = shipped[variant]
    directory = reference_model_dir(variant)
    assert model.config.vision_config.image_size == IMAGE_SIZE
    assert model.config.text_config.max_position_embeddings == MAX_TEXT_LENGTH
    assert processor.image_processor.crop_size["height"] == IMAGE_SIZE
    assert (directory / "model.safetensors").is_file()
    size = sum(f.stat().st_size for f in directory.iterdir())
    assert size < 3_000_000, f"{directory} holds {size:,} bytes; it must stay small to ship"


def test_shipped_tokenizer_is_clip_format(shipped: dict[str, tuple[Any, Any]]) -> None:
    directory = reference_model_dir("reference")
    vocab = json.loads((directory / "vocab.json").read_text(encoding="utf-8"))
    merges = (directory / "merges.txt").read_text(encoding="utf-8").splitlines()
    assert merges[0].startswith("#version")
    assert {"<|startoftext|>", "<|endoftext|>", "circle</w>", "a</w>"} <= set(vocab)
    assert len(vocab) == shipped["reference"][0].config.text_config.vocab_size


def test_tokenizer_encodes_arbitrary_text(shipped: dict[str, tuple[Any, Any]]) -> None:
    tokenizer = shipped["reference"][1].tokenizer
    ids = tokenizer("Zebra #42 ~ quïte unusual_TEXT! {x}")["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    # Unknown words fall back to byte tokens, never to the unknown token (which is end-of-text).
    assert tokenizer.eos_token_id not in ids[1:-1]
    assert tokenizer.decode(ids, skip_special_tokens=True).replace(" ", "") == (
        "zebra#42~quïteunusual_text!{x}"
    )
    # Caption words are single tokens, so captions fit the 32 positions.
    assert len(tokenizer("a large red circle on the left")["input_ids"]) == 9
    long = tokenizer("word " * 100, truncation=True)["input_ids"]
    assert len(long) == MAX_TEXT_LENGTH


def test_reference_has_smaller_gap_and_higher_alignment_than_regressed(
    measured: dict[str, dict[str, float]],
) -> None:
    reference, regressed = measured["reference"], measured["regressed"]
    assert reference["centroid_gap"] + 0.3 <= regressed["centroid_gap"], measured
    assert reference["alignment"] >= regressed["alignment"] + 0.2, measured
    assert reference["alignment"] > 0.7, measured


def test_unknown_variant_is_a_clear_error() -> None:
    with pytest.raises(ModgapError, match="'reference' and 'regressed'"):
        reference_model_dir("best")


def test_short_training_run_saves_a_loadable_model(tmp_path: Path) -> None:
    out, early = tmp_path / "final", tmp_path / "early"
    argv = ["--out", str(out), "--regressed-out", str(early), "--steps", "3"]
    argv += ["--regressed-step", "1", "--train-pairs", "256", "--seed", "3"]
    assert main(argv) == 0
    for directory, step in ((out, 3), (early, 1)):
        model, processor = _load(directory)
        report = json.loads((directory / "training.json").read_text())
        assert report["step"] == step
        batch = processor(text=["a small blue star at the top"], return_tensors="pt")
        assert model.get_text_features(**batch) is not None


@pytest.mark.parametrize(
    "argv",
    [
        ["--steps", "0"],
        ["--steps", "5", "--regressed-step", "5", "--regressed-out", "elsewhere"],
        ["--seed", "20250601"],
        ["--train-pairs", "10"],
    ],
)
def test_bad_training_arguments_are_refused(argv: list[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path / "out"), *argv])
    assert exit_info.value.code == 2
    assert not (tmp_path / "out").exists()
