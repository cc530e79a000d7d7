"""Loading of InstructPix2Pix models and LoRA adapters from every place a user keeps them.

A model reference is one of:

* a preset name (`tiny`, `sd15-random`), built in code with seeded random weights;
* a local diffusers directory (it contains `model_index.json`);
* a single-file `.ckpt` or `.safetensors` checkpoint, such as the MagicBrush release;
* a Hugging Face hub id such as `timbrooks/instruct-pix2pix`, resolved through the hub cache.
"""

from __future__ import annotations

import copy
import functools
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from diffusers import DDIMScheduler, StableDiffusionInstructPix2PixPipeline

from rl4pix_core.devices import resolve_device, resolve_dtype
from rl4pix_core.errors import CheckpointError, ModelNotFoundError
from rl4pix_core.presets import PRESETS, build_preset_modules

logger = logging.getLogger(__name__)

SINGLE_FILE_SUFFIXES = (".ckpt", ".safetensors")
LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"


@dataclass
class EditingComponents:
    """The modules of an InstructPix2Pix model, placed on one device, with a DDIM scheduler."""

    pipeline: StableDiffusionInstructPix2PixPipeline
    model_id: str
    device: torch.device
    dtype: torch.dtype
    default_max_side: int = 512  # longer input side, in pixels, above which inputs are downscaled
    adapters: dict[str, str] = field(default_factory=dict)  # adapter name -> path it was loaded from

    @property
    def unet(self):
        return self.pipeline.unet

    @property
    def vae(self):
        return self.pipeline.vae

    @property
    def text_encoder(self):
        return self.pipeline.text_encoder

    @property
    def tokenizer(self):
        return self.pipeline.tokenizer

    @property
    def scheduler(self) -> DDIMScheduler:
        return self.pipeline.scheduler

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)


@functools.lru_cache(maxsize=1)
def _cached_tiny_modules() -> dict:
    return build_preset_modules("tiny")


def _preset_pipeline(name: str) -> StableDiffusionInstructPix2PixPipeline:
    # The tiny preset is cached and copied, so every call gets the same fresh weights quickly.
    modules = copy.deepcopy(_cached_tiny_modules()) if name == "tiny" else build_preset_modules(name)
    return StableDiffusionInstructPix2PixPipeline(
        **modules, safety_checker=None, feature_extractor=None, requires_safety_checker=False
    )


def _pretrained_pipeline(
    model: str, dtype: torch.dtype, single_file_config: str | None
) -> StableDiffusionInstructPix2PixPipeline:
    path = Path(model).expanduser()
    options = {"torch_dtype": dtype, "safety_checker": None, "requires_safety_checker": False}
    # diffusers 0.42 renamed `torch_dtype` to `dtype`; the old name still works everywhere we support.
    warnings.filterwarnings("ignore", message=".*torch_dtype.*is deprecated", category=FutureWarning)
    if path.is_file() and path.suffix in SINGLE_FILE_SUFFIXES:
        if path.suffix == ".ckpt":
            logger.warning("loading pickle checkpoint %s: only load .ckpt files from sources you trust", path)
        # NOTE: without `single_file_config`, diffusers fetches the matching component configs from the
        # hub (or its cache) to lay out a single-file checkpoint, so an offline machine needs a local
        # diffusers directory of the same architecture passed as `single_file_config`.
        if single_file_config:
            options["config"] = single_file_config
        return StableDiffusionInstructPix2PixPipeline.from_single_file(str(path), **options)
    if path.exists():
        if not (path / "model_index.json").is_file():
            raise ModelNotFoundError(
                f"model path {model!r} is neither a diffusers directory (no model_index.json) nor a "
                f"{'/'.join(SINGLE_FILE_SUFFIXES)} checkpoint: point it at one of those"
            )
        return StableDiffusionInstructPix2PixPipeline.from_pretrained(str(path), **options)
    return StableDiffusionInstructPix2PixPipeline.from_pretrained(model, **options)


