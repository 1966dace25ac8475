"""Benchmark of the embedding pipeline against the model's raw forward speed, and of the cache.

Builds random-init CLIP models from configs (CPU: a ViT-B/32-shaped model with fewer layers;
CUDA: ViT-B/32 and ViT-L/14 in bfloat16), writes photo-like JPEGs of COCO-like sizes to a temporary
folder, and prints per model: raw forward images/s on ready pixel tensors, full pipeline images/s
from the files, their ratio (target >= 0.80), and the first embedding run against a cached re-run
(target >= 20x). Then a cached `modgap measure` of the shipped reference model (1,000 `shapes`
pairs, every metric with 1,000 bootstrap resamples) as a process of its own, against a process that
only reads the same cache entry's .npz and computes the same metrics (target <= 1.3x: a cache hit
loads no model).
Run: python benchmarks/bench_encode.py [--images N] [--batch-size B] [--workers W]
         [--arch vit-b32,vit-l14,...] [--device cuda] [--dtype bfloat16] [--json PATH]
         [--cached-measure-repeats R | --cached-measure-only]
(--arch: the shapes of ARCHS below; default: by device as above. benchmarks/gpu_check.sh runs
--arch vit-b32 --device cuda --dtype bfloat16. --cached-measure-repeats 0 skips the last section.)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_modgap.data.pairset import PairSet  # noqa: E402
from pytest_modgap.embedding.cache import EmbeddingCache  # noqa: E402
from pytest_modgap.embedding.pipeline import (  # noqa: E402
    default_num_workers,
    embed_images,
    embed_pairs_cached,
    image_pipeline,
)
from pytest_modgap.models.base import ImagePreprocessing  # noqa: E402
from pytest_modgap.models.hf_clip import projected_features, read_preprocessing  # noqa: E402

# (height, width) of the most common MSCOCO / Flickr image shapes.
IMAGE_SIZES = [(480, 640), (375, 500), (640, 480), (427, 640), (500, 333), (480, 640)]
TEXT_LENGTH = 16
TEXT_VOCAB = 1000


@dataclass(frozen=True)
class ModelShape:
    name: str
    vision_layers: int
    vision_width: int
    patch: int
    text_layers: int
    text_width: int
    projection: int


ARCHS = {
    "vit-b32": ModelShape("ViT-B/32", 12, 768, 32, 12, 512, 512),
    "vit-l14": ModelShape("ViT-L/14", 24, 1024, 14, 12, 768, 768),
    "vit-b32-4layers": ModelShape("ViT-B/32-shaped, 4 vision layers", 4, 768, 32, 2, 512, 512),
    # Seconds on a CPU: checks that the benchmark's code paths run, measures nothing useful.
    "tiny": ModelShape("tiny (2 vision layers, width 128)", 2, 128, 32, 1, 128, 128),
}
CPU_MODELS = [ARCHS["vit-b32-4layers"]]
CUDA_MODELS = [ARCHS["vit-b32"], ARCHS["vit-l14"]]
PIPELINE_TARGET = 0.80
CACHE_TARGET = 20.0
CACHED_MEASURE_TARGET = 1.3
CACHED_MEASURE_SAMPLES = 1000
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class RandomClipEncoder:
    """A PixelEncoder around a random-init transformers CLIPModel and the PIL CLIP processor.

    Texts are tokenized by hashing words into a small vocabulary: the benchmark times images, and
    a real tokenizer would need vocabulary files that are not available offline.
    """

    def __init__(self, shape: ModelShape, device: torch.device, dtype: torch.dtype) -> None:
        from transformers import CLIPConfig, CLIPModel

        processor_class = _pil_clip_processor()
        vision = {
            "hidden_size": shape.vision_width,
            "intermediate_size": 4 * shape.vision_width,
            "num_hidden_layers": shape.vision_layers,
            "num_attention_heads": shape.vision_width // 64,
            "patch_size": shape.patch,
            "image_size": 224,
        }
        text = {
            "hidden_size": shape.text_width,
            "intermediate_size": 4 * shape.text_width,
            "num_hidden_layers": shape.text_layers,
            "num_attention_heads": shape.text_width // 64,
            "vocab_size": TEXT_VOCAB,
            "max_position_embeddings": TEXT_LENGTH,
            "eos_token_id": TEXT_VOCAB - 1,
        }
        config = CLIPConfig(vision_config=vision, text_config=text, projection_dim=shape.projection)
        torch.manual_seed(0)
        model: Any = CLIPModel(config)
        self.model: Any = model.to(device=device, dtype=dtype).eval()
        self.processor = processor_class()
        recipe = read_preprocessing(self.processor)
        assert recipe is not None
        self.preprocessing: ImagePreprocessing = recipe
        self.spec = f"random-clip {shape.name}"
        self.device = device
        self.dtype = dtype

    def fingerprint(self) -> str:
        return f"{self.spec}|{self.dtype}|seed0"

    def preprocess(self, images: Sequence[Image.Image]) -> torch.Tensor:
        pixels: torch.Tensor = self.processor(images=list(images), return_tensors="pt")[
            "pixel_values"
        ]
        return pixels.float()

    def forward_pixels(self, pixel_values: torch.Tensor) -> torch.Tensor:
        pixels = pixel_values.to(self.device, self.dtype, non_blocking=True)
        output = self.model.get_image_features(pixel_values=pixels)
        return projected_features(output, "get_image_features", self.spec)

    def encode_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        return self.forward_pixels(self.preprocess(images))

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        ids = torch.zeros((len(texts), TEXT_LENGTH), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, text in enumerate(texts):
            words = text.split()[: TEXT_LENGTH - 1]
            tokens = [zlib.crc32(word.encode()) % (TEXT_VOCAB - 1) for word in words]
            tokens.append(TEXT_VOCAB - 1)  # CLIP pools the end-of-text token
            ids[row, : len(tokens)] = torch.tensor(tokens)
            mask[row, : len(tokens)] = 1
        output = self.model.get_text_features(
            input_ids=ids.to(self.device), attention_mask=mask.to(self.device)
        )
        return projected_features(output, "get_text_features", self.spec)


def _pil_clip_processor() -> Any:
    import transformers

    # transformers 5 names the PIL backend CLIPImageProcessorPil; before, CLIPImageProcessor was it.
    return getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor


def _write_image(args: tuple[Path, int]) -> Path:
    """One photo-like JPEG: smooth colour fields, edges and sensor noise (JPEG-typical content)."""
    path, seed = args
    rng = np.random.default_rng(seed)
    height, width = IMAGE_SIZES[seed % len(IMAGE_SIZES)]
    coarse = rng.integers(0, 256, (height // 40 + 2, width // 40 + 2, 3), dtype=np.uint8)
    smooth = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
    noise = rng.integers(-12, 13, (height, width, 3), dtype=np.int16)
    image = np.clip(np.asarray(smooth, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
    Image.fromarray(image).save(path, quality=90)
    return path


def make_pairs(folder: Path, count: int) -> PairSet:
    jobs = [(folder / f"{i:06d}.jpg", i) for i in range(count)]
    with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
        paths = list(pool.map(_write_image, jobs, chunksize=16))
    colours = ["red", "green", "blue", "yellow", "grey"]
    texts = [
        f"a photo of {colours[i % 5]} waves number {i}" + " in the evening light" * (i % 3)
        for i in range(count)
    ]
    return PairSet(name="bench", images=paths, texts=texts)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def raw_forward_rate(encoder: RandomClipEncoder, count: int, batch_size: int) -> float:
    """Images/s of forward_pixels alone, on pixel tensors already on the device."""
    pixels = torch.randn(batch_size, 3, 224, 224, device=encoder.device)
    batches = math.ceil(count / batch_size)
    with torch.inference_mode():
        for _ in range(2):
            encoder.forward_pixels(pixels)
        synchronize(encoder.device)
        start = time.perf_counter()
        for _ in range(batches):
            encoder.forward_pixels(pixels)
        synchronize(encoder.device)
    return batches * batch_size / (time.perf_counter() - start)


def pipeline_rate(
    encoder: RandomClipEncoder, pairs: PairSet, batch_size: int, workers: int
) -> float:
    """Images/s of the full image pipeline: files -> decode -> preprocess -> forward -> numpy."""
    warmup = pairs.subset(range(min(len(pairs), 2 * batch_size)))
    embed_images(warmup, encoder, batch_size=batch_size, num_workers=workers, progress=False)
    start = time.perf_counter()
    embed_images(pairs, encoder, batch_size=batch_size, num_workers=workers, progress=False)
    synchronize(encoder.device)
    return len(pairs) / (time.perf_counter() - start)


def cache_times(
    encoder: RandomClipEncoder, pairs: PairSet, batch_size: int, workers: int, root: Path
) -> tuple[float, float]:
    """Seconds for the first embed_pairs_cached run (empty cache) and for the re-run."""
    cache = EmbeddingCache(root)
    times = []
    for _ in range(2):
        start = time.perf_counter()
        embed_pairs_cached(
            pairs, encoder, cache, batch_size=batch_size, num_workers=workers, progress=False
        )
        times.append(time.perf_counter() - start)
    return times[0], times[1]


# What the baseline process of the cached-measure section does: read the embeddings (and the
# pairs' labels) that `modgap measure` reads from its cache entry, and compute the same metrics.
_READ_AND_MEASURE = """
import sys
import numpy as np
from pytest_modgap.metrics.engine import measure_embeddings
with np.load(sys.argv[1], allow_pickle=False) as stored:
    arrays = {name: stored[name] for name in stored.files}
