"""Model sources: the fingerprint of a local model directory covers every byte of every file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pytest_modgap.errors import EncoderError
from pytest_modgap.models import source
from pytest_modgap.models.source import resolve_model_source

OLD_SHORTCUT_BYTES = 64 * 1024 * 1024
"""Files above this size were fingerprinted by size, mtime and their first and last MiB."""


def model_dir(tmp_path: Path, weights_bytes: int) -> Path:
    """A model directory whose weights file is sparse: ``weights_bytes`` long, zeros but a byte."""
    directory = tmp_path / "model"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({"model_type": "clip"}))
    with (directory / "model.safetensors").open("wb") as handle:
        handle.truncate(weights_bytes)
    return directory


def rewrite_middle_keeping_mtime(path: Path, data: bytes) -> None:
    """Overwrite the middle of ``path`` in place, then set its old atime and mtime back."""
    before = path.stat()
    with path.open("r+b") as handle:
        handle.seek(before.st_size // 2)
        handle.write(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


@pytest.mark.parametrize("weights_bytes", [4096, OLD_SHORTCUT_BYTES + 4 * 1024 * 1024])
def test_same_size_rewrite_with_the_mtime_kept_changes_the_fingerprint(
    tmp_path: Path, weights_bytes: int
) -> None:
    """What ``cp -p``, ``rsync -t`` or tar leave behind when a checkpoint is replaced."""
    directory = model_dir(tmp_path, weights_bytes)
    weights = directory / "model.safetensors"
    rewrite_middle_keeping_mtime(weights, b"checkpoint 1")
    before = resolve_model_source(str(directory)).fingerprint()
    rewrite_middle_keeping_mtime(weights, b"checkpoint 2")
    after = resolve_model_source(str(directory)).fingerprint()
    assert after != before, f"a rewrite in the middle of a {weights_bytes}-byte file was missed"


def test_unreadable_file_in_a_model_directory_is_an_encoder_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = model_dir(tmp_path, 16)

    def refuse(path: Path) -> str:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(source, "file_digest", refuse)
    with pytest.raises(EncoderError, match="Permission denied") as error:
        resolve_model_source(str(directory)).fingerprint()
    assert "config.json" in str(error.value) and "readable" in str(error.value)
