"""Encoders for the Ray tests, loaded by the replicas as ``tests.embedding.ray_models:FACTORY``.

``dies_once`` wraps the shipped reference CLIP and kills its own worker process (``os._exit``, as the
OOM killer or a lost node would) on its second image batch, once per armed folder: the folder comes
from ``MODGAP_RAY_TEST_DIR``, which the test cluster's workers see.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

ARMED = "armed"
DIED = "died"


class DiesOnce:
    """The reference model's vectors, but the process dies on the second image batch while
    ``$MODGAP_RAY_TEST_DIR/armed`` exists and ``$MODGAP_RAY_TEST_DIR/died`` does not."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.spec = "tests.embedding.ray_models:dies_once"
        self.image_batches = 0

    def fingerprint(self) -> None:
        return None  # embedded on every run: the tests compare fresh vectors

    def encode_images(self, images: Sequence[Image.Image]) -> Any:
        self.image_batches += 1
        folder = os.environ.get("MODGAP_RAY_TEST_DIR")
        if folder and self.image_batches == 2:
            armed, died = Path(folder) / ARMED, Path(folder) / DIED
            if armed.exists() and not died.exists():
                died.write_text(str(os.getpid()))
                os._exit(1)
        return self.inner.encode_images(images)

    def encode_texts(self, texts: Sequence[str]) -> Any:
        return self.inner.encode_texts(texts)


def dies_once() -> DiesOnce:
    from pytest_modgap.models.loader import load_encoder
    from pytest_modgap.reference import reference_model_dir

    return DiesOnce(load_encoder(str(reference_model_dir("reference")), device="cpu"))


class Fingerprinted(DiesOnce):
    """The reference model's vectors under a fixed fingerprint: cached like any model."""

    def fingerprint(self) -> str:  # type: ignore[override]
        return "ray-test-reference-v1"


def fingerprinted() -> Fingerprinted:
    from pytest_modgap.models.loader import load_encoder
    from pytest_modgap.reference import reference_model_dir

    encoder = Fingerprinted(load_encoder(str(reference_model_dir("reference")), device="cpu"))
    encoder.spec = "tests.embedding.ray_models:fingerprinted"
    return encoder
