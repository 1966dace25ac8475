"""Build tiny, randomly initialised model directories offline for the encoder tests.

CLIP (byte-level BPE tokenizer), SigLIP (Gemma byte-fallback tokenizer) and fake remote-code models.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

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


def clip_bpe_tokenizer(*, model_max_length: int = 16) -> Any:
    """A CLIPTokenizer over the byte-level alphabet with three merges (so "cat" is one token)."""
    from transformers import CLIPTokenizer

    alphabet = list(bytes_to_unicode().values())
    vocab = {char: index for index, char in enumerate(alphabet)}
    vocab.update({f"{char}</w>": len(alphabet) + index for index, char in enumerate(alphabet)})
    merges = [("a", "b</w>"), ("c", "a"), ("ca", "t</w>")]
    for left, right in merges:
        vocab[left + right] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    # The tokenizers backend wants merges as pairs, whatever CLIPTokenizer's annotation says.
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length)  # type: ignore[arg-type]


def build_clip_dir(directory: Path, *, seed: int = 0) -> Path:
    """A CLIPModel (~60k parameters) with a CLIP tokenizer and image processor, saved offline."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    tokenizer = clip_bpe_tokenizer(model_max_length=16)
    vocab = tokenizer.get_vocab()
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
"""Stand-ins for the remote code of jina-clip-v2 and jina-embeddings-v4, on tiny towers.

Each class mirrors the real file's public behaviour, read in those files (copies are public next
to the code that calls them; find_string "class JinaCLIPModel" / "class JinaEmbeddingsV4Model"):
signatures and defaults of encode_text / encode_image, task and prompt handling, truncation and
normalisation, what is returned, dtype on loading. The towers themselves are made up.
"""

import warnings

import numpy as np
import torch
import torch.nn.functional as f
from PIL import Image
from transformers import PretrainedConfig, PreTrainedModel

from tests.models.peft_stand_in import PeftModel

# modeling_jina_embeddings_v4.py: PREFIX_DICT
PREFIX_DICT = {"query": "Query", "passage": "Passage"}


class FakeJinaConfig(PretrainedConfig):
    """jina-clip-v2's JinaCLIPConfig (truncate_dim, matryoshka_dimensions) and
    jina-embeddings-v4's config.json (task_names, matryoshka_dims, truncate_dim, verbosity)."""

    model_type = "fake_jina"

    def __init__(self, dim=16, task_names=None, matryoshka_dims=None, matryoshka_dimensions=None,
                 truncate_dim=None, verbosity=1, task_instructions=None, **kwargs):
        self.dim = dim
        self.task_names = task_names
        self.matryoshka_dims = matryoshka_dims
        self.matryoshka_dimensions = matryoshka_dimensions
        self.truncate_dim = truncate_dim
        self.verbosity = verbosity
        self.task_instructions = task_instructions
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

    def _texts(self, texts, task=None):
        rows = []
        for text in texts:
            ids = torch.tensor(list(text.encode("utf-8"))[:64] or [0], device=self.device)
            rows.append(self.text_table(ids).mean(0) + self._shift(task))
        return torch.stack(rows)

    def _images(self, images, task=None):
        means = torch.tensor(
            np.stack([np.asarray(image, dtype=np.float32).mean((0, 1)) / 255 for image in images])
        )
        weight = self.image_proj.weight
        return self.image_proj(means.to(weight.device, weight.dtype)) + self._shift(task)


class FakeTextTower(torch.nn.Module):
    """jina-clip-v2's text tower, hf_model.py HFTextEncoder: task_instructions and
    get_instruction_from_task (None -> the default instruction; unknown -> ValueError; a tower
    without instructions warns and ignores any task)."""

    def __init__(self, task_instructions, default_instruction_task=None):
        super().__init__()
        self._task_instructions = dict(task_instructions or {})
        self._default_instruction = (
            self._task_instructions[default_instruction_task] if default_instruction_task else None
        )

    @property
    def task_instructions(self):
        return self._task_instructions

    def get_instruction_from_task(self, task):
        if self._task_instructions:
            if task is None:
                return self._default_instruction
            if task not in self._task_instructions:
                raise ValueError(
                    f"Unsupported task '{task}'. Choose one of the following: "
                    f"{', '.join(self._task_instructions)} or set to None to disable task "
                    f"instructions completely"
                )
            return self._task_instructions[task]
        if task is not None:
            warnings.warn(f"Model does not support task instructions, ignoring task '{task}'")
        return None


