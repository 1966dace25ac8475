"""The transformers CLIP family as an Encoder: CLIP, SigLIP, SigLIP 2, ALIGN, AltCLIP, BLIP, ...

Any model with ``get_image_features`` / ``get_text_features`` (and BLIP retrieval checkpoints, whose
contrastive heads are not exposed that way), via AutoModel + AutoProcessor.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from pytest_modgap.errors import EncoderError
from pytest_modgap.models.base import ImagePreprocessing
from pytest_modgap.models.device import (
    default_batch_size,
    dtype_name,
    resolve_device,
    resolve_dtype,
)

if TYPE_CHECKING:
    from PIL import Image

    from pytest_modgap.models.source import ModelSource

RECIPE = "hf_clip/2"
"""Version of how this module feeds images and texts; part of every fingerprint, bump on change.
2: the processor's own text defaults, FLAVA's CLS row, BLIP retrieval heads, AIMv2 causal text."""

# SigLIP was trained on texts padded to a fixed length (64 tokens) and its text tower pools the
# last position, so shorter padding changes the vectors; CLIP-style towers pool the EOS token and
# are indifferent to padding length.
_FIXED_LENGTH_PADDING = ("siglip", "siglip2")

# transformers marks "no limit" in model_max_length with a huge sentinel (int(1e30)).
_NO_LIMIT = 1_000_000

_PIL_RESAMPLE = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}

# Image processors whose whole recipe ``read_preprocessing`` knows (resize, optional center crop,
# rescale, normalise; EfficientNet's offset and second division folded into mean / std). Others
# (OWLv2's square padding, SigLIP 2 NaFlex's patch budget, ConvNeXt's crop_pct, ...) are run as
# they are, on CPU: a recipe guessed from their attributes could be silently wrong on the GPU path.
_KNOWN_IMAGE_PROCESSORS = frozenset(
    {
        "BlipImageProcessor",
        "ChineseCLIPImageProcessor",
        "CLIPImageProcessor",
        "EfficientNetImageProcessor",
        "FlavaImageProcessor",
        "OwlViTImageProcessor",
        "SiglipImageProcessor",
        "ViTImageProcessor",
    }
)

# The processor switches that are part of a fixed recipe; any other ``do_*`` switch that is on
# means a step the recipe does not describe.
_RECIPE_SWITCHES = frozenset(
    {"do_resize", "do_center_crop", "do_rescale", "do_normalize", "do_convert_rgb"}
)

# Weights a checkpoint may lack without changing an embedding: the contrastive loss temperature.
_HARMLESS_MISSING = ("logit_scale", "logit_bias", "temperature")


def load_hf_clip(
    source: ModelSource,
    *,
    device: str | None = None,
    dtype: str | None = None,
    batch_size: int | None = None,
) -> HFClipEncoder:
    """Load a CLIP-family model and its processor onto ``device`` in ``dtype``, in eval mode.

    Returns an ``HFClipPixelEncoder`` (a ``PixelEncoder``) when the image processor's recipe is a
    plain resize / crop / normalise that can be redone on tensors, else an ``HFClipEncoder`` (e.g.
    SigLIP 2 NaFlex, whose patch count depends on each image's aspect ratio).
    """
    resolved_device = resolve_device(device)
    resolved_dtype = resolve_dtype(dtype, resolved_device)
    model = _load_model(source, resolved_dtype)
    missing = [
        name
        for name in ("get_image_features", "get_text_features")
        if not callable(getattr(model, name, None))
    ]
    if missing:
        raise EncoderError(
            f"Model {source.spec!r} loads as {type(model).__name__}, which has no "
            f"{' / '.join(missing)}: it is not an image-text dual encoder (no image or no text "
            f"tower). pytest-modgap needs a model with get_image_features and get_text_features "
            f"(CLIP, SigLIP, ...) or encode_image and encode_text (jina-clip-v2, "
            f"jina-embeddings-v4); wrap anything else as 'module:factory'."
        )
    processor = _load_processor(source)
    image_processor = getattr(processor, "image_processor", None)
    tokenizer = getattr(processor, "tokenizer", None)
    if image_processor is None or tokenizer is None:
        raise EncoderError(
            f"Model {source.spec!r}: AutoProcessor gave {type(processor).__name__}, which lacks "
            f"{'an image processor' if image_processor is None else 'a tokenizer'}. Save the "
            f"model's processor next to the weights (processor.save_pretrained(directory))."
        )
    model.to(resolved_device)
    model.eval()
    n_parameters = sum(parameter.numel() for parameter in model.parameters())
    settings = _Settings(
        source=source,
        model=model,
        image_processor=image_processor,
        tokenizer=tokenizer,
        device=resolved_device,
        dtype=resolved_dtype,
        batch_size=batch_size or default_batch_size(resolved_device, n_parameters),
        text_defaults=processor_text_defaults(processor),
    )
    recipe = pixel_recipe(image_processor)
    if recipe is None:
        return HFClipEncoder(settings)
    return HFClipPixelEncoder(settings, recipe)


@dataclass(frozen=True)
class ProcessorPixels:
    """A CLIP-family checkpoint's image processor alone, as a function of PIL images: what
    ``HFClipPixelEncoder.preprocess`` runs, for CPU workers that preprocess without the weights
    (a Ray job's decoders). ``preprocessing`` is its recipe: the encoder it feeds must have the
    same one."""

    image_processor: Any
    preprocessing: ImagePreprocessing

    def __call__(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """(B, 3, H, W) float32 pixel values, as the encoder's own ``preprocess`` gives."""
        return processor_pixels(self.image_processor, images)


def processor_pixels(image_processor: Any, images: Sequence[Image.Image]) -> torch.Tensor:
    """``image_processor`` on RGB images: (B, 3, H, W) float32 pixel values."""
    batch = image_processor(images=[image.convert("RGB") for image in images], return_tensors="pt")
    pixel_values: torch.Tensor = batch["pixel_values"]
    return pixel_values.float()


def load_processor_pixels(source: ModelSource) -> ProcessorPixels | None:
    """The image processor of ``source`` without its weights, when ``load_hf_clip`` would load a
    ``HFClipPixelEncoder`` from it (a plain resize / crop / normalise recipe), else None."""
    image_processor = getattr(_load_processor(source), "image_processor", None)
    recipe = None if image_processor is None else pixel_recipe(image_processor)
    return None if recipe is None else ProcessorPixels(image_processor, recipe)


def pixel_recipe(image_processor: Any) -> ImagePreprocessing | None:
    """The recipe of an image processor that ``HFClipPixelEncoder`` can take: a known processor
    class whose steps ``read_preprocessing`` describes; None for any other."""
    if _processor_family(image_processor) not in _KNOWN_IMAGE_PROCESSORS:
        return None
    return read_preprocessing(image_processor)


def _load_processor(source: ModelSource) -> Any:
    """The checkpoint's ``AutoProcessor`` (tokenizer and image processor), offline errors named."""
    from transformers import AutoProcessor

    return _from_pretrained(
        source,
        "processor",
        lambda: AutoProcessor.from_pretrained(  # type: ignore[no-untyped-call]
            source.load_path, revision=source.revision
        ),
    )


def _load_model(source: ModelSource, dtype: torch.dtype) -> Any:
    """The model in eval-ready form: AutoModel, or the checkpoint's own class where its contrastive
    heads need an adapter; refused when weights it needs are missing from the checkpoint."""
    import transformers
    from transformers import AutoModel

    architectures = source.config.get("architectures") or []
    adapter = next((name for name in architectures if name in _CONTRASTIVE_ADAPTERS), None)
    loader = getattr(transformers, adapter) if adapter is not None else AutoModel
    model, info = _from_pretrained(
        source,
        "model",
        lambda: loader.from_pretrained(
            source.load_path,
            revision=source.revision,
            output_loading_info=True,
            **from_pretrained_dtype(dtype),
        ),
    )
    missing = sorted(
        str(name)
        for name in info.get("missing_keys", ())
        if not str(name).endswith(_HARMLESS_MISSING)
    )
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise EncoderError(
            f"Model {source.spec!r} loads as {type(model).__name__}, but its checkpoint has no "
            f"weights for {shown}: transformers would initialise them at random and every "
            f"embedding would be noise. The checkpoint was saved from another class (its "
            f"config.json architectures: {architectures or 'none'}); save it with the class whose "
            f"weights it holds, or wrap the model as 'module:factory'."
        )
    if adapter is not None:
        return _CONTRASTIVE_ADAPTERS[adapter](model)
    _make_text_attention_causal(model)
    return model


def _make_text_attention_causal(model: Any) -> None:
    """AIMv2's text tower is causal, but in transformers 5 its attention modules say
    ``is_causal = False``: a batch without padding gets no mask and attends both ways, while a
    padded batch gets the causal mask, so a caption's vector would depend on its batch-mates.
    Marking the text tower's attention causal gives every batch the causal result."""
    if getattr(model.config, "model_type", None) != "aimv2":
        return
    for module in model.text_model.modules():
        if getattr(module, "is_causal", None) is False:
            module.is_causal = True


class BlipRetrievalHeads(torch.nn.Module):
    """A BLIP retrieval checkpoint's contrastive (ITC) heads as get_image_features /
    get_text_features: the projections of the vision and text CLS tokens, exactly what
    ``BlipForImageTextRetrieval.forward(use_itm_head=False)`` compares (before normalising)."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.blip = model
        self.config = model.config

    def get_image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The vision CLS token through ``vision_proj``: (B, d)."""
        vision = self.blip.vision_model(pixel_values=pixel_values)
        projected: torch.Tensor = self.blip.vision_proj(vision.last_hidden_state[:, 0, :])
        return projected

    def get_text_features(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The unimodal text encoder's CLS token through ``text_proj``: (B, d)."""
        text = self.blip.text_encoder(input_ids=input_ids, attention_mask=attention_mask)
        projected: torch.Tensor = self.blip.text_proj(text.last_hidden_state[:, 0, :])
        return projected


# Checkpoint classes whose contrastive heads are not get_image_features / get_text_features:
# loaded with their own class and driven through an adapter. AutoModel would load BLIP retrieval
# weights into a BlipModel whose projections it initialises at random.
_CONTRASTIVE_ADAPTERS: dict[str, Callable[[Any], Any]] = {
    "BlipForImageTextRetrieval": BlipRetrievalHeads
}


def processor_text_defaults(processor: Any) -> dict[str, Any]:
    """The text keywords a processor applies when called with none (ALIGN pads to 64 tokens,
    SigLIP 2 to 64 with truncation, ...): the processor class's ``text_kwargs`` in transformers
    5, its ``ProcessingKwargs._defaults`` in transformers 4."""
    defaults: dict[str, Any] = {}
    module = sys.modules.get(type(processor).__module__)
    for value in vars(module).values() if module is not None else ():
        legacy = getattr(value, "_defaults", None) if isinstance(value, type) else None
        if isinstance(legacy, dict) and isinstance(legacy.get("text_kwargs"), dict):
            defaults.update(legacy["text_kwargs"])
    for klass in reversed(type(processor).__mro__):
        own = vars(klass).get("text_kwargs")
        if isinstance(own, dict):
            defaults.update(own)
    return defaults


def _processor_family(image_processor: Any) -> str:
    """The image processor's class name without its backend suffix (``Pil``, ``Fast``)."""
    name = type(image_processor).__name__
    for suffix in ("Pil", "Fast"):
        name = name.removesuffix(suffix)
    return name


def from_pretrained_dtype(dtype: torch.dtype) -> dict[str, Any]:
    """The load-dtype keyword: ``dtype`` since transformers 4.56, ``torch_dtype`` before."""
    import transformers

    major, minor = (int(part) for part in transformers.__version__.split(".")[:2])
    return {"dtype": dtype} if (major, minor) >= (4, 56) else {"torch_dtype": dtype}


def _from_pretrained(source: ModelSource, what: str, load: Callable[[], Any]) -> Any:
    """Run a from_pretrained call, turning any failure into one EncoderError paragraph."""
    import transformers

    from pytest_modgap.models.quiet import quiet_transformers

    try:
        with quiet_transformers():
            return load()
    except EncoderError:
        raise
    except Exception as exc:  # transformers raises OSError, ValueError, KeyError, ... by case
        raise EncoderError(
            f"Model {source.spec!r}: transformers {transformers.__version__} could not load the "
            f"{what} from {source.load_path} ({type(exc).__name__}: {exc}). Check that the "
            f"directory or cached snapshot is complete (config, weights, processor files) and "
            f"that this transformers version knows the model type.{_broken_torchvision()}"
        ) from exc


def _broken_torchvision() -> str:
    """A hint when torchvision is installed but does not import: transformers then fails to build
    any image processor (open_clip installs torchvision, which may not match this torch)."""
    import importlib.util

    if importlib.util.find_spec("torchvision") is None:
        return ""
    try:
        import torchvision  # noqa: F401
    except Exception as exc:  # a build for another torch raises RuntimeError, not ImportError
        import torch

        return (
            f" torchvision is installed but does not import ({type(exc).__name__}: {exc}), and "
            f"transformers' image processors need it when it is there: install the torchvision "
            f"built for torch {torch.__version__}, or uninstall it."
        )
    return ""


@dataclass(frozen=True)
class _Settings:
    """What every CLIP-family encoder holds once loaded (bundled to keep constructors short)."""

    source: ModelSource
    model: Any
    image_processor: Any
    tokenizer: Any
    device: torch.device
    dtype: torch.dtype
    batch_size: int
    text_defaults: Mapping[str, Any]


class HFClipEncoder:
    """A transformers model with ``get_image_features`` / ``get_text_features`` as an Encoder.

    Texts are tokenized as the model's processor does by default (its padding and length, e.g.
    ALIGN's 64 tokens), always truncated to what the text tower takes; without processor defaults
    they are padded to the longest text, or to the limit for SigLIP-style models that were trained
    on fixed-length padding. Images go through the model's own image processor. Outputs stay on
    the model's device. ``embedding_dim`` is measured once at construction by embedding one text.
    """

    def __init__(self, settings: _Settings) -> None:
        self.spec = settings.source.spec
        self.source = settings.source
        self.model = settings.model
        self.image_processor = settings.image_processor
        self.tokenizer = settings.tokenizer
        self.device = settings.device
        self.dtype = settings.dtype
        self.batch_size = settings.batch_size
        self.model_name = settings.source.repo_id or settings.source.directory.name
        model_type = str(getattr(self.model.config, "model_type", ""))
        padding = settings.text_defaults.get("padding")
        if not isinstance(padding, (str, bool)) or padding is False:
            padding = "max_length" if model_type in _FIXED_LENGTH_PADDING else True
        self._padding: str | bool = padding
        self._max_length = _text_max_length(
            self.model, self.tokenizer, settings.text_defaults.get("max_length")
        )
        self._fingerprint: str | None = None
        self.embedding_dim = int(self.encode_texts(["a"]).shape[1])

    def fingerprint(self) -> str:
        """Recipe version, model class, weights (hub commit or directory hash) and dtype."""
        if self._fingerprint is None:
            self._fingerprint = "|".join(
                (
                    RECIPE,
                    type(self.model).__name__,
                    self.source.fingerprint(),
                    dtype_name(self.dtype),
                )
            )
        return self._fingerprint

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Embed strings in batches of ``batch_size``: (len(texts), d) on the model's device."""
        accepted = _named_parameters(self.model.get_text_features)
        chunks = []
        for start in range(0, len(texts), self.batch_size):
            tokens = self.tokenizer(
                list(texts[start : start + self.batch_size]),
                padding=self._padding,
                truncation=True,
                max_length=self._max_length,
                return_tensors="pt",
            )
            inputs = {
                name: value.to(self.device) for name, value in tokens.items() if name in accepted
            }
            with torch.inference_mode():
                output = self.model.get_text_features(**inputs)
            chunks.append(projected_features(output, "get_text_features", self.spec))
        return self._concat(chunks)

    def encode_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Embed RGB images in batches of ``batch_size``: (len(images), d) on the model's device."""
        accepted = _named_parameters(self.model.get_image_features)
        chunks = []
        for start in range(0, len(images), self.batch_size):
            batch = self.image_processor(
                images=[image.convert("RGB") for image in images[start : start + self.batch_size]],
                return_tensors="pt",
            )
            inputs = {
                name: self._to_model(value) for name, value in batch.items() if name in accepted
            }
            with torch.inference_mode():
                output = self.model.get_image_features(**inputs)
            chunks.append(projected_features(output, "get_image_features", self.spec))
        return self._concat(chunks)

    def _to_model(self, value: torch.Tensor) -> torch.Tensor:
        """Move a processor output to the device; floating tensors also take the model's dtype."""
        if value.is_floating_point():
            return value.to(self.device, self.dtype)
        return value.to(self.device)

    def _concat(self, chunks: list[torch.Tensor]) -> torch.Tensor:
        """Join per-batch outputs; an empty input gives an empty (0, d) tensor."""
        if not chunks:
            return torch.empty((0, self.embedding_dim), device=self.device, dtype=self.dtype)
        return torch.cat(chunks) if len(chunks) > 1 else chunks[0]


class HFClipPixelEncoder(HFClipEncoder):
    """A CLIP-family encoder whose image processor is a fixed resize / crop / normalise recipe.

    ``preprocessing`` describes that recipe so the pipeline can redo it on GPU tensors, and
    ``forward_pixels`` runs the image tower on pixels prepared either way.
    """

    def __init__(self, settings: _Settings, preprocessing: ImagePreprocessing) -> None:
        self.preprocessing = preprocessing
        super().__init__(settings)

    def preprocess(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """The model's own image processor, on CPU: (B, 3, H, W) float32 pixel values."""
        return processor_pixels(self.image_processor, images)

    def forward_pixels(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """One image-tower forward pass on preprocessed pixels: (B, d) on the model's device."""
        with torch.inference_mode():
            output = self.model.get_image_features(pixel_values=self._to_model(pixel_values))
        return projected_features(output, "get_image_features", self.spec)


def projected_features(output: object, method: str, spec: str) -> torch.Tensor:
    """The projected embedding from a ``get_*_features`` result, whatever the transformers version.

    transformers 4.x returns the (B, d) tensor itself; transformers 5 returns a
    ``BaseModelOutputWithPooling`` whose ``pooler_output`` it has replaced by the projection.
    FLAVA projects every token (B, L, d); its contrastive embedding is the CLS row, as in
    ``FlavaForPreTraining``'s global contrastive loss.
    """
    pooled = output if isinstance(output, torch.Tensor) else getattr(output, "pooler_output", None)
    if isinstance(pooled, torch.Tensor):
        return pooled[:, 0, :] if pooled.ndim == 3 else pooled
    raise EncoderError(
        f"Model {spec!r}: {method} returned {type(output).__name__}, which is neither a tensor "
        f"nor an output with a pooler_output tensor, so the embedding cannot be found. Wrap this "
        f"model as 'module:factory' with your own encode_images / encode_texts."
    )


def read_preprocessing(image_processor: Any) -> ImagePreprocessing | None:
    """The image processor's recipe as an ``ImagePreprocessing``, or None if it is not a fixed one.

    A recipe is fixed when the processor resizes to a shortest edge or to height x width, then
    optionally center-crops, rescales and normalises; processors that keep the input size, pad,
    or pick a patch budget per image (SigLIP 2 NaFlex) have no such description.
    """
    if not getattr(image_processor, "do_resize", True) or _unknown_switches(image_processor):
        return None
    size = getattr(image_processor, "size", None)
    if _size_value(size, "longest_edge") is not None:
        return None
    shortest_edge = _size_value(size, "shortest_edge")
    height = shortest_edge or _size_value(size, "height")
    width = shortest_edge or _size_value(size, "width")
    if height is None or width is None:
        return None
    center_crop = bool(getattr(image_processor, "do_center_crop", False))
    crop = getattr(image_processor, "crop_size", None) if center_crop else None
    rescale = getattr(image_processor, "do_rescale", True)
    mean, std = _folded_normalisation(image_processor, rescale)
    return ImagePreprocessing(
        height=height,
        width=width,
        shortest_edge=shortest_edge,
        center_crop=center_crop,
        crop_height=_size_value(crop, "height") or height,
        crop_width=_size_value(crop, "width") or width,
        rescale_factor=float(image_processor.rescale_factor) if rescale else 1.0,
        mean=mean,
        std=std,
        resample=resample_name(getattr(image_processor, "resample", None)),
    )


def _unknown_switches(image_processor: Any) -> list[str]:
    """The processor's ``do_*`` switches that are on and not part of a fixed recipe (``do_pad``,
    ``do_image_splitting``, ...)."""
    names = set(vars(image_processor)) | set(dir(type(image_processor)))
    return sorted(
        name
        for name in names
        if name.startswith("do_")
        and name not in _RECIPE_SWITCHES
        and getattr(image_processor, name, None) is True
    )


def _folded_normalisation(
    image_processor: Any, rescale: bool
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Mean and std such that ``(pixel * rescale_factor - mean) / std`` is the processor's output.

    Plain processors normalise once (or not at all). EfficientNet's (ALIGN's) may subtract 1
    after rescaling (``rescale_offset``: pixels / 127.5 - 1) and divide by std a second time
    (``include_top``); both fold into the mean and std.
    """
    normalize = bool(getattr(image_processor, "do_normalize", True))
    mean = _per_channel(image_processor.image_mean) if normalize else (0.0, 0.0, 0.0)
    std = _per_channel(image_processor.image_std) if normalize else (1.0, 1.0, 1.0)
    offset = 1.0 if rescale and getattr(image_processor, "rescale_offset", False) else 0.0
    if getattr(image_processor, "include_top", False):
        top = _per_channel(image_processor.image_std)
        std = (std[0] * top[0], std[1] * top[1], std[2] * top[2])
    return (mean[0] + offset, mean[1] + offset, mean[2] + offset), std


def resample_name(resample: object) -> str:
    """The PIL name ("bicubic") of a resample setting: PIL int or enum, or torchvision mode."""
    value = getattr(resample, "value", resample)
    if isinstance(value, int) and value in _PIL_RESAMPLE:
        return _PIL_RESAMPLE[value]
    if isinstance(value, str):
        return value.lower()
    # A processor that never sets it gets transformers' resize() default.
    return "bilinear"


def _size_value(size: object, key: str) -> int | None:
    """One field of a processor size (a dict in transformers 4, a SizeDict object in 5)."""
    if size is None:
        return None
    value = size.get(key) if isinstance(size, Mapping) else getattr(size, key, None)
    return int(value) if value is not None else None


def _per_channel(values: float | Sequence[float]) -> tuple[float, float, float]:
    """Mean or std as three floats (some processors store one value for all channels)."""
    if isinstance(values, (int, float)):
        return (float(values),) * 3
    first, second, third = (float(value) for value in values)
    return (first, second, third)


def _text_max_length(model: Any, tokenizer: Any, processor_limit: object = None) -> int | None:
    """The longest text to embed: min of the text tower's positions (less RoBERTa's padding
    offset), the tokenizer limit and the processor's default ``max_length``."""
    limits = []
    text_config = getattr(model.config, "text_config", None)
    positions = getattr(text_config, "max_position_embeddings", None)
    if isinstance(positions, int):
        # RoBERTa-style towers (AltCLIP, XLM-R) number positions from padding_idx + 1.
        offset = getattr(text_config, "pad_token_id", None) if _roberta_positions(model) else None
        limits.append(positions - (offset + 1 if isinstance(offset, int) else 0))
    if isinstance(processor_limit, int) and not isinstance(processor_limit, bool):
        limits.append(processor_limit)
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tokenizer_limit, int) and tokenizer_limit < _NO_LIMIT:
        limits.append(tokenizer_limit)
    return min(limits) if limits else None


def _roberta_positions(model: Any) -> bool:
    """Whether the text tower's position ids start after the padding index (RoBERTa family)."""
    text_model = getattr(model, "text_model", None)
    embeddings = getattr(getattr(text_model, "roberta", text_model), "embeddings", None)
    return getattr(embeddings, "padding_idx", None) is not None and hasattr(
        embeddings, "position_embeddings"
    )


def _named_parameters(method: Callable[..., Any]) -> set[str]:
    """Names a method takes explicitly, to pass it only the processor outputs it knows."""
    return {
        name
        for name, parameter in inspect.signature(method).parameters.items()
        if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
    }
