"""``measure``: model spec + data set spec -> a full Report, with sampling, caching and precomputed vectors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from pytest_modgap import load_model, measure
from pytest_modgap.data.pairset import PairSet
from pytest_modgap.embedding.measurement import sample_indices
from pytest_modgap.errors import DatasetError, EncoderError
from tests.data.layouts import write_image

pytestmark = pytest.mark.usefixtures("offline")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("manifest")
    lines = []
    for i in range(24):
        write_image(root / "images" / f"{i}.png", seed=i)
        record = {
            "image": f"images/{i}.png",
            "texts": [f"picture number {i}", f"an image with the number {i}"],
            "label": i % 4,
        }
        lines.append(json.dumps(record))
    path = root / "pairs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_measure_a_model_directory_on_a_manifest_gives_every_metric(
    clip_dir: Path, manifest: Path, tmp_path: Path
) -> None:
    report = measure(str(clip_dir), str(manifest), cache_dir=tmp_path, n_boot=50, device="cpu")
    assert report.n == 24
    assert "matched_overlap" in report and "text_text_similarity" in report
    assert set(report.ci) == set(report)
    assert report.metadata["model"] == str(clip_dir)
    assert report.metadata["dataset"] == str(manifest)
    assert report.metadata["device"] == "cpu"
    assert report.metadata["dtype"] == "float32"


def test_second_measure_reads_the_cache_and_agrees(
    clip_dir: Path, manifest: Path, tmp_path: Path
) -> None:
    first = measure(str(clip_dir), str(manifest), cache_dir=tmp_path, ci=None)
    entries = list(tmp_path.glob("*.npz"))
    assert len(entries) == 1
    second = measure(str(clip_dir), str(manifest), cache_dir=tmp_path, ci=None)
    assert dict(second) == dict(first)
    assert list(tmp_path.glob("*.npz")) == entries


def test_samples_draw_a_seeded_subset_and_change_the_cache_key(
    clip_dir: Path, manifest: Path, tmp_path: Path
) -> None:
    model = load_model(str(clip_dir), device="cpu")
    a = measure(model, str(manifest), samples=10, seed=1, cache_dir=tmp_path, ci=None)
    b = measure(model, str(manifest), samples=10, seed=1, cache_dir=tmp_path, ci=None)
    c = measure(model, str(manifest), samples=10, seed=2, cache_dir=tmp_path, ci=None)
    assert a.n == 10 and dict(a) == dict(b)
    assert dict(a) != dict(c)
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_pairset_sampling_and_array_sampling_pick_the_same_rows() -> None:
    pairs = PairSet(
        name="t", images=[np.zeros((2, 2, 3), np.uint8)] * 30, texts=[str(i) for i in range(30)]
    )
    rows = sample_indices(30, 7, seed=5)
    assert [int(t) for t in pairs.sample(7, 5).texts] == rows.tolist()


def test_precomputed_embeddings_skip_the_data_set(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    image = rng.normal(size=(40, 8)).astype(np.float32)
    np.savez(tmp_path / "e.npz", image=image, text=image + rng.normal(size=(40, 8)))
    report = measure(f"embeddings:{tmp_path / 'e.npz'}", "does-not-matter", samples=30, ci=None)
    assert report.n == 30
    assert report.metadata["dataset"].startswith("embeddings:")


def test_more_samples_than_precomputed_rows_is_refused_not_clamped(tmp_path: Path) -> None:
    """A gate asked for 1,000 pairs must not pass on 40 while its report says 1,000."""
    rng = np.random.default_rng(0)
    path = tmp_path / "e.npz"
    np.savez(path, image=rng.normal(size=(40, 8)), text=rng.normal(size=(40, 8)))
    with pytest.raises(DatasetError) as info:
        measure(f"embeddings:{path}", "unused", samples=1000, ci=None)
    assert f"samples=1000 asks for more pairs than embeddings file {path} holds (40)" in str(
        info.value
    )
    report = measure(f"embeddings:{path}", "unused", samples=40, ci=None)
    assert report.n == 40 and report.metadata["samples"] == 40


def test_unknown_model_and_unknown_data_set_are_clear_errors(
    clip_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(EncoderError, match="does-not-exist"):
        measure(str(tmp_path / "does-not-exist"), "shapes", cache_dir=tmp_path)
    with pytest.raises(DatasetError, match="imagenet"):
        measure(str(clip_dir), "imagenet:/nowhere", cache_dir=tmp_path)


def test_a_missing_image_names_the_file_and_the_manifest_line(
    clip_dir: Path, manifest: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.jsonl"
    lines = manifest.read_text().splitlines()
    lines.append(json.dumps({"image": "images/missing.png", "text": "gone"}))
    broken.write_text("\n".join(lines) + "\n")
    (tmp_path / "images").symlink_to(manifest.parent / "images")
    with pytest.raises(DatasetError, match=r"missing\.png.*line 25|line 25.*missing\.png"):
        measure(str(clip_dir), str(broken), cache_dir=tmp_path)


def test_a_cached_measure_loads_no_model_and_gives_the_same_numbers(
    clip_dir: Path, manifest: Path, tmp_path: Path, refuse_loading: Callable[[], list[str]]
) -> None:
    first = measure(str(clip_dir), str(manifest), cache_dir=tmp_path, n_boot=50, device="cpu")
    tried = refuse_loading()
    second = measure(str(clip_dir), str(manifest), cache_dir=tmp_path, n_boot=50, device="cpu")
    assert tried == []
    assert dict(second) == dict(first) and second.ci == first.ci
    assert (second.metadata["device"], second.metadata["dtype"]) == ("cpu", "float32")
    # A lazily loaded model (the plugin's and the command's) is never loaded on a hit either.
    lazy = load_model(str(clip_dir), device="cpu", lazy=True)
    third = measure(lazy, str(manifest), cache_dir=tmp_path, n_boot=50)
    assert not lazy.loaded and dict(third) == dict(first)


def test_a_cached_measure_imports_no_transformers(
    clip_dir: Path, manifest: Path, tmp_path: Path
) -> None:
    """A fresh process that finds its embeddings cached never imports transformers."""
    measure(str(clip_dir), str(manifest), cache_dir=tmp_path, ci=None, device="cpu")
    script = (
        "import sys\n"
        "from pytest_modgap import measure\n"
        f"report = measure({str(clip_dir)!r}, {str(manifest)!r}, cache_dir={str(tmp_path)!r}, "
        "ci=None, device='cpu')\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'transformers'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def _invert_image_mean(data: bytes) -> bytes:
    """A processor config (transformers 4's flat preprocessor_config.json or 5's processor_config.json
    with a nested image_processor) with 1 - mean as its image mean, padded to the same size."""
    config = json.loads(data)
    recipe = config.get("image_processor", config)
    recipe["image_mean"] = [round(1.0 - value, 8) for value in recipe["image_mean"]]
    return json.dumps(config).ljust(len(data)).encode()


@pytest.mark.parametrize("changed", ["weights", "processor"])
def test_a_change_to_any_model_file_misses_the_cache(
    changed: str, clip_dir: Path, manifest: Path, tmp_path: Path
) -> None:
    """A same-size rewrite that keeps the mtime (``cp -p``) is still a new model: it is loaded."""
    model = Path(shutil.copytree(clip_dir, tmp_path / "model"))
    cache = tmp_path / "cache"
    before = measure(str(model), str(manifest), cache_dir=cache, ci=None, device="cpu")
    if changed == "weights":
        path = model / "model.safetensors"
        data = bytearray(path.read_bytes())
        data[-64:] = bytes(255 - value for value in data[-64:])  # the last tensor's last values
    else:
        names = ("preprocessor_config.json", "processor_config.json")
        path = next(model / name for name in names if (model / name).is_file())
        data = bytearray(_invert_image_mean(path.read_bytes()))
    stat = path.stat()
    assert len(data) == stat.st_size
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    lazy = load_model(str(model), device="cpu", lazy=True)
    after = measure(lazy, str(manifest), cache_dir=cache, ci=None)
    assert lazy.loaded, "the changed model was served from the cache"
    assert dict(after) != dict(before)
    assert len(list(cache.glob("*.npz"))) == 2


def test_a_hub_id_without_network_fails_within_five_seconds(tmp_path: Path) -> None:
    """No HF_HUB_OFFLINE and no network (a closed port as the hub): one clear error, no retries."""
    script = (
        "import time\n"
        "import torch\n"  # imports are not the hub's time: a loaded machine takes seconds
        "from pytest_modgap import measure\n"
        "from pytest_modgap.errors import EncoderError\n"
        "started = time.perf_counter()\n"
        "try:\n"
        "    measure('some-org/some-model', 'shapes', samples=10, ci=None)\n"
        "except EncoderError as error:\n"
        "    print(f'{time.perf_counter() - started:.2f}', error)\n"
    )
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    }
    environment.update(HF_ENDPOINT="http://127.0.0.1:9", HF_HOME=str(tmp_path / "hf"))
    environment["MODGAP_CACHE_DIR"] = str(tmp_path / "cache")
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=True,
    )
    seconds, message = done.stdout.split(" ", 1)
    assert float(seconds) < 5.0, done.stdout + done.stderr
    assert "'some-org/some-model'" in message and "hf download some-org/some-model" in message
    assert "huggingface-cli" not in message


def test_a_cached_measure_of_a_remote_code_model_loads_nothing(
    manifest: Path, tmp_path: Path, refuse_loading: Callable[[], list[str]]
) -> None:
    from tests.models.tiny_models import build_remote_dir

    model = str(build_remote_dir(tmp_path / "v4", "v4"))
    options = {"cache_dir": tmp_path / "cache", "ci": None, "device": "cpu"}
    first = measure(model, str(manifest), trust_remote_code=True, **options)
    tried = refuse_loading()
    second = measure(model, str(manifest), trust_remote_code=True, **options)
    assert tried == [] and dict(second) == dict(first)
    with pytest.raises(AssertionError, match="loaded the model"):
        # Without the permission there is no cached shortcut: the loader refuses (here: fails).
        measure(model, str(manifest), **options)
