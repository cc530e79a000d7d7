"""Instruction-guided editing with InstructPix2Pix, DDIM sampling and cross-attention capture.

`InstructEditor.edit` is the user-facing call. `sample_trajectories` runs the same sampler but keeps
every step's latents and log-probability, which is what the PPO trainer needs, and `predict_noise`
is the guided UNet call that both share.

InstructPix2Pix guides with three UNet branches in one batch, in this order:

0. text and image conditioned (the instruction and the input image),
1. image conditioned only (empty text, input image),
2. unconditioned (empty text, zero image latents),

and combines them as eps = eps_2 + s_T * (eps_0 - eps_1) + s_I * (eps_1 - eps_2), with s_T the
`guidance_scale` and s_I the `image_guidance_scale` (Brooks et al., 2023, eq. 3).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from rl4pix_core.attention import AttentionStore, install_capture, instruction_token_weights
from rl4pix_core.ddim import ddim_step_with_log_prob
from rl4pix_core.errors import InvalidInputError
from rl4pix_core.images import fit_to_model, pil_to_tensor, tensor_to_pil
from rl4pix_core.loading import EditingComponents
from rl4pix_core.reward import RewardBreakdown, RewardConfig, compute_rewards

logger = logging.getLogger(__name__)

DEFAULT_STEPS = 20
DEFAULT_GUIDANCE_SCALE = 7.5
DEFAULT_IMAGE_GUIDANCE_SCALE = 1.5
MAX_STEPS = 1000
MAX_SEED = 2**32 - 1
MIN_SIDE = 8


@dataclass
class EditRequest:
    """One edit: an input image, an instruction and its sampling settings."""

    image: Image.Image
    instruction: str
    seed: int = 0
    steps: int = DEFAULT_STEPS
    guidance_scale: float = DEFAULT_GUIDANCE_SCALE
    image_guidance_scale: float = DEFAULT_IMAGE_GUIDANCE_SCALE
    eta: float = 0.0
    mask: np.ndarray | None = None  # float32 [H, W] in [0, 1] at the image's size; 1 marks the edit region
    key: str | None = None  # caller's id for the sample, such as "<img_id>/<turn>"


@dataclass
class EditResult:
    """The edited image at the input's size, with its attention map and, when a mask was given, its reward."""

    image: Image.Image
    seed: int
    attention_map: torch.Tensor | None
    reward: RewardBreakdown | None
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class Conditioning:
    """Everything the guided UNet call needs besides the latents and the timestep."""

    prompt_embeds: torch.Tensor  # [B, L, D], the instructions
    negative_embeds: torch.Tensor  # [B, L, D], the empty prompt
    image_latents: torch.Tensor  # [B, C, h, w], the VAE mode of the input images, unscaled
    token_weights: torch.Tensor  # [B, L]

    def select(self, indices: torch.Tensor | list[int]) -> Conditioning:
        return Conditioning(
            self.prompt_embeds[indices],
            self.negative_embeds[indices],
            self.image_latents[indices],
            self.token_weights[indices],
        )


@dataclass
class Trajectory:
    """A batch of sampled denoising chains, as the PPO trainer consumes them."""

    latents: torch.Tensor  # [B, T + 1, C, h, w]: x_T, ..., x_0
    log_probs: torch.Tensor  # [B, T]
    timesteps: torch.Tensor  # [T], long
    conditioning: Conditioning
    guidance_scale: torch.Tensor  # [B]
    image_guidance_scale: torch.Tensor  # [B]
    eta: float
    attention_maps: torch.Tensor | None  # [B, h', w'], float32 on the CPU
    images: torch.Tensor  # [B, 3, H, W] in [0, 1], decoded outputs at the working size
    input_images: torch.Tensor  # [B, 3, H, W] in [0, 1], inputs at the working size
    masks: torch.Tensor | None  # [B, H, W] in [0, 1] at the working size, when every request had one
    keys: list[str | None]
    timings: dict[str, float] = field(default_factory=dict)


