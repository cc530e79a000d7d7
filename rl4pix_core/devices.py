"""Choice of the torch device and dtype when the caller leaves them open."""

from __future__ import annotations

import torch

from rl4pix_core.errors import InvalidInputError

DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def resolve_device(device: str | torch.device | None) -> torch.device:
    """Return `device`, or CUDA when it is available and CPU otherwise."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise InvalidInputError(f"invalid device {device!r}: use 'cpu', 'cuda', 'cuda:N' or 'auto'") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError(f"device {device!r} was requested but CUDA is not available: use 'cpu' or 'auto'")
    return resolved


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """Return `dtype`, or bf16 on CUDA devices that support it, fp16 on older CUDA devices, fp32 on CPU."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is None or dtype == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if dtype not in DTYPES:
        raise InvalidInputError(f"invalid dtype {dtype!r}: use one of {sorted(DTYPES)} or 'auto'")
    return DTYPES[dtype]
