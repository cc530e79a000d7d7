"""One DDIM step that also returns the log-probability of the step under the sampling policy.

With eta > 0, DDIM's reverse step is a Gaussian: x_{t-1} ~ N(mean(x_t, eps), sigma_t^2 I) with
sigma_t = eta * sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)), where a are the cumulative
alpha products (Song et al., 2021, eq. 12 and 16). Treating each step as an action of a policy
gives the multi-step MDP that PPO fine-tunes (Black et al., 2023, "Training Diffusion Models with
Reinforcement Learning").
"""

from __future__ import annotations

import math

import torch
from diffusers import DDIMScheduler

from rl4pix_core.errors import InvalidInputError

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def previous_timestep(scheduler: DDIMScheduler, timestep: torch.Tensor) -> torch.Tensor:
    """Return the timestep that DDIM moves to from `timestep`; -1 means the final, noise-free state."""
    if scheduler.num_inference_steps is None:
        raise InvalidInputError("the scheduler has no timesteps yet: call scheduler.set_timesteps(steps) first")
    stride = scheduler.config.num_train_timesteps // scheduler.num_inference_steps
    return timestep - stride


def _alpha_products(scheduler: DDIMScheduler, timestep: torch.Tensor, device: torch.device):
    alphas_cumprod = scheduler.alphas_cumprod.to(device=device, dtype=torch.float64)
    prev = previous_timestep(scheduler, timestep).to(device)
    alpha_t = alphas_cumprod[timestep.to(device)]
    final = torch.as_tensor(scheduler.final_alpha_cumprod, dtype=torch.float64, device=device)
    alpha_prev = torch.where(prev >= 0, alphas_cumprod[prev.clamp(min=0)], final)
    return alpha_t, alpha_prev


def _per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Shape a [B] tensor to broadcast over latents of shape [B, C, H, W]."""
    return values.to(like.dtype).view(-1, *([1] * (like.ndim - 1)))


def predict_original_sample(
    scheduler: DDIMScheduler, model_output: torch.Tensor, timestep: torch.Tensor, latents: torch.Tensor
) -> torch.Tensor:
    """Return the model's estimate of x_0 from x_t, for epsilon- and v-prediction models."""
    alpha_t, _ = _alpha_products(scheduler, timestep, latents.device)
    alpha_t = _per_sample(alpha_t, latents)
    prediction_type = scheduler.config.prediction_type
    if prediction_type == "epsilon":
        return (latents - (1 - alpha_t).sqrt() * model_output) / alpha_t.sqrt()
    if prediction_type == "v_prediction":
        return alpha_t.sqrt() * latents - (1 - alpha_t).sqrt() * model_output
    raise InvalidInputError(
        f"scheduler prediction_type {prediction_type!r} is not supported: use an epsilon- or v-prediction model"
    )


def ddim_step_with_log_prob(
    scheduler: DDIMScheduler,
    model_output: torch.Tensor,
    timestep: int | torch.Tensor,
    latents: torch.Tensor,
    eta: float,
    generators: list[torch.Generator] | None = None,
    prev_latents: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Take one DDIM step from `latents` at `timestep` and return `(prev_latents, log_prob)`.

    Args:
        scheduler: a DDIM scheduler on which `set_timesteps` was called.
        model_output: the guided noise (or v) prediction, shape [B, C, H, W].
        timestep: the current timestep, one int for the batch or a [B] tensor.
        latents: x_t, shape [B, C, H, W].
        eta: DDIM's noise scale; must be > 0, because the step has no density at eta = 0.
        generators: one CPU generator per sample for the step noise, so each sample's noise depends
            only on its own seed. None draws from the global generator.
        prev_latents: x_{t-1} to score instead of sampling one (the PPO update re-scores the
            sampled trajectory this way).

    Returns:
        prev_latents: x_{t-1}, shape [B, C, H, W], in the dtype of `latents`.
        log_prob: shape [B], the Gaussian log-density of x_{t-1} averaged over latent dimensions.
            The mean, not the sum, keeps the PPO ratio's scale independent of the image size, so one
            `clip_range` means the same at 64 px and at 512 px.
    """
    if eta <= 0:
        raise InvalidInputError(f"eta={eta} gives a deterministic DDIM step with no log-probability: use eta > 0")
    batch_size = latents.shape[0]
    timestep = torch.as_tensor(timestep, device=latents.device).long().reshape(-1).expand(batch_size)

    alpha_t, alpha_prev = _alpha_products(scheduler, timestep, latents.device)
    variance = (1 - alpha_prev) / (1 - alpha_t) * (1 - alpha_t / alpha_prev)
    std = eta * variance.clamp(min=0).sqrt()
    if bool((std <= 0).any()):
        raise InvalidInputError(
            f"the DDIM step at timestep {timestep.tolist()} has zero variance, so it has no log-probability: "
            "check the scheduler's timesteps and use eta > 0"
        )

    sample = latents.float()
    model_output = model_output.float()
    pred_original = predict_original_sample(scheduler, model_output, timestep, sample)
    if scheduler.config.clip_sample:
        limit = scheduler.config.clip_sample_range
        pred_original = pred_original.clamp(-limit, limit)
    alpha_t_b = _per_sample(alpha_t, sample)
    pred_epsilon = (sample - alpha_t_b.sqrt() * pred_original) / (1 - alpha_t_b).sqrt()

    alpha_prev_b = _per_sample(alpha_prev, sample)
    std_b = _per_sample(std, sample)
    direction = (1 - alpha_prev_b - std_b**2).clamp(min=0).sqrt() * pred_epsilon
    mean = alpha_prev_b.sqrt() * pred_original + direction

    if prev_latents is None:
        noise = _step_noise(sample, generators)
        prev_sample = mean + std_b * noise
    else:
        prev_sample = prev_latents.float()

    log_prob = -((prev_sample.detach() - mean) ** 2) / (2 * std_b**2) - std_b.log() - LOG_SQRT_2PI
    log_prob = log_prob.mean(dim=tuple(range(1, log_prob.ndim)))
    return prev_sample.to(latents.dtype), log_prob


def _step_noise(like: torch.Tensor, generators: list[torch.Generator] | None) -> torch.Tensor:
    if generators is None:
        return torch.randn_like(like)
    if len(generators) != like.shape[0]:
        raise InvalidInputError(f"got {len(generators)} generators for a batch of {like.shape[0]}: pass one per sample")
    noise = [torch.randn(like.shape[1:], generator=generator, dtype=torch.float32) for generator in generators]
    return torch.stack(noise).to(device=like.device, dtype=like.dtype)