image, text = arrays.pop("image"), arrays.pop("text")
arguments = dict(arrays)
if "slices" in arguments:
    arguments["slices"] = [str(label) for label in arguments["slices"]]
if "retrieval" in arguments:
    arguments["retrieval"] = bool(arguments["retrieval"])
report = measure_embeddings(image, text, **arguments, ci=0.95, n_boot=1000, seed=0)
print(f"alignment {report['alignment']:.6f}")
"""


def _measured_inputs(cache: Path, path: Path) -> None:
    """Save what `modgap measure` hands the metric engine after its cache hit (the embeddings of
    the cache entry and the pairs' groups, captions and labels) as one .npz at ``path``."""
    from pytest_modgap.embedding.measurement import load_model, sample_embeddings
    from pytest_modgap.reference import reference_model_dir

    model = load_model(str(reference_model_dir("reference")), lazy=True)
    sample, _ = sample_embeddings(
        model, "shapes", samples=CACHED_MEASURE_SAMPLES, seed=0, cache_dir=cache
    )
    if model.loaded:
        raise SystemExit(f"cached measure: the embeddings were not in the cache {cache}")
    arrays: dict[str, Any] = {"image": sample.image, "text": sample.text}
    for name, value in sample.arguments().items():
        if value is not None:
            arrays[name] = np.asarray(value)
    np.savez(path, **arrays)


def _timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Wall seconds and stdout of one process."""
    start = time.perf_counter()
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - start, done.stdout


def cached_measure(root: Path, repeats: int, device: str | None) -> dict[str, Any]:
    """A cached `modgap measure` (reference model, 1,000 shapes pairs) against reading the same
    embeddings from an .npz plus computing the same metrics, each as its own Python process,
    interleaved.

    Both processes import torch and numpy and compute the same report from the same arrays
    (alignment is printed by both and compared); what the first adds is the command itself: the
    data set (generated) and its fingerprint, the model's identity from its files, the cache lookup
    and the printing. A cache hit that still built the model would add transformers' import and
    the model's load (about 5 s here).
    """
    cache = root / "measure-cache"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "pytest_modgap.cli", "measure", "--cache-dir", str(cache)]
    command += ["--samples", str(CACHED_MEASURE_SAMPLES)]
    if device:
        command += ["--device", device]
    first, _ = _timed(command, env)
    inputs = root / "measured-inputs.npz"
    _measured_inputs(cache, inputs)
    baseline = [sys.executable, "-c", _READ_AND_MEASURE, str(inputs)]
    cached_times, baseline_times = [], []
    for _ in range(repeats):
        seconds, measured = _timed(command, env)
        cached_times.append(seconds)
        seconds, computed = _timed(baseline, env)
        baseline_times.append(seconds)
    alignment = f"{float(computed.split()[-1]):.4f}"
    shown = [line.split()[2] for line in measured.splitlines() if line.startswith("alignment ")]
    if shown != [alignment]:
        raise SystemExit(f"cached measure: alignment {shown} differs from {alignment}:\n{measured}")
    cached = statistics.median(cached_times)
    read = statistics.median(baseline_times)
    return {
        "first_run_s": first,
        "cached_run_s": cached,
        "read_and_metrics_s": read,
        "ratio": cached / read,
        "target": CACHED_MEASURE_TARGET,
        "target_met": cached / read <= CACHED_MEASURE_TARGET,
        "repeats": repeats,
        "command": " ".join(command[1:]),
    }


def print_cached_measure(result: dict[str, Any]) -> None:
    print(f"\ncached `modgap measure` (reference model, {CACHED_MEASURE_SAMPLES} shapes pairs)")
    print(f"  first run (embeds):        {result['first_run_s']:8.2f} s")
    print(
        f"  cached run:                {result['cached_run_s']:8.2f} s   (median of {result['repeats']})"
    )
    print(f"  read .npz + metrics:       {result['read_and_metrics_s']:8.2f} s")
    print(
        f"  cached / (read + metrics): {result['ratio']:8.2f}     "
        f"(target <= {CACHED_MEASURE_TARGET:.1f})"
    )


def _architectures(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in ARCHS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected a comma-separated list of {', '.join(ARCHS)}"
        )
    return names


def main() -> None:
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, help="JPEGs to encode (default: 4096 cuda, 128 cpu)")
    parser.add_argument("--batch-size", type=int, help="batch size (default: 256 cuda, 32 cpu)")
    parser.add_argument("--workers", type=int, default=default_num_workers())
    parser.add_argument(
        "--arch",
        type=_architectures,
        help=f"model shapes, comma-separated, of {', '.join(ARCHS)} "
        "(default: vit-b32,vit-l14 on cuda, vit-b32-4layers on cpu)",
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    parser.add_argument(
        "--dtype", choices=sorted(DTYPES), help="default: bfloat16 on cuda, float32 on cpu"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--cached-measure-repeats",
        type=int,
        default=5,
        metavar="R",
        help="timed repeats of the cached `modgap measure` section (default 5; 0 skips it)",
    )
    parser.add_argument(
        "--cached-measure-only",
        action="store_true",
        help="run only the cached `modgap measure` section",
    )
    args = parser.parse_args()

    device = torch.device(args.device or ("cuda" if cuda else "cpu"))
    on_cuda = device.type == "cuda"
    if on_cuda and not cuda:
        raise SystemExit(f"--device {args.device}: torch {torch.__version__} sees no CUDA device")
    dtype = DTYPES[args.dtype] if args.dtype else (torch.bfloat16 if on_cuda else torch.float32)
    images = args.images or (4096 if on_cuda else 128)
    batch_size = args.batch_size or (256 if on_cuda else 32)
    if args.cached_measure_only:
        models = []
    elif args.arch:
        models = [ARCHS[name] for name in args.arch]
    else:
        models = CUDA_MODELS if on_cuda else CPU_MODELS
    where = (
        torch.cuda.get_device_name(device) if on_cuda else f"cpu, {torch.get_num_threads()} threads"
    )
    results: dict[str, Any] = {
        "device": where,
        "dtype": str(dtype).removeprefix("torch."),
        "images": images,
        "batch_size": batch_size,
        "workers": args.workers,
        "models": [],
    }
    with tempfile.TemporaryDirectory(prefix="modgap-bench-") as temp:
        if models:
            start = time.perf_counter()
            pairs = make_pairs(Path(temp), images)
            results["jpeg_write_s"] = time.perf_counter() - start
            print(
                f"device: {where}; {images} JPEGs of COCO-like sizes written in "
                f"{results['jpeg_write_s']:.1f} s; batch {batch_size}; "
                f"{args.workers} workers; dtype {results['dtype']}"
            )
        for number, shape in enumerate(models):
            encoder = RandomClipEncoder(shape, device, dtype)
            raw = raw_forward_rate(encoder, images, batch_size)
            full = pipeline_rate(encoder, pairs, batch_size, args.workers)
            first, cached = cache_times(
                encoder, pairs, batch_size, args.workers, Path(temp) / f"cache{number}"
            )
            print(f"\n{shape.name} (image pipeline: {image_pipeline(encoder)})")
            print(f"  raw forward:          {raw:10.1f} images/s")
            print(f"  pipeline from files:  {full:10.1f} images/s")
            print(f"  pipeline / raw:       {full / raw:10.2f}   (target >= {PIPELINE_TARGET:.2f})")
            print(f"  first run:            {first:10.2f} s    (images + texts, cache empty)")
            print(f"  cached re-run:        {cached:10.3f} s")
            print(
                f"  first / cached:       {first / cached:10.1f}   (target >= {CACHE_TARGET:.0f})"
            )
            results["models"].append(
                {
                    "name": shape.name,
                    "shape": shape.__dict__,
                    "image_pipeline": image_pipeline(encoder),
                    "raw_forward_images_per_s": raw,
                    "pipeline_images_per_s": full,
                    "pipeline_over_raw": full / raw,
                    "pipeline_target": PIPELINE_TARGET,
                    "pipeline_target_met": full / raw >= PIPELINE_TARGET,
                    "first_run_s": first,
                    "cached_run_s": cached,
                    "cache_speedup": first / cached,
                    "cache_target": CACHE_TARGET,
                    "cache_target_met": first / cached >= CACHE_TARGET,
                }
            )
            if args.json:
                Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
            del encoder
            if on_cuda:
                torch.cuda.empty_cache()
        repeats = max(1, args.cached_measure_repeats) if args.cached_measure_only else 0
        repeats = repeats or args.cached_measure_repeats
        if repeats > 0:
            results["cached_measure"] = cached_measure(Path(temp), repeats, args.device)
            print_cached_measure(results["cached_measure"])
            if args.json:
                Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
