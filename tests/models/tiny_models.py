"""Build tiny, randomly initialised model directories offline for the encoder tests.

CLIP (byte-level BPE tokenizer), SigLIP (Gemma byte-fallback tokenizer) and fake remote-code models.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import torch
from PIL import Image

CLIP_DIM = 16
SIGLIP_TEXT_LENGTH = 12


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2 / CLIP byte-level alphabet: each byte gets a printable unicode character."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, codes), strict=True))


def build_clip_dir(directory: Path, *, seed: int = 0) -> Path:
    """A CLIPModel (~60k parameters) with a CLIP tokenizer and image processor, saved offline."""
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
        CLIPTokenizer,
    )

    alphabet = list(bytes_to_unicode().values())
    vocab = {char: index for index, char in enumerate(alphabet)}
    vocab.update({f"{char}</w>": len(alphabet) + index for index, char in enumerate(alphabet)})
    merges = [("a", "b</w>"), ("c", "a"), ("ca", "t</w>")]
    for left, right in merges:
        vocab[left + right] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    # The tokenizers backend wants merges as pairs, whatever CLIPTokenizer's annotation says.
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=16)  # type: ignore[arg-type]
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    config = CLIPConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
            "bos_token_id": vocab["<|startoftext|>"],
            "eos_token_id": vocab["<|endoftext|>"],
            "pad_token_id": vocab["<|endoftext|>"],
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=CLIP_DIM,
    )
    torch.manual_seed(seed)
    CLIPModel(config).save_pretrained(directory)
    processor = CLIPProcessor(  # type: ignore[no-untyped-call]
        image_processor=image_processor, tokenizer=tokenizer
    )
    processor.save_pretrained(directory)
    return directory


def build_siglip_dir(directory: Path, *, seed: int = 0) -> Path:
    """A SiglipModel with a Gemma byte-fallback tokenizer (as SigLIP 2 fixed-resolution ships)."""
    from transformers import (
        GemmaTokenizer,
        SiglipConfig,
        SiglipImageProcessor,
        SiglipModel,
        SiglipProcessor,
    )

    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<mask>": 4}
    vocab.update({f"<0x{byte:02X}>": 5 + byte for byte in range(256)})
    for char in "abcdefghijklmnopqrstuvwxyz▁":
        vocab[char] = len(vocab)
    tokenizer = GemmaTokenizer(vocab=vocab, model_max_length=SIGLIP_TEXT_LENGTH)
    image_processor = SiglipImageProcessor(size={"height": 32, "width": 32})
    config = SiglipConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": SIGLIP_TEXT_LENGTH,
            "pad_token_id": 0,
            "eos_token_id": 1,
            "bos_token_id": 2,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
    )
    torch.manual_seed(seed)
    SiglipModel(config).save_pretrained(directory)
    processor = SiglipProcessor(  # type: ignore[no-untyped-call]
        image_processor=image_processor, tokenizer=tokenizer
    )
    processor.save_pretrained(directory)
    return directory


def build_bert_dir(directory: Path) -> Path:
    """A text-only BertModel: a transformers model with no image tower."""
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    )
    BertModel(config).save_pretrained(directory)
    return directory


_FAKE_REMOTE_CODE = '''
"""A stand-in for jina remote code: same method names and keywords, tiny deterministic towers."""

import numpy as np
import torch
from transformers import PretrainedConfig, PreTrainedModel


class FakeJinaConfig(PretrainedConfig):
    model_type = "fake_jina"

    def __init__(self, dim=16, task_names=None, **kwargs):
        self.dim = dim
        self.task_names = task_names
        super().__init__(**kwargs)


class _Base(PreTrainedModel):
    config_class = FakeJinaConfig

    def __init__(self, config):
        super().__init__(config)
        self.image_proj = torch.nn.Linear(3, config.dim)
        self.text_table = torch.nn.Embedding(256, config.dim)
        self.task_shift = torch.nn.Embedding(4, config.dim)
        self.calls = []
        self.post_init()

    def _init_weights(self, module):
        pass

    def _shift(self, task):
        names = self.config.task_names or []
        index = names.index(task) + 1 if task in names else 0
        return self.task_shift.weight[index]

    def _texts(self, texts, task):
        rows = []
        for text in texts:
            ids = torch.tensor(list(text.encode("utf-8"))[:64] or [0])
            rows.append(self.text_table(ids).mean(0) + self._shift(task))
        return torch.stack(rows)

    def _images(self, images, task):
        means = torch.tensor(
            np.stack([np.asarray(image, dtype=np.float32).mean((0, 1)) / 255 for image in images])
        )
        return self.image_proj(means.to(self.image_proj.weight.dtype)) + self._shift(task)


class FakeJinaV4Model(_Base):
    """encode_* like jina-embeddings-v4: task, truncate_dim, prompt_name; lists of tensors."""

    def encode_text(self, texts, task=None, max_length=32768, batch_size=8,
                    return_multivector=False, return_numpy=False, truncate_dim=None,
                    prompt_name=None):
        if task not in (self.config.task_names or []):
            raise ValueError(f"Invalid task {task}")
        self.calls.append(("text", dict(task=task, truncate_dim=truncate_dim,
                                        prompt_name=prompt_name, batch_size=batch_size)))
        prefix = {"query": "Query: ", "passage": "Passage: "}.get(prompt_name, "")
        out = self._texts([prefix + text for text in texts], task)[:, :truncate_dim]
        return [row for row in out]

    def encode_image(self, images, task=None, batch_size=8, return_multivector=False,
                     return_numpy=False, truncate_dim=None, max_pixels=None):
        if task not in (self.config.task_names or []):
            raise ValueError(f"Invalid task {task}")
        self.calls.append(("image", dict(task=task, truncate_dim=truncate_dim,
                                         batch_size=batch_size)))
        return [row for row in self._images(images, task)[:, :truncate_dim]]


class FakeJinaClipV2Model(_Base):
    """encode_* like jina-clip-v2: numpy by default, convert_to_tensor, truncate_dim."""

    def encode_text(self, sentences, task=None, batch_size=32, show_progress_bar=None,
                    convert_to_numpy=True, convert_to_tensor=False, device=None,
                    normalize_embeddings=True, truncate_dim=None, **tokenizer_kwargs):
        self.calls.append(("text", dict(task=task, truncate_dim=truncate_dim,
                                        convert_to_tensor=convert_to_tensor, **tokenizer_kwargs)))
        out = self._texts(sentences, task)[:, :truncate_dim]
        return out if convert_to_tensor else out.detach().numpy()

    def encode_image(self, images, batch_size=32, show_progress_bar=None, convert_to_numpy=True,
                     convert_to_tensor=False, device=None, normalize_embeddings=True,
                     truncate_dim=None):
        self.calls.append(("image", dict(truncate_dim=truncate_dim)))
        out = self._images(images, None)[:, :truncate_dim]
        return out if convert_to_tensor else out.detach().numpy()


class FakeTextOnlyModel(_Base):
    """Remote code with a text tower only."""

    def encode_text(self, texts, task=None):
        return self._texts(texts, task)
'''

_FLAVOURS = {
    "v4": ("FakeJinaV4Model", ["retrieval", "text-matching", "code"]),
    "v2": ("FakeJinaClipV2Model", None),
    "text-only": ("FakeTextOnlyModel", None),
}


def build_remote_dir(directory: Path, flavour: str, *, seed: int = 0) -> Path:
    """A local directory whose config.json auto_map points at a fake jina modeling file.

    ``flavour`` is "v4" (jina-embeddings-v4 keywords), "v2" (jina-clip-v2 keywords) or
    "text-only" (no encode_image). The weights are built by importing the same file directly.
    """
    from safetensors.torch import save_file

    class_name, task_names = _FLAVOURS[flavour]
    directory.mkdir(parents=True, exist_ok=True)
    code_path = directory / "modeling_fake_jina.py"
    code_path.write_text(textwrap.dedent(_FAKE_REMOTE_CODE))
    module_name = f"fake_jina_{abs(hash(str(directory)))}"
    spec = importlib.util.spec_from_file_location(module_name, code_path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    config = module.FakeJinaConfig(dim=CLIP_DIM, task_names=task_names)
    torch.manual_seed(seed)
    model = getattr(module, class_name)(config)
    save_file(
        {name: tensor.contiguous() for name, tensor in model.state_dict().items()},
        str(directory / "model.safetensors"),
        metadata={"format": "pt"},
    )
    config_dict = {
        "model_type": "fake_jina",
        "architectures": [class_name],
        "auto_map": {
            "AutoConfig": "modeling_fake_jina.FakeJinaConfig",
            "AutoModel": f"modeling_fake_jina.{class_name}",
        },
        "dim": CLIP_DIM,
        "task_names": task_names,
    }
    (directory / "config.json").write_text(json.dumps(config_dict, indent=2))
    return directory


def sample_images(count: int, *, seed: int = 0) -> list[Image.Image]:
    """Random RGB images of assorted sizes (so resizing and cropping matter)."""
    rng = np.random.default_rng(seed)
    sizes = [(40, 50), (32, 32), (64, 48), (33, 71)]
    return [
        Image.fromarray(rng.integers(0, 256, (*sizes[i % len(sizes)], 3), dtype=np.uint8))
        for i in range(count)
    ]
