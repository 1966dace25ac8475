"""Remote-code models (jina-clip-v2, jina-embeddings-v4 stand-ins): refusal, options, encoding."""

from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path
from typing import Any

import huggingface_hub.constants
import pytest
import torch

from pytest_modgap.errors import EncoderError
from pytest_modgap.models.base import Encoder, PixelEncoder
from pytest_modgap.models.loader import load_encoder
from pytest_modgap.models.remote import RemoteCodeEncoder
from tests.models.tiny_models import CLIP_DIM, build_remote_dir, sample_images


def load_remote(spec: Path | str, **options: Any) -> RemoteCodeEncoder:
    encoder = load_encoder(str(spec), device="cpu", trust_remote_code=True, **options)
    assert isinstance(encoder, RemoteCodeEncoder)
    return encoder


def test_remote_code_is_refused_without_trust(v4_dir: Path) -> None:
    with pytest.raises(EncoderError) as error:
        load_encoder(str(v4_dir))
    message = str(error.value)
    assert str(v4_dir) in message
    assert "trust_remote_code=True" in message and "--modgap-trust-remote-code" in message
    assert "modeling_fake_jina.FakeJinaV4Model" in message


def test_v4_style_model_encodes_with_retrieval_task_and_passage_prompt(v4_dir: Path) -> None:
    encoder = load_remote(v4_dir)
    assert isinstance(encoder, Encoder) and not isinstance(encoder, PixelEncoder)
    assert encoder.task == "retrieval" and encoder.embedding_dim == CLIP_DIM
    assert encoder.encode_texts(["a cat", "a dog", "x"]).shape == (3, CLIP_DIM)
    assert encoder.encode_images(sample_images(2)).shape == (2, CLIP_DIM)
    text_call, image_call = encoder.model.calls[-2:]
    assert text_call == (
        "text",
        {"task": "retrieval", "truncate_dim": None, "prompt_name": "passage", "batch_size": 64},
    )
    assert image_call == ("image", {"task": "retrieval", "truncate_dim": None, "batch_size": 64})
    # Its from_pretrained asks for the config's dtype (bfloat16) unless told: the dtype given wins.
    assert next(encoder.model.parameters()).dtype == torch.float32


def test_v4_task_and_truncate_dim_change_vectors_and_fingerprint(v4_dir: Path) -> None:
    default = load_remote(v4_dir)
    code = load_remote(v4_dir, task="code")
    short = load_remote(v4_dir, truncate_dim=8)
    texts = ["a cat on a mat"]
    assert not torch.allclose(default.encode_texts(texts), code.encode_texts(texts))
    assert short.encode_texts(texts).shape == (1, 8)
    # jina-embeddings-v4 truncates its unit vectors, then normalises them again.
    torch.testing.assert_close(
        short.encode_texts(texts),
        torch.nn.functional.normalize(default.encode_texts(texts)[:, :8], dim=1),
    )
    fingerprints = {default.fingerprint(), code.fingerprint(), short.fingerprint()}
    assert len(fingerprints) == 3
    assert default.fingerprint() == load_remote(v4_dir).fingerprint()


def test_v4_unknown_task_lists_the_models_tasks(v4_dir: Path) -> None:
    with pytest.raises(EncoderError, match=r"no task 'sorting'.*'retrieval', 'text-matching'"):
        load_remote(v4_dir, task="sorting")


def test_v2_style_model_returns_numpy_by_default_and_is_converted(v2_dir: Path) -> None:
    encoder = load_remote(v2_dir, batch_size=2)
    assert encoder.task is None
    vectors = encoder.encode_texts(["a", "bb", "ccc"])
    assert isinstance(vectors, torch.Tensor) and vectors.shape == (3, CLIP_DIM)
    assert encoder.encode_images(sample_images(3)).shape == (3, CLIP_DIM)
    text_call = next(call for kind, call in reversed(encoder.model.calls) if kind == "text")
    # Only declared keywords are passed: nothing leaks into v2's **tokenizer_kwargs.
    assert text_call == {"task": None, "truncate_dim": None, "convert_to_tensor": True}


def test_v2_truncate_dim_applies_to_both_towers(v2_dir: Path) -> None:
    encoder = load_remote(v2_dir, truncate_dim=4)
    assert encoder.encode_texts(["a"]).shape == (1, 4)
    assert encoder.encode_images(sample_images(1)).shape == (1, 4)


