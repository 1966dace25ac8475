"""What an encoder is: the interface the embedding pipeline talks to, whatever the model family.

Two levels. Every encoder embeds PIL images and strings. Encoders whose image tower takes a plain
pixel tensor also describe their preprocessing (``ImagePreprocessing``) and expose
``forward_pixels``, so the pipeline can decode and resize on the GPU in batches instead of in a
CPU image processor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch
    from PIL import Image


@dataclass(frozen=True)
class ImagePreprocessing:
    """The image processor's recipe, enough to redo it on tensors (CLIP / SigLIP style processors).

    resize: shortest edge to ``shortest_edge`` (keeping aspect) when set, else to ``height`` x
    ``width``; then a center crop to ``crop_height`` x ``crop_width`` when ``center_crop``; then
    ``pixel * rescale_factor``, then ``(pixel - mean) / std`` per channel. ``resample`` is the PIL
    name ("bicubic", "bilinear").
    """

    height: int
    width: int
    shortest_edge: int | None
    center_crop: bool
    crop_height: int
    crop_width: int
    rescale_factor: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resample: str

    def key(self) -> str:
        """A stable string that changes whenever the recipe changes (part of cache keys)."""
        return repr(self)


@runtime_checkable
class Encoder(Protocol):
    """Anything that maps images and texts into one embedding space."""

    spec: str
    """The model spec the user gave (``openai/clip-vit-base-patch32``, a directory, ``mod:f``)."""

    def fingerprint(self) -> str | None:
        """A string that changes whenever the vectors could change (weights, revision, dtype), or
        None when the encoder cannot tell: its vectors are then never cached."""
        ...

    def encode_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Embed a batch of RGB images; returns (len(images), d), any float dtype, any device."""
        ...

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Embed a batch of strings; returns (len(texts), d), any float dtype, any device."""
        ...


@runtime_checkable
class PixelEncoder(Encoder, Protocol):
    """An encoder whose image tower takes a normalised pixel tensor (CLIP family)."""

    device: torch.device
    dtype: torch.dtype
    preprocessing: ImagePreprocessing

    def preprocess(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """The model's own processor on CPU: (B, 3, H, W) float32 pixel values."""
        ...

    def forward_pixels(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The image tower on preprocessed pixels (moved to the encoder's device and dtype)."""
        ...
