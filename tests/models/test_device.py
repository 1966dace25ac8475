"""Device, dtype and batch-size defaults and their errors."""

from __future__ import annotations

import pytest
import torch

from pytest_modgap.errors import EncoderError
from pytest_modgap.models.device import (
    check_batch_size,
    default_batch_size,
    dtype_name,
    resolve_device,
    resolve_dtype,
)

CPU = torch.device("cpu")
CUDA = torch.device("cuda")


def test_default_device_follows_cuda_availability(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device(None) == CPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device(None) == CUDA


def test_explicit_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_device("cpu") == CPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(EncoderError, match="only 2 CUDA device"):
        resolve_device("cuda:2")


def test_unavailable_or_unknown_devices_are_clear_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(EncoderError, match="no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(EncoderError, match="MPS backend is not available"):
        resolve_device("mps")
    with pytest.raises(EncoderError, match="not a device name"):
        resolve_device("gpu-please")


def test_default_dtype_is_bfloat16_on_cuda_float32_elsewhere() -> None:
    assert resolve_dtype(None, CUDA) == torch.bfloat16
    assert resolve_dtype(None, CPU) == torch.float32


@pytest.mark.parametrize(
    ("name", "dtype"),
    [
        ("float32", torch.float32),
        ("fp32", torch.float32),
        ("bfloat16", torch.bfloat16),
        ("BF16", torch.bfloat16),
        ("float16", torch.float16),
        ("fp16", torch.float16),
    ],
)
def test_dtype_names(name: str, dtype: torch.dtype) -> None:
    assert resolve_dtype(name, CPU) == dtype


def test_bad_dtype_names_are_clear_errors() -> None:
    with pytest.raises(EncoderError, match="'int8' is not supported.*bfloat16 \\(bf16\\)"):
        resolve_dtype("int8", CPU)


def test_dtype_name_is_short() -> None:
    assert dtype_name(torch.bfloat16) == "bfloat16"


def test_default_batch_size_by_device_and_model_size() -> None:
    assert default_batch_size(CPU, 150_000_000) == 64
    assert default_batch_size(CUDA, 150_000_000) == 1024
    assert default_batch_size(CUDA, 430_000_000) == 256
    assert default_batch_size(CUDA, 3_800_000_000) < 256
    assert default_batch_size(CPU, 3_800_000_000) < 64


def test_check_batch_size() -> None:
    assert check_batch_size(None) is None and check_batch_size(8) == 8
    for bad in (0, -1, True, 2.5):
        with pytest.raises(EncoderError, match="not a positive integer"):
            check_batch_size(bad)  # type: ignore[arg-type]
