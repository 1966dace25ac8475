"""Tiny, randomly initialised transformers dual encoders of every family pytest-modgap loads.

Each builder writes a model directory the way the family's public checkpoints are laid out (the
model's own config class, image processor and tokenizer, saved with ``save_pretrained``), with
hidden size 32, one or two layers and 32-pixel images, so that a test builds, loads and embeds it in
about a second, offline. Tokenizers that ship a SentencePiece model are trained on ``CORPUS``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tests.models.tiny_models import build_clip_dir, build_siglip_dir, clip_bpe_tokenizer

TEXT_LENGTH = 16
"""Text tower positions and tokenizer limit of every tiny model (CLIP-style towers)."""

CORPUS = [
    "a photo of a cat",
    "a photo of a dog on a mat",
    "two birds in the blue sky",
    "the quick brown fox jumps over the lazy dog",
    "a red car parked near a green tree",
    "一只猫在垫子上",
    "海滩上美丽的日落",
]
"""Text the SentencePiece tokenizers are trained on (English and Chinese, as the models are)."""

_TOWER = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
}
_VISION = {**_TOWER, "image_size": 32, "patch_size": 8}


@dataclass(frozen=True)
class Family:
    """How to build one family and how its model card embeds texts with plain transformers."""

    name: str
    build: Callable[[Path], Path]
    text_padding: str | bool = True
    """What the family's model card passes as ``padding`` (SigLIP-style towers: "max_length")."""
    model_class: str | None = None
    """The transformers class the reference loads; None: whatever AutoModel gives."""
    pixel_recipe: bool = True
    """Whether the image processor is a fixed resize / crop / normalise (a tensor path exists)."""


def train_sentencepiece(*, vocab_size: int = 96) -> bytes:
    """A unigram SentencePiece model trained on ``CORPUS`` in a few milliseconds."""
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 20),
        model_writer=model,
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    return model.getvalue()


def xlm_roberta_tokenizer(directory: Path) -> Any:
    """An XLMRobertaTokenizer (AltCLIP, MetaCLIP 2) whose pieces come from a trained SentencePiece
    model, with XLM-R's fairseq special-token layout: <s>=0, <pad>=1, </s>=2, <unk>=3."""
    import sentencepiece as spm
    from transformers import XLMRobertaTokenizer

    processor = spm.SentencePieceProcessor(model_proto=train_sentencepiece())
    pieces = [
        (processor.id_to_piece(i), processor.get_score(i))
        for i in range(processor.get_piece_size())
        if not processor.is_control(i) and not processor.is_unknown(i)
    ]
    vocab = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), *pieces, ("<mask>", 0.0)]
    return XLMRobertaTokenizer(vocab=vocab, model_max_length=TEXT_LENGTH)


def bert_tokenizer(*, model_max_length: int = TEXT_LENGTH) -> Any:
    """A WordPiece BertTokenizer over letters, a few words and the Chinese characters of CORPUS."""
    from transformers import BertTokenizer

    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens += sorted({char for text in CORPUS for char in text if not char.isspace()})
    tokens += [f"##{char}" for char in "abcdefghijklmnopqrstuvwxyz"]
    tokens += ["a", "photo", "of", "cat", "dog", "the", "##s", "!"]
    vocab = {token: index for index, token in enumerate(dict.fromkeys(tokens))}
    return BertTokenizer(vocab=vocab, model_max_length=model_max_length)


def _save(directory: Path, model: Any, processor: Any) -> Path:
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


def _clip_image_processor() -> Any:
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})


def build_siglip_v1_dir(directory: Path) -> Path:
    """SigLIP (v1): SiglipModel with the SentencePiece SiglipTokenizer and fixed 64-token padding."""
    from transformers import (
        SiglipConfig,
        SiglipImageProcessor,
        SiglipModel,
        SiglipProcessor,
        SiglipTokenizer,
    )

    spm_file = directory / "spiece.model"
    directory.mkdir(parents=True, exist_ok=True)
    spm_file.write_bytes(train_sentencepiece())
    tokenizer = SiglipTokenizer(str(spm_file), model_max_length=TEXT_LENGTH)
    spm_file.unlink()
    config = SiglipConfig(
        text_config={
            **_TOWER,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": TEXT_LENGTH,
            "pad_token_id": tokenizer.pad_token_id,
            "eos_token_id": tokenizer.eos_token_id,
        },
        vision_config=_VISION,
    )
    torch.manual_seed(1)
    processor = SiglipProcessor(  # type: ignore[no-untyped-call]
        image_processor=SiglipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tokenizer
    )
    return _save(directory, SiglipModel(config), processor)


