"""Spec grammar, dispatch and every loading error of ``load_encoder``."""

from __future__ import annotations

import shutil
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest

from pytest_modgap.errors import EncoderError
from pytest_modgap.models.factory import FactoryEncoder
from pytest_modgap.models.hf_clip import HFClipEncoder
from pytest_modgap.models.loader import is_factory_spec, load_encoder
from pytest_modgap.models.precomputed import PrecomputedEmbeddings
from tests.models.tiny_models import build_bert_dir

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_embeddings_prefix_gives_precomputed(tmp_path: Path) -> None:
    path = tmp_path / "vectors.npz"
    np.savez(path, image=np.ones((2, 3)), text=np.ones((2, 3)))
    loaded = load_encoder(f"embeddings:{path}")
    assert isinstance(loaded, PrecomputedEmbeddings) and loaded.path == path


def test_module_factory_spec_gives_factory_encoder() -> None:
    encoder = load_encoder("tests.models.test_factory:build_plain")
    assert isinstance(encoder, FactoryEncoder)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("pkg.module:factory", True),
        ("module:Class.create", True),
        ("C:\\models\\clip", False),
        ("org/name", False),
        ("embeddings:x.npz", False),
        ("./ckpt:v1", False),
    ],
)
def test_factory_spec_grammar(spec: str, expected: bool) -> None:
    assert is_factory_spec(spec) is expected


def test_existing_path_that_looks_like_a_factory_is_a_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("weird:name").mkdir()
    assert not is_factory_spec("weird:name")


def test_directory_with_at_sign_is_a_path_not_a_revision(clip_dir: Path, tmp_path: Path) -> None:
    directory = Path(shutil.copytree(clip_dir, tmp_path / "ckpt@v2"))
    encoder = load_encoder(str(directory), device="cpu")
    assert isinstance(encoder, HFClipEncoder)
    assert encoder.source.repo_id is None and encoder.source.directory == directory.resolve()


def test_revision_after_a_local_directory_is_refused(clip_dir: Path) -> None:
    with pytest.raises(EncoderError, match=r"local directory.*only pins a Hugging Face hub id"):
        load_encoder(f"{clip_dir}@v1")


def test_missing_hub_model_names_the_offline_fix() -> None:
    with pytest.raises(EncoderError) as error:
        load_encoder("nobody-here/no-such-model")
    message = str(error.value)
    assert "'nobody-here/no-such-model'" in message
    assert "HF_HUB_OFFLINE" in message and "local" in message and "offline" in message


def test_missing_local_path_is_reported_as_such(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="neither an existing directory"):
        load_encoder(str(tmp_path / "does" / "not" / "exist"))
    with pytest.raises(EncoderError, match="neither an existing directory"):
        load_encoder("./no-such-checkpoint")


def test_directory_without_config_and_plain_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="has no config.json"):
        load_encoder(str(tmp_path))
    file_path = tmp_path / "weights.bin"
    file_path.write_bytes(b"x")
    with pytest.raises(EncoderError, match="is a file, not a directory"):
        load_encoder(str(file_path))


def test_malformed_config_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(EncoderError, match="cannot be read as JSON"):
        load_encoder(str(tmp_path))


def test_model_without_image_tower_is_refused(tmp_path: Path) -> None:
    directory = build_bert_dir(tmp_path / "bert")
    with pytest.raises(EncoderError) as error:
        load_encoder(str(directory), device="cpu")
    message = str(error.value)
    assert "BertModel" in message and "get_image_features" in message
    assert "encode_image" in message


def test_unloadable_model_type_is_an_encoder_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "no-such-architecture"}')
    with pytest.raises(EncoderError, match="could not load the model"):
        load_encoder(str(tmp_path), device="cpu")


def test_jina_options_on_a_clip_model_are_refused(clip_dir: Path) -> None:
    with pytest.raises(EncoderError, match="takes no task"):
        load_encoder(str(clip_dir), task="retrieval")
    with pytest.raises(EncoderError, match="takes no truncate_dim"):
        load_encoder(str(clip_dir), truncate_dim=8)


@pytest.mark.parametrize("batch_size", [0, -3, True])
def test_bad_batch_size_is_refused(clip_dir: Path, batch_size: int) -> None:
    with pytest.raises(EncoderError, match="not a positive integer"):
        load_encoder(str(clip_dir), batch_size=batch_size)


@pytest.fixture
def hub_cache(clip_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Hugging Face cache holding org/tiny-clip at COMMIT, reachable as main and as v1."""
    cache = tmp_path / "hub"
    repo = cache / "models--org--tiny-clip"
    shutil.copytree(clip_dir, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    (repo / "refs" / "v1").write_text(COMMIT)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


@pytest.mark.parametrize("spec", ["org/tiny-clip", "org/tiny-clip@v1", f"org/tiny-clip@{COMMIT}"])
def test_hub_id_loads_from_the_cache_pinned_to_the_commit(hub_cache: Path, spec: str) -> None:
    encoder = load_encoder(spec, device="cpu")
    assert isinstance(encoder, HFClipEncoder)
    assert encoder.source.repo_id == "org/tiny-clip" and encoder.source.commit == COMMIT
    assert f"hub:org/tiny-clip@{COMMIT}" in encoder.fingerprint()
    assert encoder.model_name == "org/tiny-clip"


def test_unknown_revision_of_a_cached_model_is_reported(hub_cache: Path) -> None:
    with pytest.raises(EncoderError, match="at revision 'v9'"):
        load_encoder("org/tiny-clip@v9")


def test_empty_revision_is_refused() -> None:
    with pytest.raises(EncoderError, match="no revision"):
        load_encoder("org/tiny-clip@")
