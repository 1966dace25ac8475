"""Suite-wide test configuration: the pytester fixture drives the plugin tests in tests/plugin, and
the fixtures several test folders share."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_modgap.embedding.ray.cluster import LOOPBACK_ONLY_ENV, NO_CLOUD_PROBES_ENV

pytest_plugins = ["pytester"]

# Every Ray cluster the suite starts (in this process, in its workers and in the commands it runs)
# listens on and talks to 127.0.0.1 only, and Ray's cloud-metadata requests end on a closed
# loopback port: set before any test module imports ray.
os.environ.update({**LOOPBACK_ONLY_ENV, **NO_CLOUD_PROBES_ENV})


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach the Hugging Face hub, whatever the machine's network."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny CLIP model directory, built once per session (tests must not modify it)."""
    from tests.models.tiny_models import build_clip_dir

    return build_clip_dir(tmp_path_factory.mktemp("clip"))


@pytest.fixture
def refuse_loading(monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[str]]:
    """Call it to make every later model load fail the test; it returns the list of specs that
    loads were tried for (a cache hit must leave it empty)."""

    def start() -> list[str]:
        import pytest_modgap.models.loader as loader

        tried: list[str] = []

        def refuse(spec: str, **_: object) -> None:
            tried.append(spec)
            raise AssertionError(f"a cache hit loaded the model {spec}")

        monkeypatch.setattr(loader, "load_encoder", refuse)
        return tried

    return start
