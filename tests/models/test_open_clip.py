"""open_clip models: the spec grammar, the adapter against a stand-in of open_clip's API, and the
real package wherever it imports (it needs a torchvision built for the installed torch)."""

from __future__ import annotations

import json
import secrets
import shutil
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
import torch

from pytest_modgap.data.pairset import PairSet
from pytest_modgap.embedding.pipeline import embed_pairs
from pytest_modgap.errors import EncoderError
from pytest_modgap.models.loader import is_factory_spec, load_encoder
from pytest_modgap.models.open_clip import OpenClipEncoder, OpenClipSpec, parse_open_clip_spec
from tests.models.open_clip_stand_in import (
    ARCH,
    CONTEXT_LENGTH,
    EMBED_DIM,
    make_open_clip,
    save_tiny_weights,
)
from tests.models.test_remote import hub_repo
from tests.models.tiny_models import sample_images

TEXTS = ["a cat", "a diagram", "a photo of two dogs playing in the snow", "x"]


@pytest.fixture
def open_clip(monkeypatch: pytest.MonkeyPatch) -> Iterator[types.ModuleType]:
    module = make_open_clip()
    monkeypatch.setitem(sys.modules, "open_clip", module)
    yield module


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    return save_tiny_weights(tmp_path / "ckpt" / "tiny.safetensors")


def load_open_clip(spec: str, **options: object) -> OpenClipEncoder:
    encoder = load_encoder(spec, device="cpu", **options)  # type: ignore[arg-type]
    assert isinstance(encoder, OpenClipEncoder)
    return encoder


def readme_embeddings(
    open_clip: types.ModuleType, model_name: str, pretrained: str | None, images: list[object]
) -> tuple[torch.Tensor, torch.Tensor]:
    """open_clip's README usage: create_model_and_transforms, get_tokenizer, encode_*."""
    model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=pretrained)
    model.eval()
    tokenizer = open_clip.get_tokenizer(model_name)
    with torch.no_grad():
        image = model.encode_image(torch.stack([preprocess(image) for image in images]))
        text = model.encode_text(tokenizer(TEXTS))
    return image, text


@pytest.mark.parametrize(
    ("spec", "model_name", "pretrained"),
    [
        ("open_clip:ViT-B-32@laion2b_s34b_b79k", "ViT-B-32", "laion2b_s34b_b79k"),
        ("open_clip:ViT-B-32@/ckpt/epoch_32.pt", "ViT-B-32", "/ckpt/epoch_32.pt"),
        (
            "open_clip:hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
            "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
            None,
        ),
        ("open_clip:ViT-B-32@hf-hub:org/name", "hf-hub:org/name", None),
        ("open_clip:local-dir:/models/metaclip", "local-dir:/models/metaclip", None),
    ],
)
def test_spec_grammar(spec: str, model_name: str, pretrained: str | None) -> None:
    assert parse_open_clip_spec(spec) == OpenClipSpec(spec, model_name, pretrained)
    assert not is_factory_spec(spec)


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("open_clip:ViT-B-32", "no weights are named"),
        ("open_clip:@laion2b", "is empty"),
        ("open_clip:ViT-B-32@", "is empty"),
        ("open_clip:hf-hub:", "nothing follows"),
    ],
)
def test_bad_specs_name_every_form(spec: str, problem: str) -> None:
    with pytest.raises(EncoderError, match=problem) as error:
        parse_open_clip_spec(spec)
    assert "open_clip:ARCH@TAG" in str(error.value) and "open_clip:hf-hub:org/name" in str(
        error.value
    )


def test_factory_like_open_clip_spec_is_not_a_factory() -> None:
    """``open_clip:RN50`` matches the module:factory pattern; the open_clip prefix wins."""
    assert not is_factory_spec("open_clip:RN50")


def test_pretrained_tag_equals_open_clips_own_usage(
    open_clip: types.ModuleType, weights: Path
) -> None:
    open_clip.register_tag("tiny-tag", weights)
    encoder = load_open_clip(f"open_clip:{ARCH}@tiny-tag", batch_size=3)
    assert encoder.embedding_dim == EMBED_DIM
    assert open_clip.calls[0] == {"model_name": ARCH, "pretrained": "tiny-tag", "precision": "fp32"}
    images = sample_images(5)
    pairs = PairSet(
        name="oc", images=[np.asarray(image) for image in images], texts=[*TEXTS, "a dog"]
    )
    embedded = embed_pairs(pairs, encoder, batch_size=2, num_workers=0, progress=False)
    image, text = readme_embeddings(open_clip, ARCH, "tiny-tag", images)
    np.testing.assert_allclose(embedded.image, image.numpy(), atol=1e-6, rtol=0)
    np.testing.assert_allclose(embedded.text[: len(TEXTS)], text.numpy(), atol=1e-6, rtol=0)


def test_texts_longer_than_the_context_are_cut_by_open_clips_tokenizer(
    open_clip: types.ModuleType, weights: Path
) -> None:
    encoder = load_open_clip(f"open_clip:{ARCH}@{weights}")
    long_text = "a cat on a mat " * 10
    assert len(long_text) > CONTEXT_LENGTH
    vectors = encoder.encode_texts([long_text, long_text[:40]])
    torch.testing.assert_close(vectors[0], vectors[1])


