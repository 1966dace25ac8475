"""A model's identity from its files, without loading it: what the embedding cache is keyed by, so
that a cache hit builds no model. Known for the transformers CLIP family and same-folder remote
code; None wherever only the loaded model can tell."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pytest_modgap.errors import EncoderError
from pytest_modgap.models.identity import model_identity
from pytest_modgap.models.loader import load_encoder


def test_a_clip_directory_has_an_identity_that_describes_its_loaded_encoder(
    clip_dir: Path,
) -> None:
    identity = model_identity(str(clip_dir), device="cpu")
    assert identity is not None and identity.family == "hf_clip"
    assert (identity.device, identity.dtype) == ("cpu", "float32")
    assert "dir-sha256:" in identity.key and "transformers=" in identity.key
    assert identity.describes(load_encoder(str(clip_dir), device="cpu"))
    assert not identity.describes(load_encoder(str(clip_dir), device="cpu", dtype="bfloat16"))
    other = model_identity(str(clip_dir), device="cpu", dtype="bf16")
    assert other is not None and other.key != identity.key and other.dtype == "bfloat16"


def test_any_file_of_the_directory_changes_the_identity(clip_dir: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(clip_dir, tmp_path / "copy"))
    before = model_identity(str(copy), device="cpu")
    (copy / "tokenizer_config.json").write_text(
        (copy / "tokenizer_config.json").read_text(encoding="utf-8") + " ", encoding="utf-8"
    )
    after = model_identity(str(copy), device="cpu")
    assert before is not None and after is not None and before.key != after.key


def test_remote_code_has_an_identity_only_when_allowed_and_in_its_own_folder(
    v4_dir: Path, tmp_path: Path
) -> None:
    assert model_identity(str(v4_dir), device="cpu") is None  # the loader refuses it, with why
    identity = model_identity(str(v4_dir), device="cpu", trust_remote_code=True)
    assert identity is not None and identity.family == "remote"
    assert "task=None" in identity.key and "prompt_name=passage" in identity.key
    assert "peft=" in identity.key
    with_task = model_identity(str(v4_dir), device="cpu", trust_remote_code=True, task="code")
    assert with_task is not None and with_task.key != identity.key
    encoder = load_encoder(str(v4_dir), device="cpu", trust_remote_code=True)
    assert identity.describes(encoder)

    elsewhere = Path(shutil.copytree(v4_dir, tmp_path / "elsewhere"))
    config = json.loads((elsewhere / "config.json").read_text(encoding="utf-8"))
    config["auto_map"]["AutoModel"] = "some-org/implementation--modeling.Model"
    (elsewhere / "config.json").write_text(json.dumps(config), encoding="utf-8")
    assert model_identity(str(elsewhere), device="cpu", trust_remote_code=True) is None


def test_specs_only_a_loaded_model_can_describe_have_no_identity(
    clip_dir: Path, tmp_path: Path
) -> None:
    assert model_identity("embeddings:/some/vectors.npz") is None
    assert model_identity("my_package.models:build") is None
    assert model_identity(str(tmp_path / "missing")) is None  # the loader gives the error
    assert model_identity(str(clip_dir), device="cpu", task="retrieval") is None
    layout = Path(shutil.copytree(clip_dir, tmp_path / "st"))
    (layout / "modules.json").write_text("[]", encoding="utf-8")
    assert model_identity(str(layout), device="cpu") is None  # sentence-transformers' own loader


def test_a_device_that_is_not_there_is_the_loaders_error(clip_dir: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    with pytest.raises(EncoderError, match="no CUDA GPU"):
        model_identity(str(clip_dir), device="cuda")