class FakeJinaClipV2Model(_Base):
    """jina-clip-v2, modeling_clip.py JinaCLIPModel."""

    def __init__(self, config):
        super().__init__(config)
        self.text_model = FakeTextTower(config.task_instructions)

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        # JinaCLIPPreTrainedModel.from_pretrained: the config's dtype unless the caller names one.
        if "torch_dtype" not in kwargs:
            kwargs["torch_dtype"] = "auto"
        return super().from_pretrained(*args, **kwargs)

    def _truncate_embeddings(self, embeddings, truncate_dim):
        # JinaCLIPModel._truncate_embeddings (warns when matryoshka_dimensions is empty)
        if not self.config.matryoshka_dimensions:
            warnings.warn("Model is not trained using Matryoshka Representation Learning")
        return embeddings[:, :truncate_dim]

    def _finish(self, all_embeddings, inverse, convert_to_tensor, convert_to_numpy, single):
        all_embeddings = [all_embeddings[index] for index in inverse]
        if convert_to_tensor:
            all_embeddings = torch.stack(all_embeddings)
        elif convert_to_numpy:
            all_embeddings = np.asarray([emb.to(torch.float32).numpy() for emb in all_embeddings])
        return all_embeddings[0] if single else all_embeddings

    @torch.inference_mode()
    def encode_text(self, sentences, task=None, batch_size=32, show_progress_bar=None,
                    convert_to_numpy=True, convert_to_tensor=False, device=None,
                    normalize_embeddings=True, truncate_dim=None, **tokenizer_kwargs):
        """JinaCLIPModel.encode_text"""
        self.calls.append(("text", dict(task=task, truncate_dim=truncate_dim,
                                        convert_to_tensor=convert_to_tensor, **tokenizer_kwargs)))
        if convert_to_tensor:
            convert_to_numpy = False
        single = isinstance(sentences, str) or not hasattr(sentences, "__len__")
        if single:
            sentences = [sentences]
        if device is not None:
            self.to(device)
        permutation = np.argsort([-len(sentence) for sentence in sentences])
        inverse = np.argsort(permutation)
        sentences = [sentences[index] for index in permutation]
        truncate_dim = truncate_dim or self.config.truncate_dim
        instruction = self.text_model.get_instruction_from_task(task)
        if instruction:
            sentences = [instruction + sentence for sentence in sentences]
        all_embeddings = []
        for start in range(0, len(sentences), batch_size):
            embeddings = self._texts(sentences[start : start + batch_size])
            if truncate_dim:
                embeddings = self._truncate_embeddings(embeddings, truncate_dim)
            if normalize_embeddings:
                embeddings = f.normalize(embeddings, p=2, dim=1)
            if convert_to_numpy:
                embeddings = embeddings.cpu()
            all_embeddings.extend(embeddings)
        return self._finish(all_embeddings, inverse, convert_to_tensor, convert_to_numpy, single)

    @torch.inference_mode()
    def encode_image(self, images, batch_size=32, show_progress_bar=None, convert_to_numpy=True,
                     convert_to_tensor=False, device=None, normalize_embeddings=True,
                     truncate_dim=None):
        """JinaCLIPModel.encode_image: PIL images (or paths / URLs) converted to RGB inside."""
        self.calls.append(("image", dict(truncate_dim=truncate_dim)))
        if convert_to_tensor:
            convert_to_numpy = False
        single = isinstance(images, str) or not hasattr(images, "__len__")
        if single:
            images = [images]
        if device is not None:
            self.to(device)
        permutation = np.argsort([-len(str(image)) for image in images])
        inverse = np.argsort(permutation)
        images = [images[index] for index in permutation]
        truncate_dim = truncate_dim or self.config.truncate_dim
        all_embeddings = []
        for start in range(0, len(images), batch_size):
            batch = []
            for image in images[start : start + batch_size]:
                if not isinstance(image, Image.Image):
                    raise ValueError("Unsupported image format")
                batch.append(image.convert("RGB"))
            embeddings = self._images(batch)
            if truncate_dim:
                embeddings = self._truncate_embeddings(embeddings, truncate_dim)
            if normalize_embeddings:
                embeddings = f.normalize(embeddings, p=2, dim=1)
            if convert_to_numpy:
                embeddings = embeddings.cpu()
            all_embeddings.extend(embeddings)
        return self._finish(all_embeddings, inverse, convert_to_tensor, convert_to_numpy, single)


