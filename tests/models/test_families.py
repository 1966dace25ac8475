"""Every transformers family, embedded by pytest-modgap, equals plain transformers.

For each family a tiny random model is built from the library's own config, processor and tokenizer
classes. The reference is what the family's model card does: the model's own processor, the model's
own ``get_*_features`` (or BLIP retrieval's contrastive heads), float32 on CPU. pytest-modgap must
give the same vectors to 1e-4 through the embedding pipeline (the processor path ``measure()`` takes
on CPU) and, where the processor is a fixed resize / crop / normalise, through the tensor path the
pipeline takes on CUDA (``gpu_preprocess.preprocess_batch`` + ``forward_pixels``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pytest_modgap.data.pairset import PairSet
from pytest_modgap.embedding.gpu_preprocess import preprocess_batch, supports
from pytest_modgap.embedding.pipeline import embed_pairs
from pytest_modgap.models.base import PixelEncoder
from pytest_modgap.models.hf_clip import HFClipEncoder
from pytest_modgap.models.loader import load_encoder
from tests.models.tiny_families import FAMILIES, Family
from tests.models.tiny_models import sample_images

TOLERANCE = 1e-4

TEXTS = [
    "a photo of a cat",
    "two birds in the blue sky",
    "海滩上美丽的日落",
    # Longer than every tiny text tower (16 tokens): both sides must truncate the same way.
    "the quick brown fox jumps over the lazy dog " * 6,
    "a dog",
]


# Image sizes for the tensor path. Pillow resamples 8-bit images with fixed-point coefficients, so
# where a filtered value falls next to x.5 it may round the other way than the tensor path's
# float64 resize: one 8-bit level. (On other sizes, e.g. 50x37 -> 32x32, Pillow 13 runs its
# vertical pass first while the tensor path always resizes the width first: up to 12 levels;
# those sizes are left out here and reported, see gpu_preprocess.)
TENSOR_PATH_SIZES = {
    "bicubic": [(32, 32), (40, 50), (33, 71), (37, 41), (29, 35), (96, 80)],
    "bilinear": [(32, 32), (64, 48), (40, 50), (33, 71)],
}
MIN_EXACT_IMAGES = 2


class Reference:
    """Plain transformers, the way each family's model card calls it: the model's own processor and
    ``get_*_features`` (BLIP retrieval: its contrastive heads), float32 on CPU."""

    def __init__(self, family: Family, directory: Path) -> None:
        import transformers
        from transformers import AutoModel, AutoProcessor

        loader = getattr(transformers, family.model_class) if family.model_class else AutoModel
        self.family = family
        self.model = loader.from_pretrained(directory, dtype=torch.float32).eval()
        self.processor = AutoProcessor.from_pretrained(directory)

    def __call__(
        self, images: list[Image.Image], texts: list[str]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        model, family = self.model, self.family
        image_inputs = self.processor(images=images, return_tensors="pt")
        text_inputs = self.processor(
            text=texts, padding=family.text_padding, truncation=True, return_tensors="pt"
        )
        with torch.inference_mode():
            if family.name == "blip-itm":
                # BlipForImageTextRetrieval.forward(use_itm_head=False): the ITC embeddings.
                vision = model.vision_model(pixel_values=image_inputs["pixel_values"])
                text = model.text_encoder(
                    input_ids=text_inputs["input_ids"], attention_mask=text_inputs["attention_mask"]
                )
                return (
                    model.vision_proj(vision.last_hidden_state[:, 0, :]),
                    model.text_proj(text.last_hidden_state[:, 0, :]),
                )
            image = model.get_image_features(**image_inputs).pooler_output
            text = model.get_text_features(**text_inputs).pooler_output
        if family.name == "flava":
            # FlavaForPreTraining's contrastive embeddings: the projection of the CLS token.
            image, text = image[:, 0, :], text[:, 0, :]
        return image, text


@dataclass
class Embedded:
    """One family's model directory, its loaded encoder and the plain-transformers reference."""

    family: Family
    directory: Path
    encoder: HFClipEncoder
    reference: Reference
    images: list[Image.Image]
    image: torch.Tensor
    text: torch.Tensor


