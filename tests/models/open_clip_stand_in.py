"""A stand-in for the ``open_clip`` package, injected as ``sys.modules["open_clip"]`` in tests.

open_clip needs torchvision, which does not import next to this project's CPU torch, so the adapter
is tested against this module. Every name the adapter touches mirrors open_clip's real API as read
in mlfoundations/open_clip (main, version 4.2.0.dev0, commit 89fb801f):

- ``create_model_and_transforms(model_name, pretrained=None, load_weights=True, precision="fp32",
  device="cpu", ...)`` returns ``(model, preprocess_train, preprocess_val)``: src/open_clip/factory.py,
  ``create_model_and_transforms`` and ``create_model``. ``model_name`` is a built-in architecture
  (then ``pretrained`` is a known tag, resolved with ``get_pretrained_cfg`` + ``download_pretrained``,
  or an existing file, else ``RuntimeError("Pretrained value ... is not a known tag or valid file
  path")``), or ``hf-hub:org/name`` (config ``open_clip_config.json`` and weights from the hub;
  ``pretrained`` is ignored): ``create_model``'s schema branches and ``parse_model_name``.
- ``precision``: "fp32" keeps float32; "pure_bf16" / "pure_fp16" cast every weight:
  factory.py ``_set_model_device_and_precision``. ``get_input_dtype(precision)`` gives the dtype
  images must be cast to: src/open_clip/model.py ``get_input_dtype``.
- ``get_tokenizer(model_name="", context_length=None, cache_dir=None, **kwargs)``: factory.py
  ``get_tokenizer``. The tokenizer's ``__call__(texts, context_length=None)`` returns a
  ``LongTensor [N, context_length]``: start token, tokens, end token, zero padding; a text that
  is too long is cut and its last token replaced by the end token: src/open_clip/tokenizer.py
  ``SimpleTokenizer.__call__``.
- ``model.encode_image(image, normalize=False)`` / ``model.encode_text(text, normalize=False)``:
  src/open_clip/model.py ``CLIP.encode_image`` / ``CLIP.encode_text``; text pooling at the end
  token (the highest id, ``text_global_pool(..., "argmax")``).
- ``preprocess_val``: resize the shortest side to the image size (bicubic), center crop, to float
  [0, 1], normalise with OpenAI's mean / std: src/open_clip/transform.py ``image_transform_v2``
  with ``is_train=False`` (built with torchvision there, with PIL and numpy here).
- ``get_pretrained_cfg(model, tag)`` returns ``{}`` for an unknown tag; ``download_pretrained(cfg)``
  returns ``cfg["file"]`` when the config names a file: src/open_clip/pretrained.py.
- ``__version__``: src/open_clip/version.py.

The towers themselves are tiny and made up (a strided convolution, a token embedding); what is
tested is that the adapter drives open_clip the way open_clip is meant to be driven.
"""

from __future__ import annotations

import json
import os
import types
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

ARCH = "TinyCLIP-8"
"""The one built-in architecture the stand-in knows."""

EMBED_DIM = 8
IMAGE_SIZE = 16
CONTEXT_LENGTH = 12
SOT, EOT = 256, 257
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


class TinyCLIP(nn.Module):
    """open_clip's ``CLIP`` surface on made-up towers."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.visual = nn.Conv2d(3, width, kernel_size=4, stride=4)
        self.visual_projection = nn.Linear(width, EMBED_DIM)
        self.token_embedding = nn.Embedding(EOT + 1, width)
        self.positional_embedding = nn.Parameter(torch.randn(CONTEXT_LENGTH, width) * 0.1)
        self.text_projection = nn.Linear(width, EMBED_DIM)

    def encode_image(self, image: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        features = self.visual(image).flatten(2).mean(-1)
        projected = self.visual_projection(features)
        return F.normalize(projected, dim=-1) if normalize else projected

    def encode_text(self, text: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        x = self.token_embedding(text) + self.positional_embedding.to(self.token_embedding.weight)
        x = torch.tanh(x).cumsum(dim=1)
        pooled = x[torch.arange(x.shape[0]), text.argmax(dim=-1)]
        projected = self.text_projection(pooled)
        return F.normalize(projected, dim=-1) if normalize else projected


class SimpleTokenizer:
    """Byte-level tokens with open_clip's framing, padding and truncation."""

    def __init__(self, context_length: int = CONTEXT_LENGTH) -> None:
        self.context_length = context_length

    def __call__(self, texts: str | list[str], context_length: int | None = None) -> torch.Tensor:
        if isinstance(texts, str):
            texts = [texts]
        length = context_length or self.context_length
        result = torch.zeros(len(texts), length, dtype=torch.long)
        for row, text in enumerate(texts):
            tokens = [SOT, *text.encode("utf-8"), EOT]
            if len(tokens) > length:
                tokens = tokens[:length]
                tokens[-1] = EOT
            result[row, : len(tokens)] = torch.tensor(tokens)
        return result


