"""The two stages of a Ray job, as Ray Data callable classes: ``ImageDecoder`` on CPU workers (read,
decode, and the model's image processor for the transformers CLIP family) and ``ReplicaEncoder``
(one model replica, loaded once, embedding images and texts).

Items travel as ``(row, kind, payload, recipe)``: ``kind`` says whether the payload holds
preprocessed pixels, decoded RGB pixels (``.npy`` bytes) or a text (UTF-8); ``recipe`` the decoder's
image recipe and library versions, which the replica checks against its own.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pytest_modgap.embedding.ray.replicas import describe_replica, identity_of, recipe_of
from pytest_modgap.errors import EncoderError

if TYPE_CHECKING:
    from pytest_modgap.data.pairset import PairSet
    from pytest_modgap.models.identity import ModelIdentity

_PIXELS, _RGB, _TEXT = 0, 1, 2
"""What a decoded item carries: preprocessed pixels, decoded RGB pixels, or a text."""


@dataclass(frozen=True)
class Work:
    """What the decoders read: the pairs (images unloaded) and the texts in row order."""

    pairs: PairSet
    texts: Sequence[str]
    spec: str


class ImageDecoder:
    """A Ray Data stage on CPU workers: reads and decodes the images of a batch of rows (the model's
    image processor too, for the transformers CLIP family) and passes the texts through."""

    def __init__(self, work: list[Any]) -> None:
        import ray

        from pytest_modgap.models.loader import load_image_preprocessor

        self.work: Work = ray.get(work[0])
        self.preprocess = load_image_preprocessor(self.work.spec)
        self.recipe = recipe_of(self.preprocess)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from pytest_modgap.embedding.pipeline import open_rgb

        rows = np.asarray(batch["data"], np.int64)  # the one column of ray.data.from_numpy
        n = len(self.work.pairs)
        kinds = np.where(rows < n, _RGB if self.preprocess is None else _PIXELS, _TEXT)
        payloads: list[bytes] = [b""] * len(rows)
        images = [int(row) for row in rows if row < n]
        if images:
            decoded = [open_rgb(self.work.pairs, row) for row in images]
            if self.preprocess is not None:
                arrays = list(self.preprocess(decoded).numpy())
            else:
                arrays = [np.asarray(image) for image in decoded]
            for position, array in zip(np.flatnonzero(rows < n), arrays, strict=True):
                payloads[position] = _pack(array)
        for position in np.flatnonzero(rows >= n):
            payloads[position] = self.work.texts[int(rows[position]) - n].encode("utf-8")
        return {
            "row": rows,
            "kind": kinds.astype(np.int8),
            "payload": np.array(payloads, dtype=object),
            "recipe": np.full(len(rows), self.recipe, dtype=object),
        }


class ReplicaEncoder:
    """A Ray Data stage in the actor pool: one model replica, loaded once from its spec, embeds
    every batch it is given (images and texts) and tags the vectors with its description."""

    def __init__(self, spec: str, options: dict[str, Any], identity: ModelIdentity | None) -> None:
        from pytest_modgap.models.loader import load_encoder

        encoder = load_encoder(spec, **options)
        if not hasattr(encoder, "encode_texts"):
            raise EncoderError(f"Model spec {spec!r} names precomputed embeddings: nothing to run.")
        self.encoder: Any = encoder
        own = None if identity is None else identity_of(spec, options)
        self.description = describe_replica(encoder, identity, options["device"], own).to_json()
        self.recipe = recipe_of(encoder)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        from pytest_modgap.embedding.pipeline import one_row_per_input

        rows = np.asarray(batch["row"], np.int64)
        kinds = np.asarray(batch["kind"])
        payloads = batch["payload"]
        outputs: dict[int, torch.Tensor] = {}
        with torch.inference_mode():
            for kind, positions in _groups(kinds):
                items = [payloads[position] for position in positions]
                if kind == _TEXT:
                    texts = [bytes(item).decode("utf-8") for item in items]
                    output = self.encoder.encode_texts(texts)
                elif kind == _PIXELS:
                    self._check_recipe({str(batch["recipe"][p]) for p in positions}, whole=True)
                    pixels = torch.from_numpy(np.stack([_unpack(item) for item in items]))
                    output = self.encoder.forward_pixels(pixels)
                else:
                    self._check_recipe({str(batch["recipe"][p]) for p in positions}, whole=False)
                    output = self._embed_rgb([_unpack(item) for item in items])
                what = "text" if kind == _TEXT else "image"
                output = one_row_per_input(output, len(positions), what).float().cpu()
                for position, vector in zip(positions, output, strict=True):
                    outputs[int(position)] = vector
        if not outputs:
            vectors = np.zeros((0, 0), np.float32)
        else:
            vectors = torch.stack([outputs[p] for p in range(len(rows))]).numpy()
        return {
            "row": rows,
            "vector": vectors,
            "replica": np.full(len(rows), self.description, dtype=object),
        }

    def _embed_rgb(self, arrays: list[np.ndarray]) -> Any:
        from PIL import Image

        from pytest_modgap.models.base import PixelEncoder

        images = [Image.fromarray(array) for array in arrays]
        if isinstance(self.encoder, PixelEncoder):
            return self.encoder.forward_pixels(self.encoder.preprocess(images))
        return self.encoder.encode_images(images)

    def _check_recipe(self, recipes: set[str], *, whole: bool) -> None:
        """Refuse images that decoders prepared otherwise than this replica would: the whole
        recipe for preprocessed pixels, the decoding libraries' versions for decoded pixels."""

        def part(recipe: str) -> str:
            return recipe if whole else recipe.partition("|")[2]

        if {part(recipe) for recipe in recipes} != {part(self.recipe)}:
            raise EncoderError(
                f"Model {self.encoder.spec!r}: the decoders preprocessed images with "
                f"{sorted(recipes)}, but this replica's own processor and libraries are "
                f"{self.recipe}. Install the same transformers and Pillow on every node, and give "
                f"every node the same model files (a shared folder or one hub revision)."
            )


def _groups(kinds: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    for kind in (_PIXELS, _RGB, _TEXT):
        positions = np.flatnonzero(kinds == kind)
        if len(positions):
            yield kind, positions


def _pack(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _unpack(data: bytes) -> np.ndarray:
    array: np.ndarray = np.load(io.BytesIO(bytes(data)), allow_pickle=False)
    return array
