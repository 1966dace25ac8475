"""Shared fixtures for the encoder tests: offline hub settings and tiny model directories (the
CLIP one, ``clip_dir``, is in ``tests/conftest.py``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.models.tiny_models import build_remote_dir, build_siglip_dir


@pytest.fixture(autouse=True)
def _offline(offline: None) -> None:
    """Every encoder test runs offline (``tests/conftest.py``'s ``offline``)."""


@pytest.fixture(scope="session")
def siglip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SigLIP model directory, built once per session."""
    return build_siglip_dir(tmp_path_factory.mktemp("siglip"))


@pytest.fixture(scope="session")
def v4_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fake jina-embeddings-v4 remote-code directory."""
    return build_remote_dir(tmp_path_factory.mktemp("fake_v4"), "v4")


@pytest.fixture(scope="session")
def v2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fake jina-clip-v2 remote-code directory."""
    return build_remote_dir(tmp_path_factory.mktemp("fake_v2"), "v2")


@pytest.fixture
def clip_copy(clip_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny CLIP directory that a test may change."""
    return Path(shutil.copytree(clip_dir, tmp_path / "clip_copy"))