class FakeJinaV4Model(_Base):
    """jina-embeddings-v4, modeling_jina_embeddings_v4.py JinaEmbeddingsV4Model."""

    def __init__(self, config):
        super().__init__(config)
        self.verbosity = config.verbosity
        self._task = None
        self.progress_bars = 0
        self.prefixes = []

    @property
    def task(self):
        return self._task

    @task.setter
    def task(self, task):
        if task not in self.config.task_names:
            raise ValueError(f"Invalid task: {task}. Must be one of {self.config.task_names}.")
        self._task = task

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """JinaEmbeddingsV4Model.from_pretrained: dtype "auto" unless named, LoRA adapters loaded
        through peft, and the PeftModel returned, with a task property patched onto its class."""
        if "torch_dtype" not in kwargs:
            kwargs["torch_dtype"] = "auto"
        base_model = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        peft_model = PeftModel.from_pretrained(model=base_model, model_id="adapters", config=None)

        def task_getter(self):
            return self.model.task

        def task_setter(self, value):
            self.model.task = value

        peft_model.__class__.task = property(task_getter, task_setter)
        return peft_model

    def _validate_encoding_params(self, truncate_dim=None, prompt_name=None):
        encode_kwargs = {}
        if prompt_name is not None:
            if prompt_name not in PREFIX_DICT:
                raise ValueError(
                    f"Invalid prompt_name: {prompt_name}. Must be one of {list(PREFIX_DICT.keys())}."
                )
            # The model's task property, not the task argument, picks the text-matching prefix.
            encode_kwargs["prefix"] = (
                PREFIX_DICT[prompt_name] if self.task != "text-matching" else PREFIX_DICT["query"]
            )
        truncate_dim = truncate_dim or self.config.truncate_dim
        if truncate_dim is not None and truncate_dim not in self.config.matryoshka_dims:
            raise ValueError(
                f"Invalid truncate_dim: {truncate_dim}. Must be one of {self.config.matryoshka_dims}."
            )
        encode_kwargs["truncate_dim"] = truncate_dim
        return encode_kwargs

    def _validate_task(self, task=None):
        if task is None:
            if self.task is None:
                raise ValueError("Task must be specified before encoding data.")
            return self.task
        if task not in self.config.task_names:
            raise ValueError(f"Invalid task: {task}. Must be one of {self.config.task_names}.")
        return task

    def _process_batches(self, data, task_label, embed, return_multivector=False,
                         return_numpy=False, batch_size=32, truncate_dim=None):
        """JinaEmbeddingsV4Model._process_batches: tqdm unless verbosity == 0, bfloat16 autocast,
        L2-normalised single vectors, truncated then normalised again; a list of 1-D tensors
        left on the model's device, or one numpy array."""
        results = []
        self.eval()
        if self.verbosity != 0:
            self.progress_bars += 1
        for start in range(0, len(data), batch_size):
            with torch.no_grad():
                with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16):
                    embeddings = f.normalize(embed(data[start : start + batch_size], task_label), dim=-1)
                    if truncate_dim is not None:
                        embeddings = embeddings[:, :truncate_dim]
                        embeddings = f.normalize(embeddings, p=2, dim=-1)
                    results.append(embeddings.cpu() if return_numpy else list(torch.unbind(embeddings)))
        if return_numpy:
            return np.concatenate([result.numpy() for result in results], axis=0)
        return [item for sublist in results for item in sublist]

    def encode_text(self, texts, task=None, max_length=32768, batch_size=8,
                    return_multivector=False, return_numpy=False, truncate_dim=None,
                    prompt_name=None):
        """JinaEmbeddingsV4Model.encode_text: prompt_name defaults to "query"."""
        self.calls.append(("text", dict(task=task, truncate_dim=truncate_dim,
                                        prompt_name=prompt_name, batch_size=batch_size)))
        prompt_name = prompt_name or "query"
        encode_kwargs = self._validate_encoding_params(truncate_dim=truncate_dim, prompt_name=prompt_name)
        task = self._validate_task(task)
        prefix = encode_kwargs.pop("prefix")
        self.prefixes.append(prefix)
        return_list = isinstance(texts, list)
        if isinstance(texts, str):
            texts = [texts]
        prefixed = [f"{prefix}: {text}" for text in texts]
        embeddings = self._process_batches(prefixed, task, self._texts, return_numpy=return_numpy,
                                           batch_size=batch_size, **encode_kwargs)
        return embeddings if return_list else embeddings[0]

    def encode_image(self, images, task=None, batch_size=8, return_multivector=False,
                     return_numpy=False, truncate_dim=None, max_pixels=None):
        """JinaEmbeddingsV4Model.encode_image: PIL images are passed on as they are (only paths
        and URLs are opened and converted to RGB)."""
        self.calls.append(("image", dict(task=task, truncate_dim=truncate_dim,
                                         batch_size=batch_size)))
        encode_kwargs = self._validate_encoding_params(truncate_dim=truncate_dim)
        task = self._validate_task(task)
        return_list = isinstance(images, list)
        if isinstance(images, Image.Image):
            images = [images]
        embeddings = self._process_batches(images, task, self._images, return_numpy=return_numpy,
                                           batch_size=batch_size, **encode_kwargs)
        return embeddings if return_list else embeddings[0]


