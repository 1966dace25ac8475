"""A stand-in for the part of ``peft`` that jina-embeddings-v4's ``from_pretrained`` touches.

jina-embeddings-v4's ``JinaEmbeddingsV4Model.from_pretrained`` (modeling_jina_embeddings_v4.py)
ends with ``PeftModel.from_pretrained(model=base_model, model_id=adapter_dir, config=lora_config)``
and returns that PeftModel, after patching a ``task`` property onto its class. So the object
transformers hands back is a peft class defined outside the model's own code. Mirrored here from
huggingface/peft: ``PeftModel.get_base_model`` and ``PeftModel.__getattr__`` (src/peft/peft_model.py;
unknown attributes go to ``self.base_model``) and ``BaseTuner.__getattr__`` (src/peft/tuners/
tuners_utils.py; the tuner forwards to ``self.model``, the wrapped transformers model).
"""

from __future__ import annotations

from typing import Any

import torch


class LoraModel(torch.nn.Module):
    """peft's tuner layer: holds the wrapped model as ``model`` and forwards attributes to it."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.model, name)


class PeftModel(torch.nn.Module):
    """peft's wrapper: ``base_model`` is the tuner, ``get_base_model()`` the transformers model."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.base_model = LoraModel(model)

    @classmethod
    def from_pretrained(
        cls, model: torch.nn.Module, model_id: str, config: Any = None
    ) -> PeftModel:
        return cls(model)

    def get_base_model(self) -> torch.nn.Module:
        wrapped: torch.nn.Module = self.base_model.model
        return wrapped

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.base_model, name)
