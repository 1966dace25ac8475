"""sentence-transformers image-text models: detection, equality with SentenceTransformer.encode, cache."""

from __future__ import annotations

import json
import secrets
import shutil
import sys
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from pytest_modgap.data.pairset import PairSet
from pytest_modgap.embedding.pipeline import embed_pairs
from pytest_modgap.errors import EncoderError
from pytest_modgap.models.loader import load_encoder
from pytest_modgap.models.remote import RemoteCodeEncoder
from pytest_modgap.models.sentence_transformers import SentenceTransformerEncoder
from tests.models.test_remote import hub_repo
from tests.models.tiny_models import CLIP_DIM, build_bert_dir, build_clip_dir, sample_images

pytest.importorskip("sentence_transformers")

TEXTS = ["a cat", "a photo of a cab", "two cats on a mat " * 8, "x"]

# sentence-transformers/clip-ViT-B-32's modules.json: one module, the CLIP model in 0_CLIPModel/.
CLIP_MODULES = [
    {"idx": 0, "name": "0", "path": "0_CLIPModel", "type": "sentence_transformers.models.CLIPModel"}
]
NORMALIZE_MODULE = {
    "idx": 1,
    "name": "1",
    "path": "1_Normalize",
    "type": "sentence_transformers.models.Normalize",
}


def build_st_clip_dir(directory: Path, *, normalize: bool = False) -> Path:
    """A tiny CLIP saved in the clip-ViT-B-32 layout: modules.json + 0_CLIPModel/ (no top-level
    config.json), optionally followed by a Normalize module."""
    build_clip_dir(directory / "0_CLIPModel")
    modules = [*CLIP_MODULES]
    if normalize:
        (directory / "1_Normalize").mkdir()
        modules.append(NORMALIZE_MODULE)
    (directory / "modules.json").write_text(json.dumps(modules, indent=2))
    return directory


@pytest.fixture(scope="module")
def st_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_st_clip_dir(tmp_path_factory.mktemp("st") / "clip-ViT-tiny")


def library_encode(directory: Path, items: list[object]) -> np.ndarray:
    """SentenceTransformer.encode as a user calls it: the reference."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(directory), device="cpu")
    vectors: np.ndarray = model.encode(items, convert_to_numpy=True)
    return vectors


def test_st_folder_is_detected_and_equals_sentence_transformer_encode(st_dir: Path) -> None:
    encoder = load_encoder(str(st_dir), device="cpu")
    assert isinstance(encoder, SentenceTransformerEncoder)
    assert encoder.embedding_dim == CLIP_DIM
    images = sample_images(5)
    pairs = PairSet(
        name="st", images=[np.asarray(image) for image in images], texts=[*TEXTS, "a dog"]
    )
    embedded = embed_pairs(pairs, encoder, batch_size=2, num_workers=0, progress=False)
    np.testing.assert_allclose(embedded.image, library_encode(st_dir, images), atol=1e-5, rtol=0)
    np.testing.assert_allclose(
        embedded.text, library_encode(st_dir, [*TEXTS, "a dog"]), atol=1e-5, rtol=0
    )


def test_every_module_in_modules_json_takes_part(tmp_path: Path) -> None:
    directory = build_st_clip_dir(tmp_path / "normalized", normalize=True)
    encoder = load_encoder(str(directory), device="cpu")
    vectors = encoder.encode_texts(TEXTS)
    torch.testing.assert_close(vectors.norm(dim=1), torch.ones(len(TEXTS)))
    np.testing.assert_allclose(vectors.numpy(), library_encode(directory, TEXTS), atol=1e-5, rtol=0)


def test_st_hub_id_loads_from_the_local_cache_and_is_pinned_by_commit(
    st_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "hub"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    commit = secrets.token_hex(20)
    shutil.copytree(
        st_dir, hub_repo(cache, "sentence-transformers/clip-tiny", commit), dirs_exist_ok=True
    )
    encoder = load_encoder("sentence-transformers/clip-tiny", device="cpu")
    assert isinstance(encoder, SentenceTransformerEncoder)
    assert f"hub:sentence-transformers/clip-tiny@{commit}" in encoder.fingerprint()
    pinned = load_encoder(f"sentence-transformers/clip-tiny@{commit}", device="cpu")
    torch.testing.assert_close(pinned.encode_texts(TEXTS), encoder.encode_texts(TEXTS))


def test_fingerprint_covers_the_module_folders_and_dtype(st_dir: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(st_dir, tmp_path / "copy"))
    before = load_encoder(str(copy), device="cpu")
    assert before.fingerprint() == load_encoder(str(copy), device="cpu").fingerprint()
    assert "sentence-transformers=" in before.fingerprint()
    assert load_encoder(str(copy), device="cpu", dtype="bf16").fingerprint() != before.fingerprint()
    weights_path = copy / "0_CLIPModel" / "model.safetensors"
    weights = load_file(str(weights_path))
    name = next(key for key in weights if key.endswith("visual_projection.weight"))
    save_file({**weights, name: weights[name] + 0.5}, str(weights_path), metadata={"format": "pt"})
    after = load_encoder(str(copy), device="cpu")
    assert after.fingerprint() != before.fingerprint()
    images = sample_images(2)
    assert not torch.allclose(after.encode_images(images), before.encode_images(images))


def test_missing_package_names_the_extra(st_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(EncoderError, match=r"pip install 'pytest-modgap\[sentence-transformers\]'"):
        load_encoder(str(st_dir), device="cpu")


def test_text_only_st_model_is_refused(tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Pooling, Transformer

    bert = build_bert_dir(tmp_path / "bert")
    from transformers import BertTokenizer

    vocab = {token: index for index, token in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a"])}
    BertTokenizer(vocab=vocab).save_pretrained(bert)
    text_only = SentenceTransformer(modules=[Transformer(str(bert)), Pooling(16)], device="cpu")
    text_only.save(str(tmp_path / "text-only"))
    with pytest.raises(EncoderError, match="embeds text but not images"):
        load_encoder(str(tmp_path / "text-only"), device="cpu")


def test_remote_code_model_with_modules_json_stays_remote(v2_dir: Path, tmp_path: Path) -> None:
    """jina-clip-v2 ships modules.json too; its auto_map sends it to its own encode_* methods."""
    directory = Path(shutil.copytree(v2_dir, tmp_path / "jina-like"))
    (directory / "modules.json").write_text(json.dumps(CLIP_MODULES))
    encoder = load_encoder(str(directory), device="cpu", trust_remote_code=True)
    assert isinstance(encoder, RemoteCodeEncoder)


def test_remote_options_are_refused_for_st_models(st_dir: Path) -> None:
    with pytest.raises(EncoderError, match="sentence-transformers model, which takes no task"):
        load_encoder(str(st_dir), device="cpu", task="retrieval")