class FakeTextOnlyModel(_Base):
    """Remote code with a text tower only."""

    def encode_text(self, texts, task=None):
        return self._texts(texts, task)
'''

_FLAVOURS: dict[str, tuple[str, dict[str, object]]] = {
    # jina-embeddings-v4's config.json: its three LoRA tasks and Matryoshka sizes (128 ... 2048
    # there, scaled down to the tiny towers here).
    "v4": (
        "FakeJinaV4Model",
        {
            "task_names": ["retrieval", "text-matching", "code"],
            "matryoshka_dims": [4, 8, CLIP_DIM],
            "truncate_dim": None,
            "verbosity": 1,
        },
    ),
    # jina-clip-v2's config: no task list; its text tower has one instruction task.
    "v2": (
        "FakeJinaClipV2Model",
        {
            "matryoshka_dimensions": [4, 8, CLIP_DIM],
            "truncate_dim": None,
            "task_instructions": {
                "retrieval.query": "Represent the query for retrieving evidence documents: "
            },
        },
    ),
    "text-only": ("FakeTextOnlyModel", {}),
}


def build_remote_dir(directory: Path, flavour: str, *, seed: int = 0) -> Path:
    """A local directory whose config.json auto_map points at a fake jina modeling file.

    ``flavour`` is "v4" (jina-embeddings-v4), "v2" (jina-clip-v2) or "text-only" (no
    encode_image). The weights are built by importing the same file directly. config.json names
    bfloat16 as the checkpoint dtype, as both real models' configs do, so a load that does not pass
    its dtype gets bfloat16 (their from_pretrained defaults to "auto").
    """
    from safetensors.torch import save_file

    class_name, settings = _FLAVOURS[flavour]
    directory.mkdir(parents=True, exist_ok=True)
    code_path = directory / "modeling_fake_jina.py"
    code_path.write_text(textwrap.dedent(_FAKE_REMOTE_CODE))
    module_name = f"fake_jina_{abs(hash(str(directory)))}"
    spec = importlib.util.spec_from_file_location(module_name, code_path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    config = module.FakeJinaConfig(dim=CLIP_DIM, **settings)
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
        "torch_dtype": "bfloat16",
        **settings,
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