def build_siglip2_naflex_dir(directory: Path) -> Path:
    """SigLIP 2 NaFlex: Siglip2Model, whose image processor picks a patch grid per aspect ratio."""
    from transformers import (
        GemmaTokenizer,
        Siglip2Config,
        Siglip2ImageProcessor,
        Siglip2Model,
        Siglip2Processor,
    )

    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<mask>": 4}
    vocab.update({f"<0x{byte:02X}>": 5 + byte for byte in range(256)})
    for char in "abcdefghijklmnopqrstuvwxyz▁":
        vocab[char] = len(vocab)
    # Siglip2Processor pads and truncates texts to 64 tokens by default, as the models were trained.
    tokenizer = GemmaTokenizer(vocab=vocab, model_max_length=64)
    config = Siglip2Config(
        text_config={
            **_TOWER,
            "vocab_size": len(vocab),
            "max_position_embeddings": 64,
            "pad_token_id": 0,
            "eos_token_id": 1,
            "bos_token_id": 2,
        },
        # Patch size and budget as google/siglip2-*-naflex ship them: Siglip2Processor(images=...)
        # applies its own defaults (16, 256) over whatever the saved image processor says.
        vision_config={**_TOWER, "patch_size": 16, "num_patches": 256},
    )
    torch.manual_seed(2)
    image_processor = Siglip2ImageProcessor(patch_size=16, max_num_patches=256)
    processor = Siglip2Processor(  # type: ignore[no-untyped-call]
        image_processor=image_processor, tokenizer=tokenizer
    )
    return _save(directory, Siglip2Model(config), processor)


def build_align_dir(directory: Path) -> Path:
    """ALIGN: EfficientNet image tower (its processor rescales to [-1, 1]) and a BERT text tower."""
    from transformers import AlignConfig, AlignModel, AlignProcessor, EfficientNetImageProcessor

    # A BERT tokenizer and tower that take 512 and 128 tokens, while AlignProcessor pads and cuts
    # texts to 64 by default (its text_kwargs): the processor's default decides.
    tokenizer = bert_tokenizer(model_max_length=512)
    config = AlignConfig(
        text_config={
            **_TOWER,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": 128,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "image_size": 32,
            "width_coefficient": 0.1,
            "depth_coefficient": 0.1,
            "hidden_dim": 64,
        },
        # ALIGN projects only the text: its projection matches the EfficientNet's pooled width.
        projection_dim=32,
    )
    # kakaobrain/align-base's recipe: resize, center crop, x / 127.5 - 1, no mean / std.
    image_processor = EfficientNetImageProcessor(
        size={"height": 40, "width": 40},
        crop_size={"height": 32, "width": 32},
        do_center_crop=True,
        rescale_factor=1 / 127.5,
        rescale_offset=True,
        do_normalize=False,
        include_top=False,
    )
    torch.manual_seed(3)
    model = AlignModel(config)
    pooled = model.eval().vision_model(pixel_values=torch.zeros(1, 3, 32, 32)).pooler_output
    assert pooled.shape[-1] == config.projection_dim, pooled.shape
    processor = AlignProcessor(image_processor=image_processor, tokenizer=tokenizer)
    return _save(directory, model, processor)


def build_altclip_dir(directory: Path) -> Path:
    """AltCLIP: CLIP vision tower, XLM-R text tower with an XLM-R SentencePiece tokenizer."""
    from transformers import AltCLIPConfig, AltCLIPModel, AltCLIPProcessor

    tokenizer = xlm_roberta_tokenizer(directory)
    config = AltCLIPConfig(
        text_config={
            **_TOWER,
            "vocab_size": len(tokenizer),
            # RoBERTa positions start after the padding index: 2 + 16 tokens.
            "max_position_embeddings": TEXT_LENGTH + 2,
            "pad_token_id": tokenizer.pad_token_id,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "project_dim": 16,
        },
        vision_config=_VISION,
        projection_dim=16,
    )
    torch.manual_seed(4)
    processor = AltCLIPProcessor(image_processor=_clip_image_processor(), tokenizer=tokenizer)
    return _save(directory, AltCLIPModel(config), processor)