@pytest.mark.parametrize("truncate_dim", [0, -8])
def test_non_positive_truncate_dim_is_refused(v4_dir: Path, truncate_dim: int) -> None:
    with pytest.raises(EncoderError, match="truncate_dim"):
        load_remote(v4_dir, truncate_dim=truncate_dim)


def test_remote_model_without_image_tower_is_refused(tmp_path: Path) -> None:
    directory = build_remote_dir(tmp_path / "fake_text_only_remote", "text-only")
    with pytest.raises(EncoderError, match="FakeTextOnlyModel, which has no encode_image"):
        load_remote(directory)


def test_code_from_another_repo_is_part_of_the_fingerprint(
    v4_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """jina-clip-v2's auto_map loads code from another repo's main branch, which the weights'
    commit does not pin: a new commit there must not be served the old code's embeddings."""
    cache = tmp_path / "hub"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    weights = hub_repo(cache, "org/fake-v4", secrets.token_hex(20))
    shutil.copytree(v4_dir, weights, dirs_exist_ok=True)
    (weights / "modeling_fake_jina.py").unlink()
    config = json.loads((weights / "config.json").read_text())
    auto_map = {name: f"org/impl--{entry}" for name, entry in config["auto_map"].items()}
    (weights / "config.json").write_text(json.dumps({**config, "auto_map": auto_map}))
    code = (v4_dir / "modeling_fake_jina.py").read_text()
    fingerprints = []
    for version in (code, code + "\nNEW_CODE = 2\n"):
        (hub_repo(cache, "org/impl", secrets.token_hex(20)) / "modeling_fake_jina.py").write_text(
            version
        )
        fingerprints.append(load_remote("org/fake-v4").fingerprint())
    assert fingerprints[0] != fingerprints[1], "the remote code changed, the fingerprint did not"


def hub_repo(cache: Path, repo_id: str, commit: str) -> Path:
    """An empty snapshot of ``repo_id`` at ``commit`` in a hub cache, which main now points at."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    return snapshot


def test_v4_is_loaded_wrapped_in_peft_and_its_own_code_is_fingerprinted(
    v4_dir: Path, tmp_path: Path
) -> None:
    """jina-embeddings-v4's from_pretrained returns a peft PeftModel; the code digest must read
    the model's own code under it, not peft's."""
    directory = Path(shutil.copytree(v4_dir, tmp_path / "fake_v4_copy"))
    encoder = load_remote(directory)
    assert type(encoder.model).__name__ == "PeftModel"
    code = directory / "modeling_fake_jina.py"
    code.write_text(code.read_text() + "\nNEW_CODE = 2\n")
    assert load_remote(directory).fingerprint() != encoder.fingerprint()


def test_v4_progress_bars_are_switched_off(v4_dir: Path) -> None:
    encoder = load_remote(v4_dir)
    encoder.encode_texts(["a cat"])
    encoder.encode_images(sample_images(2))
    base = encoder.model.get_base_model()
    assert base.verbosity == 0 and base.progress_bars == 0


def test_v4_prompts_passage_except_text_matching_which_uses_query(v4_dir: Path) -> None:
    retrieval = load_remote(v4_dir)
    retrieval.encode_texts(["a cat"])
    assert retrieval.model.get_base_model().prefixes[-1] == "Passage"
    matching = load_remote(v4_dir, task="text-matching")
    matching.encode_texts(["a cat"])
    assert matching.prompt_name == "query"
    assert matching.model.get_base_model().prefixes[-1] == "Query"


def test_v4_truncate_dim_must_be_a_matryoshka_size(v4_dir: Path) -> None:
    with pytest.raises(EncoderError, match=r"Matryoshka sizes \[4, 8, 16\]"):
        load_remote(v4_dir, truncate_dim=5)


def test_v2_task_is_one_of_its_text_towers_instruction_tasks(v2_dir: Path) -> None:
    plain = load_remote(v2_dir)
    query = load_remote(v2_dir, task="retrieval.query")
    assert query.task == "retrieval.query"
    texts = ["a cat on a mat"]
    assert not torch.allclose(plain.encode_texts(texts), query.encode_texts(texts))
    with pytest.raises(EncoderError, match=r"no task 'retrieval'.*\['retrieval.query'\]"):
        load_remote(v2_dir, task="retrieval")