def preprocess_val(image: Image.Image) -> torch.Tensor:
    """Resize the shortest side (bicubic), center crop, [0, 1] floats, OpenAI normalisation."""
    width, height = image.size
    scale = IMAGE_SIZE / min(width, height)
    resized = image.convert("RGB").resize(
        (max(IMAGE_SIZE, round(width * scale)), max(IMAGE_SIZE, round(height * scale))),
        Image.Resampling.BICUBIC,
    )
    left = (resized.width - IMAGE_SIZE) // 2
    top = (resized.height - IMAGE_SIZE) // 2
    cropped = resized.crop((left, top, left + IMAGE_SIZE, top + IMAGE_SIZE))
    pixels = torch.from_numpy(np.asarray(cropped, dtype=np.float32) / 255.0).permute(2, 0, 1)
    mean = torch.tensor(OPENAI_MEAN).view(3, 1, 1)
    std = torch.tensor(OPENAI_STD).view(3, 1, 1)
    return (pixels - mean) / std


def make_open_clip(version: str = "4.2.0.dev0") -> types.ModuleType:
    """A fresh ``open_clip`` module (its own pretrained registry and call log)."""
    module = types.ModuleType("open_clip")
    module.__version__ = version  # type: ignore[attr-defined]
    pretrained: dict[str, dict[str, dict[str, str]]] = {ARCH: {}}
    calls: list[dict[str, Any]] = []
    module.calls = calls  # type: ignore[attr-defined]

    def get_pretrained_cfg(model: str, tag: str) -> dict[str, str]:
        return pretrained.get(model, {}).get(tag.lower(), {})

    def download_pretrained(
        cfg: dict[str, str], prefer_hf_hub: bool = True, cache_dir: str | None = None
    ) -> str:
        return cfg.get("file", "") if cfg else ""

    def get_input_dtype(precision: str) -> torch.dtype | None:
        if precision in ("bf16", "pure_bf16"):
            return torch.bfloat16
        if precision in ("fp16", "pure_fp16"):
            return torch.float16
        return None

    def _checkpoint(model_name: str, pretrained_value: str | None) -> str:
        if model_name.startswith("hf-hub:"):
            from huggingface_hub import hf_hub_download

            repo_id = model_name[len("hf-hub:") :]
            config = json.loads(Path(hf_hub_download(repo_id, "open_clip_config.json")).read_text())
            if config["model_cfg"]["arch"] != ARCH:
                raise RuntimeError(f"unknown architecture in {repo_id}")
            return str(hf_hub_download(repo_id, "open_clip_model.safetensors"))
        if model_name.replace("/", "-") != ARCH:
            raise RuntimeError(f"Model config for '{model_name}' not found in built-ins.")
        if not pretrained_value:
            return ""
        cfg = get_pretrained_cfg(model_name, pretrained_value)
        if cfg:
            return download_pretrained(cfg)
        if os.path.isfile(pretrained_value):
            return pretrained_value
        raise RuntimeError(
            f"Pretrained value '{pretrained_value}' is not a known tag or valid file path"
        )

    def create_model_and_transforms(
        model_name: str,
        pretrained: str | None = None,
        load_weights: bool = True,
        precision: str = "fp32",
        device: str | torch.device = "cpu",
        **kwargs: Any,
    ) -> tuple[TinyCLIP, Any, Any]:
        calls.append({"model_name": model_name, "pretrained": pretrained, "precision": precision})
        model = TinyCLIP()
        checkpoint = _checkpoint(model_name, pretrained)
        if checkpoint and load_weights:
            from safetensors.torch import load_file

            model.load_state_dict(load_file(checkpoint), strict=True)
        if precision in ("pure_bf16", "pure_fp16"):
            model.to(device=device, dtype=get_input_dtype(precision))
        else:
            model.to(device=device)
        return model, preprocess_val, preprocess_val

    def get_tokenizer(
        model_name: str = "", context_length: int | None = None, cache_dir: str | None = None
    ) -> SimpleTokenizer:
        return SimpleTokenizer(context_length or CONTEXT_LENGTH)

    def register_tag(tag: str, file: Path) -> None:
        """Stand-in only: a pretrained tag whose weights open_clip has downloaded to ``file``."""
        pretrained[ARCH][tag.lower()] = {"file": str(file)}

    module.get_pretrained_cfg = get_pretrained_cfg  # type: ignore[attr-defined]
    module.download_pretrained = download_pretrained  # type: ignore[attr-defined]
    module.get_input_dtype = get_input_dtype  # type: ignore[attr-defined]
    module.create_model_and_transforms = create_model_and_transforms  # type: ignore[attr-defined]
    module.get_tokenizer = get_tokenizer  # type: ignore[attr-defined]
    module.register_tag = register_tag  # type: ignore[attr-defined]
    return module


def save_tiny_weights(path: Path, *, seed: int = 0) -> Path:
    """Random TinyCLIP weights as an open_clip checkpoint file (safetensors)."""
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        {name: tensor.contiguous() for name, tensor in TinyCLIP().state_dict().items()}, str(path)
    )
    return path