def test_checkpoint_file_and_tag_pin_the_same_weights_by_content(
    open_clip: types.ModuleType, weights: Path, tmp_path: Path
) -> None:
    open_clip.register_tag("tiny-tag", weights)
    by_tag = load_open_clip(f"open_clip:{ARCH}@tiny-tag")
    by_file = load_open_clip(f"open_clip:{ARCH}@{weights}")
    assert by_tag.weights == by_file.weights and by_tag.weights.startswith("file-sha256:")
    torch.testing.assert_close(by_tag.encode_texts(TEXTS), by_file.encode_texts(TEXTS))
    assert f"open_clip={open_clip.__version__}" in by_file.fingerprint()
    retrained = save_tiny_weights(weights, seed=1)
    assert load_open_clip(f"open_clip:{ARCH}@{retrained}").fingerprint() != by_file.fingerprint()
    newer = make_open_clip(version="4.3.0")
    sys.modules["open_clip"] = newer
    assert load_open_clip(f"open_clip:{ARCH}@{weights}").fingerprint() != by_file.fingerprint()


def test_hf_hub_repo_is_pinned_by_its_snapshot_commit(
    open_clip: types.ModuleType, weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "hub"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    commit = secrets.token_hex(20)
    snapshot = hub_repo(cache, "laion/tiny-clip", commit)
    (snapshot / "open_clip_config.json").write_text(json.dumps({"model_cfg": {"arch": ARCH}}))
    shutil.copy(weights, snapshot / "open_clip_model.safetensors")
    encoder = load_open_clip("open_clip:hf-hub:laion/tiny-clip")
    assert encoder.weights == f"hub:laion/tiny-clip@{commit}"
    same = load_open_clip(f"open_clip:{ARCH}@hf-hub:laion/tiny-clip")
    assert open_clip.calls[-1]["model_name"] == "hf-hub:laion/tiny-clip"
    assert open_clip.calls[-1]["pretrained"] is None
    torch.testing.assert_close(same.encode_texts(TEXTS), encoder.encode_texts(TEXTS))


def test_bfloat16_uses_open_clips_precision_and_casts_images(
    open_clip: types.ModuleType, weights: Path
) -> None:
    encoder = load_open_clip(f"open_clip:{ARCH}@{weights}", dtype="bf16")
    assert open_clip.calls[-1]["precision"] == "pure_bf16"
    vectors = encoder.encode_images(sample_images(3))
    assert vectors.dtype == torch.bfloat16 and vectors.shape == (3, EMBED_DIM)


def test_unknown_tag_is_one_paragraph_naming_the_spec(
    open_clip: types.ModuleType, weights: Path
) -> None:
    with pytest.raises(EncoderError, match=r"not a known tag or valid file path.*list_pretrained"):
        load_open_clip(f"open_clip:{ARCH}@no-such-tag")


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "open_clip", None)
    with pytest.raises(EncoderError, match=r"pip install 'pytest-modgap\[open-clip\]'"):
        load_open_clip("open_clip:ViT-B-32@laion2b_s34b_b79k")


def test_remote_options_are_refused(open_clip: types.ModuleType, weights: Path) -> None:
    with pytest.raises(EncoderError, match="open_clip model, which takes no truncate_dim"):
        load_encoder(f"open_clip:{ARCH}@{weights}", device="cpu", truncate_dim=8)


def test_real_open_clip_equals_its_own_usage(tmp_path: Path) -> None:
    """Runs where open_clip imports (a torchvision matching torch); skipped on the CPU machines."""
    try:
        import open_clip
    except Exception as exc:  # ImportError, or torchvision failing to load its compiled ops
        pytest.skip(f"open_clip does not import here ({type(exc).__name__}: {exc})")
    config_dir = tmp_path / "configs"
    config_dir.mkdir()
    (config_dir / "modgap-tiny.json").write_text(
        json.dumps(
            {
                "embed_dim": 16,
                "vision_cfg": {
                    "image_size": 32,
                    "layers": 1,
                    "width": 32,
                    "patch_size": 8,
                    "head_width": 16,
                },
                "text_cfg": {
                    "context_length": 16,
                    "vocab_size": 49408,
                    "width": 32,
                    "heads": 2,
                    "layers": 1,
                },
            }
        )
    )
    open_clip.add_model_config(config_dir)
    torch.manual_seed(0)
    model = open_clip.create_model("modgap-tiny")
    checkpoint = tmp_path / "tiny.pt"
    torch.save(model.state_dict(), checkpoint)
    encoder = load_open_clip(f"open_clip:modgap-tiny@{checkpoint}", dtype="float32")
    images = sample_images(3)
    image, text = readme_embeddings(open_clip, "modgap-tiny", str(checkpoint), images)
    torch.testing.assert_close(encoder.encode_images(images), image, atol=1e-5, rtol=0)
    torch.testing.assert_close(encoder.encode_texts(TEXTS), text, atol=1e-5, rtol=0)