@pytest.fixture(scope="module", params=FAMILIES, ids=[family.name for family in FAMILIES])
def embedded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Embedded:
    chosen: Family = request.param
    directory = chosen.build(tmp_path_factory.mktemp(chosen.name))
    images = sample_images(len(TEXTS))
    reference = Reference(chosen, directory)
    image, text = reference(images, TEXTS)
    encoder = load_encoder(str(directory), device="cpu", dtype="float32")
    assert isinstance(encoder, HFClipEncoder)
    return Embedded(chosen, directory, encoder, reference, images, image, text)


def test_pipeline_equals_plain_transformers(embedded: Embedded) -> None:
    pairs = PairSet(
        name="family", images=[np.asarray(image) for image in embedded.images], texts=TEXTS
    )
    # Batches of 2: texts meet other texts of their length, images other images.
    result = embed_pairs(pairs, embedded.encoder, batch_size=2, num_workers=0, progress=False)
    np.testing.assert_allclose(result.image, embedded.image.numpy(), atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(result.text, embedded.text.numpy(), atol=TOLERANCE, rtol=0)


def test_tensor_preprocessing_path_equals_plain_transformers(embedded: Embedded) -> None:
    encoder = embedded.encoder
    if not embedded.family.pixel_recipe:
        assert not isinstance(encoder, PixelEncoder), (
            f"{embedded.family.name}'s processor has no fixed resize / crop / normalise recipe, "
            f"so no tensor path may claim to redo it"
        )
        return
    assert isinstance(encoder, PixelEncoder) and supports(encoder.preprocessing)
    rng = np.random.default_rng(0)
    arrays = [
        rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        for height, width in TENSOR_PATH_SIZES[encoder.preprocessing.resample]
    ]
    images = [Image.fromarray(array) for array in arrays]
    tensor_pixels = preprocess_batch(
        [torch.from_numpy(array).permute(2, 0, 1) for array in arrays],
        encoder.preprocessing,
        "cpu",
    )
    processor_pixels = encoder.preprocess(images)
    one_level = encoder.preprocessing.rescale_factor / min(encoder.preprocessing.std)
    torch.testing.assert_close(tensor_pixels, processor_pixels, atol=one_level + 1e-5, rtol=0)
    # Where no pixel rounded the other way, the tensor path must give plain transformers' vectors.
    exact = [
        index
        for index in range(len(images))
        if torch.allclose(tensor_pixels[index], processor_pixels[index], atol=1e-5, rtol=0)
    ]
    assert len(exact) >= MIN_EXACT_IMAGES, f"only images {exact} came out pixel-exact"
    expected, _ = embedded.reference([images[index] for index in exact], TEXTS[:1])
    vectors = encoder.forward_pixels(tensor_pixels[exact])
    np.testing.assert_allclose(vectors.numpy(), expected.numpy(), atol=TOLERANCE, rtol=0)


GAP_METRICS = ("alignment", "centroid_gap", "pair_distance", "image_cone", "text_cone")


def test_measure_reports_the_metrics_of_plain_transformers_embeddings(embedded: Embedded) -> None:
    """The ``measure()`` path (sample, pipeline, metrics) with the loaded model against the
    metrics of the reference vectors."""
    from pytest_modgap import measure, measure_embeddings
    from pytest_modgap.embedding.measurement import LoadedModel

    pairs = PairSet(
        name="family", images=[np.asarray(image) for image in embedded.images], texts=TEXTS
    )
    loaded = LoadedModel(spec=str(embedded.directory), encoder=embedded.encoder)
    report = measure(loaded, pairs, use_cache=False, ci=None, progress=False)
    expected = measure_embeddings(embedded.image.numpy(), embedded.text.numpy(), ci=None)
    for name in GAP_METRICS:
        assert report[name] == pytest.approx(expected[name], abs=TOLERANCE), name
