"""Suite-wide test configuration: the pytester fixture drives the plugin tests in tests/plugin, and
the fixtures several test folders share."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]


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