def build_chinese_clip_dir(directory: Path) -> Path:
    """Chinese-CLIP: CLIP vision tower, Chinese BERT text tower (CLS pooling)."""
    from transformers import (
        ChineseCLIPConfig,
        ChineseCLIPImageProcessor,
        ChineseCLIPModel,
        ChineseCLIPProcessor,
    )

    tokenizer = bert_tokenizer()
    config = ChineseCLIPConfig(
        text_config={
            **_TOWER,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": TEXT_LENGTH,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config=_VISION,
        projection_dim=16,
    )
    image_processor = ChineseCLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    torch.manual_seed(5)
    processor = ChineseCLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)
    return _save(directory, ChineseCLIPModel(config), processor)


def _blip_config_and_processor() -> tuple[Any, Any]:
    from transformers import BlipConfig, BlipImageProcessor, BlipProcessor

    tokenizer = bert_tokenizer()
    config = BlipConfig(
        text_config={
            **_TOWER,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": TEXT_LENGTH,
            "encoder_hidden_size": 32,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config=_VISION,
        projection_dim=16,
        image_text_hidden_size=16,
    )
    image_processor = BlipImageProcessor(size={"height": 32, "width": 32})
    return config, BlipProcessor(image_processor=image_processor, tokenizer=tokenizer)


def build_blip_dir(directory: Path) -> Path:
    """BLIP as BlipModel: get_image_features / get_text_features through its projection heads."""
    from transformers import BlipModel

    config, processor = _blip_config_and_processor()
    torch.manual_seed(6)
    return _save(directory, BlipModel(config), processor)


def build_blip_retrieval_dir(directory: Path) -> Path:
    """BLIP as Salesforce/blip-itm-* ship it: BlipForImageTextRetrieval, whose contrastive (ITC)
    heads are ``vision_proj`` / ``text_proj`` on the CLS tokens, not get_*_features."""
    from transformers import BlipForImageTextRetrieval

    config, processor = _blip_config_and_processor()
    config.architectures = ["BlipForImageTextRetrieval"]
    torch.manual_seed(7)
    return _save(directory, BlipForImageTextRetrieval(config), processor)


def _clip_like(
    config_class: Any, model_class: Any, seed: int, **config: Any
) -> Callable[[Path], Path]:
    """A builder for the families that reuse CLIP's tokenizer and image processor."""

    def build(directory: Path) -> Path:
        from transformers import CLIPProcessor

        tokenizer = clip_bpe_tokenizer(model_max_length=TEXT_LENGTH)
        text = {
            **_TOWER,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": TEXT_LENGTH,
            "eos_token_id": tokenizer.eos_token_id,
            "bos_token_id": tokenizer.bos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
            **config.pop("text_config", {}),
        }
        vision = {**_VISION, **config.pop("vision_config", {})}
        torch.manual_seed(seed)
        model = model_class(config_class(text_config=text, vision_config=vision, **config))
        processor = CLIPProcessor(  # type: ignore[no-untyped-call]
            image_processor=_clip_image_processor(), tokenizer=tokenizer
        )
        return _save(directory, model, processor)

    return build


def build_metaclip2_dir(directory: Path) -> Path:
    """MetaCLIP 2: a CLIP architecture with the XLM-R multilingual tokenizer."""
    from transformers import CLIPProcessor, MetaClip2Config, MetaClip2Model

    tokenizer = xlm_roberta_tokenizer(directory)
    config = MetaClip2Config(
        text_config={
            **_TOWER,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": TEXT_LENGTH,
            "pad_token_id": tokenizer.pad_token_id,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
        },
        vision_config=_VISION,
        projection_dim=16,
    )
    torch.manual_seed(8)
    processor = CLIPProcessor(  # type: ignore[no-untyped-call]
        image_processor=_clip_image_processor(), tokenizer=tokenizer
    )
    return _save(directory, MetaClip2Model(config), processor)


def build_owlvit_dir(directory: Path) -> Path:
    """OWL-ViT: CLIP-style towers; its processor resizes to a square without cropping."""
    from transformers import OwlViTConfig, OwlViTImageProcessor, OwlViTModel, OwlViTProcessor

    tokenizer = clip_bpe_tokenizer(model_max_length=TEXT_LENGTH)
    config = OwlViTConfig(
        text_config={
            **_TOWER,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": TEXT_LENGTH,
            "eos_token_id": tokenizer.eos_token_id,
            "bos_token_id": tokenizer.bos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config=_VISION,
        projection_dim=16,
    )
    image_processor = OwlViTImageProcessor(
        size={"height": 32, "width": 32}, crop_size={"height": 32, "width": 32}
    )
    torch.manual_seed(9)
    processor = OwlViTProcessor(image_processor=image_processor, tokenizer=tokenizer)
    return _save(directory, OwlViTModel(config), processor)


def build_owlv2_dir(directory: Path) -> Path:
    """OWLv2: OWL-ViT towers; its processor pads every image to a square first (no fixed recipe)."""
    from transformers import Owlv2Config, Owlv2ImageProcessor, Owlv2Model, Owlv2Processor

    tokenizer = clip_bpe_tokenizer(model_max_length=TEXT_LENGTH)
    config = Owlv2Config(
        text_config={
            **_TOWER,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": TEXT_LENGTH,
            "eos_token_id": tokenizer.eos_token_id,
            "bos_token_id": tokenizer.bos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config=_VISION,
        projection_dim=16,
    )
    torch.manual_seed(10)
    processor = Owlv2Processor(
        image_processor=Owlv2ImageProcessor(size={"height": 32, "width": 32}), tokenizer=tokenizer
    )
    return _save(directory, Owlv2Model(config), processor)


def build_clipseg_dir(directory: Path) -> Path:
    """CLIPSeg: CLIP towers; its processor is a ViTImageProcessor (square resize, no crop)."""
    from transformers import CLIPSegConfig, CLIPSegModel, CLIPSegProcessor, ViTImageProcessor

    tokenizer = clip_bpe_tokenizer(model_max_length=TEXT_LENGTH)
    config = CLIPSegConfig(
        text_config={
            **_TOWER,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": TEXT_LENGTH,
            "eos_token_id": tokenizer.eos_token_id,
            "bos_token_id": tokenizer.bos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config=_VISION,
        projection_dim=16,
        reduce_dim=16,
        extract_layers=[1],
    )
    image_processor = ViTImageProcessor(
        size={"height": 32, "width": 32},
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    )
    torch.manual_seed(11)
    processor = CLIPSegProcessor(image_processor=image_processor, tokenizer=tokenizer)
    return _save(directory, CLIPSegModel(config), processor)


def build_flava_dir(directory: Path) -> Path:
    """FLAVA: its get_*_features project every token; the contrastive embedding is the CLS row."""
    from transformers import FlavaConfig, FlavaImageProcessor, FlavaModel, FlavaProcessor

    tokenizer = bert_tokenizer()
    config = FlavaConfig(
        image_config={**_VISION, "qkv_bias": True},
        text_config={
            **_TOWER,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": TEXT_LENGTH,
            "pad_token_id": tokenizer.pad_token_id,
            "qkv_bias": True,
        },
        multimodal_config={**_TOWER, "num_hidden_layers": 1, "qkv_bias": True},
        hidden_size=32,
        projection_dim=16,
    )
    image_processor = FlavaImageProcessor(
        size={"height": 32, "width": 32}, crop_size={"height": 32, "width": 32}
    )
    torch.manual_seed(12)
    processor = FlavaProcessor(image_processor=image_processor, tokenizer=tokenizer)
    return _save(directory, FlavaModel(config), processor)


def build_vision_text_dual_encoder_dir(directory: Path) -> Path:
    """VisionTextDualEncoder (clip-italian style): any vision model plus any text model."""
    from transformers import (
        BertConfig,
        VisionTextDualEncoderConfig,
        VisionTextDualEncoderModel,
        VisionTextDualEncoderProcessor,
        ViTConfig,
        ViTImageProcessor,
    )

    tokenizer = bert_tokenizer()
    config = VisionTextDualEncoderConfig.from_vision_text_configs(
        ViTConfig(**_VISION),
        BertConfig(
            **_TOWER,
            vocab_size=len(tokenizer),
            max_position_embeddings=TEXT_LENGTH,
            pad_token_id=tokenizer.pad_token_id,
        ),
        projection_dim=16,
    )
    torch.manual_seed(13)
    processor = VisionTextDualEncoderProcessor(
        image_processor=ViTImageProcessor(size={"height": 32, "width": 32}), tokenizer=tokenizer
    )
    return _save(directory, VisionTextDualEncoderModel(config), processor)


def build_dual_encoder_convnext_dir(directory: Path) -> Path:
    """VisionTextDualEncoder with a ConvNeXt image processor, whose crop_pct (resize to
    shortest_edge / crop_pct, then crop) no fixed-recipe reader may guess: processor path only."""
    from transformers import (
        BertConfig,
        ConvNextImageProcessor,
        VisionTextDualEncoderConfig,
        VisionTextDualEncoderModel,
        VisionTextDualEncoderProcessor,
        ViTConfig,
    )

    tokenizer = bert_tokenizer()
    config = VisionTextDualEncoderConfig.from_vision_text_configs(
        ViTConfig(**_VISION),
        BertConfig(
            **_TOWER,
            vocab_size=len(tokenizer),
            max_position_embeddings=TEXT_LENGTH,
            pad_token_id=tokenizer.pad_token_id,
        ),
        projection_dim=16,
    )
    image_processor = ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=0.875)
    torch.manual_seed(16)
    processor = VisionTextDualEncoderProcessor(image_processor=image_processor, tokenizer=tokenizer)
    return _save(directory, VisionTextDualEncoderModel(config), processor)


def _aimv2(directory: Path) -> Path:
    from transformers import Aimv2Config, Aimv2Model

    return _clip_like(
        Aimv2Config,
        Aimv2Model,
        14,
        projection_dim=16,
        text_config={"num_attention_heads": 2},
        vision_config={"num_attention_heads": 2},
    )(directory)


def _groupvit(directory: Path) -> Path:
    from transformers import GroupViTConfig, GroupViTModel

    return _clip_like(
        GroupViTConfig,
        GroupViTModel,
        15,
        projection_dim=16,
        projection_intermediate_dim=32,
        vision_config={
            "num_hidden_layers": 2,
            "depths": [1, 1],
            "num_group_tokens": [4, 0],
            "num_output_groups": [4, 2],
        },
    )(directory)


def _clip(directory: Path) -> Path:
    return build_clip_dir(directory)


def _siglip2_fixed(directory: Path) -> Path:
    return build_siglip_dir(directory)


FAMILIES = [
    Family("clip", _clip),
    Family("siglip", build_siglip_v1_dir, text_padding="max_length"),
    Family("siglip2", _siglip2_fixed, text_padding="max_length"),
    Family(
        "siglip2-naflex", build_siglip2_naflex_dir, text_padding="max_length", pixel_recipe=False
    ),
    Family("align", build_align_dir),
    Family("altclip", build_altclip_dir),
    Family("chinese-clip", build_chinese_clip_dir),
    Family("blip", build_blip_dir),
    Family("blip-itm", build_blip_retrieval_dir, model_class="BlipForImageTextRetrieval"),
    Family("metaclip-2", build_metaclip2_dir),
    Family("aimv2", _aimv2),
    Family("groupvit", _groupvit),
    Family("owlvit", build_owlvit_dir, text_padding="max_length"),
    Family("owlv2", build_owlv2_dir, text_padding="max_length", pixel_recipe=False),
    Family("clipseg", build_clipseg_dir),
    Family("flava", build_flava_dir),
    Family("vision-text-dual-encoder", build_vision_text_dual_encoder_dir),
    Family("dual-encoder-convnext", build_dual_encoder_convnext_dir, pixel_recipe=False),
]
"""Every transformers family with get_image_features / get_text_features (or, for BLIP retrieval
checkpoints, contrastive heads) that transformers can run without torchvision."""