class InstructEditor:
    """Edits images with an InstructPix2Pix model and records its cross-attention.

    Args:
        components: the loaded model (see `rl4pix_core.loading.load_components`).
        attention_downsample: the UNet level whose cross-attention is captured, as its downsampling
            factor relative to the latent grid (1, 2, 4 or 8; default 4, which is 16x16 for a 512 px
            input on Stable Diffusion 1.5).
        max_side: inputs whose longer side exceeds this many pixels are downscaled, keeping the
            aspect ratio. None (the default) takes the model's own: 512, the resolution
            InstructPix2Pix was trained at, or 128 for the `tiny` preset.
        capture_attention: record attention maps (default True). Turn off only to measure its cost.
        reward_config: weights and threshold of the reward computed for requests with a mask.
    """

    def __init__(
        self,
        components: EditingComponents,
        attention_downsample: int = 4,
        max_side: int | None = None,
        capture_attention: bool = True,
        reward_config: RewardConfig | None = None,
    ) -> None:
        self.components = components
        self.max_side = components.default_max_side if max_side is None else max_side
        if self.max_side < MIN_SIDE:
            raise InvalidInputError(f"max_side={max_side} is too small: use at least {MIN_SIDE} pixels")
        self.capture_attention = capture_attention
        self.reward_config = reward_config or RewardConfig()
        self.store: AttentionStore | None = None
        if capture_attention:
            self.store = install_capture(components.unet, attention_downsample)

    # -- public API -------------------------------------------------------------------------

    @torch.no_grad()
    def edit(self, requests: list[EditRequest]) -> list[EditResult]:
        """Edit every request and return the results in request order.

        Requests are run in groups that share working size, step count and eta. A request's output
        depends only on its own seed, not on the other requests in the batch.
        """
        results: list[EditResult | None] = [None] * len(requests)
        for indices in self._group(requests):
            group = [requests[i] for i in indices]
            trajectory = self._sample(group, record=False)
            for position, result in zip(indices, self._results(group, trajectory)):
                results[position] = result
        return results

    @torch.no_grad()
    def sample_trajectories(self, requests: list[EditRequest]) -> Trajectory:
        """Sample one batch for PPO, keeping each step's latents and log-probability.

        Every request must share the working size, the step count and an eta > 0.
        """
        groups = self._group(requests)
        if len(groups) != 1:
            raise InvalidInputError(
                "sample_trajectories needs requests of one working size, step count and eta: "
                "resize the inputs to one resolution first"
            )
        if requests[0].eta <= 0:
            raise InvalidInputError(f"eta={requests[0].eta} has no log-probability: sample with eta > 0")
        return self._sample(requests, record=True)

    def predict_noise(
        self,
        latents: torch.Tensor,
        timesteps: torch.Tensor | int,
        conditioning: Conditioning,
        guidance_scale: torch.Tensor,
        image_guidance_scale: torch.Tensor,
        use_guidance: bool = True,
    ) -> torch.Tensor:
        """Return the guided noise prediction for latents [B, C, h, w] at `timesteps` (int or [B]).

        With `use_guidance` off, the UNet runs only the text-and-image-conditioned branch.
        Gradients flow when the caller enables them (the PPO update does).
        """
        unet = self.components.unet
        batch_size = latents.shape[0]
        timesteps = torch.as_tensor(timesteps, device=latents.device).reshape(-1).expand(batch_size)
        # `unet.dtype` walks every submodule on each read (diffusers 0.42), a few percent of a small
        # model's step, so the dtype recorded at load time is used instead.
        dtype = self.components.dtype
        if not use_guidance:
            model_input = torch.cat([latents, conditioning.image_latents], dim=1).to(dtype)
            return unet(model_input, timesteps, encoder_hidden_states=conditioning.prompt_embeds.to(dtype)).sample

        zeros = torch.zeros_like(conditioning.image_latents)
        model_input = torch.cat(
            [
                torch.cat([latents, latents, latents]),
                torch.cat([conditioning.image_latents, conditioning.image_latents, zeros]),
            ],
            dim=1,
        ).to(dtype)
        embeds = torch.cat([conditioning.prompt_embeds, conditioning.negative_embeds, conditioning.negative_embeds])
        noise = unet(model_input, timesteps.repeat(3), encoder_hidden_states=embeds.to(dtype)).sample
        noise_text, noise_image, noise_uncond = noise.float().chunk(3)
        text_scale = guidance_scale.float().view(-1, 1, 1, 1).to(noise.device)
        image_scale = image_guidance_scale.float().view(-1, 1, 1, 1).to(noise.device)
        return noise_uncond + text_scale * (noise_text - noise_image) + image_scale * (noise_image - noise_uncond)

    # -- sampling ---------------------------------------------------------------------------

    def _group(self, requests: list[EditRequest]) -> list[list[int]]:
        if not requests:
            raise InvalidInputError("no edit requests were given: pass at least one")
        groups: dict[tuple, list[int]] = {}
        for index, request in enumerate(requests):
            self._check(request, index)
            size = fit_to_model(request.image, self.max_side).size
            groups.setdefault((size, request.steps, request.eta), []).append(index)
        return list(groups.values())

    @staticmethod
    def _check(request: EditRequest, index: int) -> None:
        if not isinstance(request.instruction, str) or not request.instruction.strip():
            raise InvalidInputError(f"request {index}: the instruction is empty: describe the edit in words")
        if not 1 <= request.steps <= MAX_STEPS:
            raise InvalidInputError(f"request {index}: steps={request.steps} is out of range: use 1 to {MAX_STEPS}")
        if not 0 <= request.seed <= MAX_SEED:
            raise InvalidInputError(f"request {index}: seed={request.seed} is out of range: use 0 to {MAX_SEED}")
        for name in ("guidance_scale", "image_guidance_scale", "eta"):
            value = getattr(request, name)
            if not math.isfinite(value) or value < 0:
                raise InvalidInputError(f"request {index}: {name}={value} is invalid: use a finite number >= 0")
        if request.eta > 1:
            # Above 1 the step's noise variance can exceed 1 - alpha_prev, which leaves DDIM's direction term undefined.
            raise InvalidInputError(f"request {index}: eta={request.eta} is out of range: use 0 to 1")
        if request.mask is not None and request.mask.shape != (request.image.height, request.image.width):
            raise InvalidInputError(
                f"request {index}: mask shape {request.mask.shape} differs from the image's "
                f"{(request.image.height, request.image.width)}: load it with load_mask(path, image.size)"
            )

    def _sample(self, requests: list[EditRequest], record: bool) -> Trajectory:
        components = self.components
        device = components.device
        timings: dict[str, float] = {}
        started = time.perf_counter()

        # 1. Encode the instructions and the empty prompt.
        conditioning_text = self._encode_prompts([request.instruction for request in requests])

        # 2. Encode the input images at the working size.
        inputs = [fit_to_model(request.image, self.max_side) for request in requests]
        input_images = torch.stack([pil_to_tensor(image) for image in inputs]).to(device)
        image_latents = components.vae.encode((input_images * 2 - 1).to(components.dtype)).latent_dist.mode()
        conditioning = Conditioning(*conditioning_text[:2], image_latents, conditioning_text[2])
        timings["encode"] = time.perf_counter() - started

        # 3. Prepare the initial noise, one generator per request.
        generators = [torch.Generator("cpu").manual_seed(int(request.seed)) for request in requests]
        latent_shape = image_latents.shape[1:]
        latents = torch.stack([torch.randn(latent_shape, generator=g, dtype=torch.float32) for g in generators])
        latents = latents.to(device) * components.scheduler.init_noise_sigma

        # 4. Denoise with three-way guidance, capturing cross-attention.
        started = time.perf_counter()
        scheduler = components.scheduler
        scheduler.set_timesteps(requests[0].steps, device=device)
        guidance_scale = torch.tensor([request.guidance_scale for request in requests], device=device)
        image_guidance_scale = torch.tensor([request.image_guidance_scale for request in requests], device=device)
        eta = requests[0].eta
        if self.store is not None:
            self.store.start(tuple(latent_shape[1:]), conditioning.token_weights.to(device))
        all_latents, all_log_probs = [latents], []
        try:
            for timestep in scheduler.timesteps:
                noise_pred = self.predict_noise(latents, timestep, conditioning, guidance_scale, image_guidance_scale)
                latents, log_prob = self._step(noise_pred, timestep, latents, eta, generators)
                if record:
                    all_latents.append(latents)
                    all_log_probs.append(log_prob)
        finally:
            if self.store is not None:
                self.store.stop()
        attention_maps = self.store.result() if self.store is not None else None
        timings["denoise"] = time.perf_counter() - started

        # 5. Decode the final latents.
        started = time.perf_counter()
        decoded = components.vae.decode(latents.to(components.dtype) / components.vae.config.scaling_factor).sample
        images = ((decoded.float() + 1) / 2).clamp(0, 1)
        timings["decode"] = time.perf_counter() - started

        return Trajectory(
            latents=torch.stack(all_latents, dim=1) if record else latents[:, None],
            log_probs=torch.stack(all_log_probs, dim=1) if record else torch.empty(len(requests), 0),
            timesteps=scheduler.timesteps.clone(),
            conditioning=conditioning,
            guidance_scale=guidance_scale,
            image_guidance_scale=image_guidance_scale,
            eta=eta,
            attention_maps=attention_maps,
            images=images,
            input_images=input_images.float(),
            masks=self._working_masks(requests, inputs),
            keys=[request.key for request in requests],
            timings=timings,
        )

    def _step(self, noise_pred, timestep, latents, eta: float, generators):
        if eta > 0:
            return ddim_step_with_log_prob(self.components.scheduler, noise_pred, timestep, latents, eta, generators)
        # eta = 0 is deterministic, so the scheduler's own step gives the same result with no noise.
        step = self.components.scheduler.step(noise_pred, timestep, latents.float(), eta=0.0)
        return step.prev_sample, torch.zeros(latents.shape[0], device=latents.device)

    def _encode_prompts(self, instructions: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        tokenizer = self.components.tokenizer
        encoder = self.components.text_encoder
        device = self.components.device
        for instruction in instructions:
            length = len(tokenizer(instruction).input_ids)
            if length > tokenizer.model_max_length:
                logger.warning(
                    "instruction has %d tokens, over the text encoder's %d: it is truncated",
                    length,
                    tokenizer.model_max_length,
                )
        tokens = tokenizer(
            instructions + [""] * len(instructions),
            padding="max_length",
            max_length=tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        )
        embeds = encoder(tokens.input_ids.to(device))[0]
        prompt_embeds, negative_embeds = embeds.chunk(2)
        token_weights = instruction_token_weights(tokens.input_ids[: len(instructions)], tokenizer)
        return prompt_embeds, negative_embeds, token_weights

    @staticmethod
    def _working_masks(requests: list[EditRequest], inputs: list[Image.Image]) -> torch.Tensor | None:
        if any(request.mask is None for request in requests):
            return None
        return torch.stack([_mask_at(request.mask, image.size) for request, image in zip(requests, inputs)])

    # -- results ----------------------------------------------------------------------------

    def _results(self, requests: list[EditRequest], trajectory: Trajectory) -> list[EditResult]:
        rewards: list[RewardBreakdown | None] = [None] * len(requests)
        if trajectory.attention_maps is not None:
            with_mask = [i for i, request in enumerate(requests) if request.mask is not None]
            if with_mask:
                working_size = tuple(trajectory.images.shape[-1:-3:-1])
                masks = torch.stack([_mask_at(requests[i].mask, working_size) for i in with_mask])
                computed = compute_rewards(
                    trajectory.attention_maps[with_mask],
                    masks,
                    trajectory.input_images[with_mask].cpu(),
                    trajectory.images[with_mask].cpu(),
                    self.reward_config,
                )
                for i, reward in zip(with_mask, computed):
                    rewards[i] = reward

        results = []
        for index, request in enumerate(requests):
            output = tensor_to_pil(trajectory.images[index].cpu())
            if output.size != request.image.size:
                output = output.resize(request.image.size, Image.Resampling.LANCZOS)
            attention = trajectory.attention_maps[index] if trajectory.attention_maps is not None else None
            results.append(EditResult(output, request.seed, attention, rewards[index], dict(trajectory.timings)))
        return results


def _mask_at(mask: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """Resize a [H, W] mask to `size` (width, height) by area averaging, so soft edges stay soft."""
    tensor = torch.from_numpy(np.asarray(mask, dtype=np.float32))[None, None]
    return F.interpolate(tensor, size=(size[1], size[0]), mode="area")[0, 0]