def load_components(
    model: str,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    single_file_config: str | None = None,
) -> EditingComponents:
    """Load the InstructPix2Pix model `model` and switch its scheduler to DDIM.

    Args:
        model: a preset name, a local diffusers directory, a single-file checkpoint or a hub id.
        device: "cpu", "cuda", "cuda:N", or None / "auto" for CUDA when available.
        dtype: "fp32", "fp16", "bf16", or None / "auto" for bf16 on CUDA (fp16 where bf16 is
            unsupported) and fp32 on CPU.
        single_file_config: for a single-file checkpoint, a hub id or local diffusers directory
            whose component configs describe its architecture (default: looked up by diffusers).

    Raises:
        ModelNotFoundError: the reference is not a preset, a usable path or a reachable hub id.
    """
    resolved_device = resolve_device(device)
    resolved_dtype = resolve_dtype(dtype, resolved_device)
    logger.info("loading model %r on %s as %s", model, resolved_device, resolved_dtype)

    if model in PRESETS:
        pipeline = _preset_pipeline(model)
    else:
        try:
            pipeline = _pretrained_pipeline(model, resolved_dtype, single_file_config)
        except (OSError, ValueError, EnvironmentError) as error:
            raise ModelNotFoundError(
                f"could not load model {model!r}: {error}. Use a preset ({', '.join(PRESETS)}), a local "
                "diffusers directory, a .ckpt/.safetensors file, or a hub id that is in the local cache "
                "or reachable over the network"
            ) from error

    pipeline.scheduler = DDIMScheduler.from_config(pipeline.scheduler.config)
    for module in (pipeline.unet, pipeline.vae, pipeline.text_encoder):
        module.to(device=resolved_device)
        if module.dtype != resolved_dtype:
            module.to(dtype=resolved_dtype)
    for module in (pipeline.unet, pipeline.vae, pipeline.text_encoder):
        module.requires_grad_(False)
        module.eval()
    max_side = PRESETS[model].default_max_side if model in PRESETS else 512
    return EditingComponents(
        pipeline=pipeline,
        model_id=model,
        device=resolved_device,
        dtype=resolved_dtype,
        default_max_side=max_side,
    )


def resolve_lora_file(path: str | Path) -> Path:
    """Return the safetensors file of a LoRA given as a file or as a directory that contains one."""
    path = Path(path).expanduser()
    candidate = path / LORA_WEIGHT_NAME if path.is_dir() else path
    if not candidate.is_file():
        raise CheckpointError(f"LoRA weights not found at {str(candidate)!r}: pass a {LORA_WEIGHT_NAME} file or its directory")
    if candidate.suffix != ".safetensors":
        raise CheckpointError(
            f"LoRA file {str(candidate)!r} is not a .safetensors file: only safetensors are loaded, "
            "because pickle files can run code"
        )
    return candidate


def load_lora(components: EditingComponents, path: str | Path, adapter_name: str = "default") -> str:
    """Load a LoRA saved by `rl4pix train` (or any diffusers-format UNet LoRA) and make it the active adapter.

    Loading the same adapter name twice reuses the first load. Returns the adapter name.
    """
    if adapter_name in components.adapters:
        components.pipeline.set_adapters([adapter_name])
        return adapter_name
    lora_file = resolve_lora_file(path)
    logger.info("loading LoRA %s as adapter %r", lora_file, adapter_name)
    # diffusers logs a warning for every component the LoRA leaves alone (here the text encoder).
    loaders_logger = logging.getLogger("diffusers.loaders")
    level = loaders_logger.level
    loaders_logger.setLevel(logging.ERROR)
    try:
        components.pipeline.load_lora_weights(
            str(lora_file.parent), weight_name=lora_file.name, adapter_name=adapter_name
        )
    except (ValueError, KeyError, RuntimeError) as error:
        raise CheckpointError(
            f"LoRA {str(lora_file)!r} does not fit model {components.model_id!r}: {error}"
        ) from error
    finally:
        loaders_logger.setLevel(level)
    components.pipeline.set_adapters([adapter_name])
    components.adapters[adapter_name] = str(lora_file)
    return adapter_name


def disable_lora(components: EditingComponents) -> None:
    """Run the base model: every loaded adapter stays in memory but is switched off."""
    if components.adapters:
        components.pipeline.disable_lora()


def enable_lora(components: EditingComponents, adapter_name: str) -> None:
    components.pipeline.enable_lora()
    components.pipeline.set_adapters([adapter_name])
