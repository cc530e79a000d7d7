"""PPO fine-tuning of the InstructPix2Pix UNet's LoRA with the InstructRL4Pix reward.

The DDIM denoising chain is a multi-step MDP, as in DDPO (Black et al., 2023): each step
x_t -> x_{t-1} is an action with a Gaussian log-probability, and the reward of the whole chain
arrives at its end. `train` reads top to bottom:

1. setup: accelerator, model, LoRA, optimizer, data, optional resume;
2. per epoch, a sampling phase: sample trajectories with eta > 0 and reward them from the
   cross-attention maps captured while sampling (no extra UNet pass);
3. advantages from the per-prompt stat tracker, over the rewards of every process;
4. a training phase: re-score shuffled timesteps of the trajectories with the current LoRA and take
   PPO steps;
5. logging and checkpoints.

Data parallelism: every process samples its own batches and computes its own gradients. The UNet is
not wrapped in DistributedDataParallel, because the editor calls it directly. Instead the LoRA
gradients are averaged across processes before each optimizer step, as DDP would do.
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import gather_object

from rl4pix_core.ddim import ddim_step_with_log_prob
from rl4pix_core.editing import Conditioning, InstructEditor, Trajectory
from rl4pix_core.errors import CheckpointError, ConfigError, InvalidInputError
from rl4pix_core.loading import load_components
from rl4pix_core.ppo.checkpoint import (
    checkpoints_root,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
    should_save,
)
from rl4pix_core.ppo.config import TrainConfig, trained_timesteps
from rl4pix_core.ppo.dataset import SHUFFLE_STREAM, TrainingSet, derive_seed
from rl4pix_core.ppo.lora import add_lora, make_optimizer
from rl4pix_core.ppo.loss import ppo_loss
from rl4pix_core.ppo.reporting import (
    append_metrics,
    plot_reward_curve,
    read_history,
    save_sample_grid,
    write_history,
)
from rl4pix_core.ppo.stat_tracking import PerPromptStatTracker, warn_if_degenerate
from rl4pix_core.reward import RewardConfig, reward_tensors

logger = logging.getLogger(__name__)

COMPLETED = "completed"
CANCELLED = "cancelled"


@dataclass
class TrainerCallbacks:
    """Hooks for a caller such as the CLI or a worker.

    `on_progress(epoch, step, metrics)` runs on the main process after each sampling batch, each
    optimizer step and each epoch; `metrics["phase"]` is "sample", "train" or "epoch". `epoch` is
    1-based and `step` counts optimizer steps. `should_cancel()` is polled before every sampling batch
    and every training micro-step. Once it returns True on any process, training saves a checkpoint
    and returns with status "cancelled".
    """

    on_progress: Callable[[int, int, dict[str, Any]], None] | None = None
    should_cancel: Callable[[], bool] | None = None


@dataclass
class TrainResult:
    status: str  # "completed" or "cancelled"
    epochs_completed: int
    global_step: int
    logdir: Path
    checkpoint: Path | None
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class SampledBatch:
    trajectory: Trajectory
    keys: list[tuple[str, str]]
    rewards: Future | dict[str, torch.Tensor]

    def reward_terms(self) -> dict[str, torch.Tensor]:
        return self.rewards.result() if isinstance(self.rewards, Future) else self.rewards


@dataclass
class Samples:
    """One epoch's trajectories of this process, stacked for the training phase."""

    latents: torch.Tensor  # [N, T + 1, C, h, w]
    log_probs: torch.Tensor  # [N, T]
    timesteps: torch.Tensor  # [N, T]
    conditioning: Conditioning
    guidance_scale: torch.Tensor  # [N]
    image_guidance_scale: torch.Tensor  # [N]
    advantages: torch.Tensor  # [N]


class _Cancelled(Exception):
    """Raised inside an epoch when the caller asked to stop."""


@dataclass
class _Context:
    """Shared state of the training phases, set up once by `train`."""

    config: TrainConfig
    accelerator: Accelerator
    editor: InstructEditor
    params: list[torch.nn.Parameter]
    optimizer: torch.optim.Optimizer
    tracker: PerPromptStatTracker
    dataset: TrainingSet
    reward_config: RewardConfig
    callbacks: TrainerCallbacks
    logdir: Path
    global_step: int = 0
    epoch: int = 0  # 0-based index of the running epoch

    def poll_cancel(self) -> None:
        if self.callbacks.should_cancel is not None and self.callbacks.should_cancel():
            self.accelerator.set_trigger()
        if self.accelerator.check_trigger():
            raise _Cancelled()

    def progress(self, metrics: dict[str, Any]) -> None:
        if self.callbacks.on_progress is not None and self.accelerator.is_main_process:
            self.callbacks.on_progress(self.epoch + 1, self.global_step, metrics)


def train(config: TrainConfig, callbacks: TrainerCallbacks | None = None) -> TrainResult:
    """Fine-tune the LoRA of `config.model` by PPO and return how the run ended.

    Raises ConfigError, CheckpointError, RewardError or InvalidInputError (bad data) with the value
    at fault; a failed resume never falls back to a fresh start.
    """
    # 1. Setup.
    _select_gpu(config.device)
    accelerator = Accelerator(
        mixed_precision=config.mixed_precision,
        gradient_accumulation_steps=config.train.gradient_accumulation_steps * trained_timesteps(config),
        cpu=config.device == "cpu",
    )
    torch.backends.cuda.matmul.allow_tf32 = config.allow_tf32
    torch.backends.cudnn.allow_tf32 = config.allow_tf32
    logdir = Path(config.logdir)
    if not config.resume_from and list_checkpoints(checkpoints_root(logdir)):
        raise ConfigError(
            f"logdir {str(logdir)!r} already contains checkpoints of another run: resume it with "
            f"resume_from={str(logdir)!r} or choose a new logdir"
        )
    logger.info(
        "training %s for %d epochs on %d process(es), device %s, logdir %s",
        config.model,
        config.num_epochs,
        accelerator.num_processes,
        accelerator.device,
        logdir,
    )

    components = load_components(
        config.model, device=accelerator.device, dtype=_weight_dtype(config, accelerator)
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)  # the same LoRA initialization on every process
        params = add_lora(components.unet, config.lora)
    reward_config = RewardConfig(**config.reward.model_dump())
    editor = InstructEditor(
        components,
        attention_downsample=config.attention_downsample,
        max_side=config.resolution,
        reward_config=reward_config,
    )
    optimizer = accelerator.prepare(make_optimizer(params, config))
    tracking = config.per_prompt_stat_tracking
    tracker = PerPromptStatTracker(tracking.buffer_size, tracking.min_count, tracking.max_nonfinite_batches)
    dataset = TrainingSet(config.data, config.resolution)
    warn_if_degenerate(config, accelerator.num_processes, len(dataset))
    context = _Context(
        config,
        accelerator,
        editor,
        params,
        optimizer,
        tracker,
        dataset,
        reward_config,
        callbacks or TrainerCallbacks(),
        logdir,
    )

    start_epoch = 0
    resumed_checkpoint: Path | None = None
    if config.resume_from:
        resumed = load_checkpoint(config.resume_from, config, components.unet, optimizer, tracker)
        start_epoch, context.global_step = resumed.epoch, resumed.global_step
        resumed_checkpoint = resumed.path
    history = read_history(logdir, start_epoch) if start_epoch else []
    if accelerator.is_main_process:
        write_history(logdir, history)

    # 2-5. Epochs.
    # A resumed run that trains no further epochs ends at the checkpoint it resumed from.
    status, checkpoint, epochs_completed = COMPLETED, resumed_checkpoint, start_epoch
    for epoch in range(start_epoch, config.num_epochs):
        context.epoch = epoch
        try:
            record, last_batch = _run_epoch(context)
        except _Cancelled:
            logger.info("training cancelled during epoch %d at step %d", epoch + 1, context.global_step)
            status = CANCELLED
            checkpoint = _save(context, completed_epochs=epoch, partial_epoch=True)
            break
        epochs_completed = epoch + 1
        history.append(record)
        if accelerator.is_main_process:
            append_metrics(logdir, record)
        context.progress({"phase": "epoch", **record})
        if should_save(epoch + 1, config):
            checkpoint = _save(context, completed_epochs=epoch + 1)
            _write_plots(context, history, last_batch)

    if start_epoch >= config.num_epochs:
        logger.info(
            "checkpoint epoch %d already reaches num_epochs %d; nothing to train",
            start_epoch,
            config.num_epochs,
        )
    accelerator.wait_for_everyone()
    logger.info(
        "training %s after %d epochs, %d optimizer steps", status, epochs_completed, context.global_step
    )
    return TrainResult(status, epochs_completed, context.global_step, logdir, checkpoint, history)


def _select_gpu(device: str | None) -> None:
    """Make GPU N the current device for `cuda:N` in a single process, where accelerate uses "cuda"."""
    if device is None or not device.startswith("cuda:"):
        return
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError(
            f"invalid value {device!r} for 'device': with several processes each one uses its own GPU; "
            "set device to cuda or null"
        )
    if not torch.cuda.is_available():
        raise ConfigError(f"invalid value {device!r} for 'device': CUDA is not available; use cpu or null")
    # NOTE: not exercised by the tests, which run without a GPU.
    torch.cuda.set_device(int(device.partition(":")[2]))


def _weight_dtype(config: TrainConfig, accelerator: Accelerator) -> torch.dtype:
    """Frozen weights use the mixed-precision dtype on CUDA and fp32 elsewhere; LoRA stays fp32."""
    if accelerator.device.type != "cuda":
        return torch.float32
    return {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[config.mixed_precision]


def _run_epoch(context: _Context) -> tuple[dict[str, Any], SampledBatch]:
    # (a) Sampling phase.
    started = time.perf_counter()
    batches = _sample_epoch(context)
    sampling_seconds = time.perf_counter() - started

    # (b) Advantages over the rewards of every process.
    rewards, reward_metrics = _gather_rewards(context, batches)
    advantages = _advantages(context, batches, rewards)
    samples = _stack_samples(batches, advantages.to(context.accelerator.device))

    # (c) Training phase.
    started = time.perf_counter()
    train_metrics = _train_epoch(context, samples)
    training_seconds = time.perf_counter() - started

    record = {
        "epoch": context.epoch + 1,
        "global_step": context.global_step,
        **reward_metrics,
        **context.tracker.stats(),
        **train_metrics,
        "learning_rate": context.optimizer.param_groups[0]["lr"],
        "sampling_seconds": sampling_seconds,
        "training_seconds": training_seconds,
    }
    logger.info(
        "epoch %d: reward %.4f +- %.4f, loss %.4g, approx_kl %.3g, clipfrac %.3f",
        record["epoch"],
        record["reward_mean"],
        record["reward_std"],
        record["loss"],
        record["approx_kl"],
        record["clipfrac"],
    )
    return record, batches[-1]


# --- (a) sampling -------------------------------------------------------------------------------


def _sample_epoch(context: _Context) -> list[SampledBatch]:
    config = context.config
    context.editor.components.unet.eval()
    pool = (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="rl4pix-reward") if config.async_reward else None
    )
    batches: list[SampledBatch] = []
    try:
        for batch_index in range(config.sample.num_batches_per_epoch):
            context.poll_cancel()
            requests, keys = context.dataset.requests(
                config.sample, config.seed, context.epoch, context.accelerator.process_index, batch_index
            )
            trajectory = context.editor.sample_trajectories(requests)
            if pool is not None:
                # The reward of this batch is computed while the next batch samples.
                rewards: Future | dict = pool.submit(_reward_terms, trajectory, context.reward_config)
            else:
                rewards = _reward_terms(trajectory, context.reward_config)
            batches.append(SampledBatch(trajectory, keys, rewards))
            context.progress({"phase": "sample", "batch": batch_index + 1})
        for batch in batches:
            batch.reward_terms()  # re-raise any error of an asynchronous reward here
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    return batches


def _reward_terms(trajectory: Trajectory, reward_config: RewardConfig) -> dict[str, torch.Tensor]:
    """Reward a batch from the attention maps captured while it was sampled."""
    if trajectory.attention_maps is None or trajectory.masks is None:
        raise InvalidInputError("a sampled batch has no attention maps or masks: the reward needs both")
    return reward_tensors(
        trajectory.attention_maps,
        trajectory.masks,
        trajectory.input_images.cpu(),
        trajectory.images.cpu(),
        reward_config,
    )


# --- (b) advantages -----------------------------------------------------------------------------


def _gather_rewards(context: _Context, batches: list[SampledBatch]) -> tuple[torch.Tensor, dict[str, float]]:
    """Return this process's rewards [N] and reward statistics over every process."""
    accelerator = context.accelerator
    terms = [batch.reward_terms() for batch in batches]
    local = {name: torch.cat([term[name] for term in terms]).float() for name in terms[0]}
    gathered = {name: accelerator.gather(value.to(accelerator.device)).cpu() for name, value in local.items()}
    total = gathered["total"]
    finite = total[torch.isfinite(total)]
    metrics = {
        "reward_mean": float(finite.mean()) if finite.numel() else float("nan"),
        "reward_std": float(finite.std(unbiased=False)) if finite.numel() else float("nan"),
        "attention_similarity_mean": float(gathered["attention_similarity"].nanmean()),
        "clip_loss_mean": float(gathered["clip_loss"].nanmean()),
        "samples": int(total.numel()),
    }
    return local["total"], metrics


def _advantages(context: _Context, batches: list[SampledBatch], rewards: torch.Tensor) -> torch.Tensor:
    """Normalize the rewards of all processes with the tracker and return this process's share.

    Every process runs the tracker on the same gathered rewards, so its state stays identical across
    processes and the main process's copy is the one saved in checkpoints.
    """
    accelerator = context.accelerator
    keys = [key for batch in batches for key in batch.keys]
    all_keys = gather_object(keys) if accelerator.num_processes > 1 else keys
    all_rewards = accelerator.gather(rewards.to(accelerator.device)).cpu().numpy()
    advantages = context.tracker.update(all_keys, all_rewards)
    mine = advantages.reshape(accelerator.num_processes, -1)[accelerator.process_index]
    return torch.as_tensor(np.ascontiguousarray(mine), dtype=torch.float32)


def _stack_samples(batches: list[SampledBatch], advantages: torch.Tensor) -> Samples:
    trajectories = [batch.trajectory for batch in batches]
    log_probs = torch.cat([trajectory.log_probs for trajectory in trajectories])
    timesteps = torch.stack(
        [trajectory.timesteps for trajectory in trajectories for _ in range(trajectory.log_probs.shape[0])]
    )
    conditioning = Conditioning(
        *(torch.cat([getattr(t.conditioning, name) for t in trajectories]) for name in _CONDITIONING_FIELDS)
    )
    return Samples(
        latents=torch.cat([trajectory.latents for trajectory in trajectories]),
        log_probs=log_probs,
        timesteps=timesteps.to(log_probs.device),
        conditioning=conditioning,
        guidance_scale=torch.cat([trajectory.guidance_scale for trajectory in trajectories]),
        image_guidance_scale=torch.cat([trajectory.image_guidance_scale for trajectory in trajectories]),
        advantages=advantages,
    )


_CONDITIONING_FIELDS = ("prompt_embeds", "negative_embeds", "image_latents", "token_weights")


# --- (c) training -------------------------------------------------------------------------------


def _train_epoch(context: _Context, samples: Samples) -> dict[str, float]:
    config = context.config
    accelerator = context.accelerator
    unet = context.editor.components.unet
    scheduler = context.editor.components.scheduler
    scheduler.set_timesteps(config.sample.num_steps, device=accelerator.device)
    num_samples, num_steps = samples.log_probs.shape
    num_train_timesteps = trained_timesteps(config)
    batch_size = config.train.batch_size
    unet.train()

    infos: dict[str, list[torch.Tensor]] = defaultdict(list)
    for inner_epoch in range(config.train.num_inner_epochs):
        generator = torch.Generator().manual_seed(
            derive_seed(config.seed, SHUFFLE_STREAM, context.epoch, accelerator.process_index, inner_epoch)
        )
        sample_order = torch.randperm(num_samples, generator=generator)
        timestep_order = torch.stack(
            [torch.randperm(num_steps, generator=generator) for _ in range(num_samples)]
        )
        timestep_order = timestep_order[:, :num_train_timesteps]

        for start in range(0, num_samples, batch_size):
            rows = sample_order[start : start + batch_size]
            for j in range(num_train_timesteps):
                context.poll_cancel()
                info = _train_step(context, samples, rows, timestep_order[rows, j], scheduler)
                for name, value in info.items():
                    infos[name].append(value)

    means = {name: torch.stack(values).mean() for name, values in infos.items()}
    return {
        name: float(accelerator.reduce(value.to(accelerator.device), reduction="mean"))
        for name, value in means.items()
    }


def _train_step(
    context: _Context, samples: Samples, rows: torch.Tensor, columns: torch.Tensor, scheduler
) -> dict[str, torch.Tensor]:
    """Re-score one timestep of a micro-batch under the current LoRA and accumulate its PPO gradient."""
    config = context.config
    accelerator = context.accelerator
    device = accelerator.device
    rows_device, columns_device = rows.to(device), columns.to(device)
    latents = samples.latents[rows_device, columns_device]
    next_latents = samples.latents[rows_device, columns_device + 1]
    timesteps = samples.timesteps[rows_device, columns_device]
    old_log_prob = samples.log_probs[rows_device, columns_device]

    with accelerator.accumulate():
        with accelerator.autocast():
            noise_pred = context.editor.predict_noise(
                latents,
                timesteps,
                samples.conditioning.select(rows_device),
                samples.guidance_scale[rows_device],
                samples.image_guidance_scale[rows_device],
                use_guidance=config.train.cfg,
            )
            _, log_prob = ddim_step_with_log_prob(
                scheduler, noise_pred, timesteps, latents, config.sample.eta, prev_latents=next_latents
            )
        loss, info = ppo_loss(
            log_prob,
            old_log_prob,
            samples.advantages[rows_device],
            config.train.clip_range,
            config.train.adv_clip_max,
        )
        accelerator.backward(loss)
        if accelerator.sync_gradients:
            _average_gradients(context)
            accelerator.clip_grad_norm_(context.params, config.train.max_grad_norm)
        context.optimizer.step()
        context.optimizer.zero_grad()

    info["loss"] = loss.detach()
    if accelerator.sync_gradients:
        context.global_step += 1
        context.progress({"phase": "train", **{name: float(value) for name, value in info.items()}})
    return {name: value.detach().float().cpu() for name, value in info.items()}


def _average_gradients(context: _Context) -> None:
    """Average the LoRA gradients over processes, as DistributedDataParallel would."""
    accelerator = context.accelerator
    if accelerator.num_processes == 1:
        return
    grads = [param.grad if param.grad is not None else torch.zeros_like(param) for param in context.params]
    flat = accelerator.reduce(torch.cat([grad.flatten() for grad in grads]), reduction="mean")
    offset = 0
    for param, grad in zip(context.params, grads):
        param.grad = flat[offset : offset + grad.numel()].view_as(grad).clone()
        offset += grad.numel()


# --- (5) checkpoints and plots ------------------------------------------------------------------


def _save(context: _Context, completed_epochs: int, partial_epoch: bool = False) -> Path:
    """Save a checkpoint on the main process; every process waits for it and returns its path."""
    accelerator = context.accelerator
    _check_replicas_match(context)
    if accelerator.is_main_process:
        # NOTE: a checkpoint saved on cancellation contains the LoRA as it was mid-epoch, under the
        # number of the last completed epoch. Resuming from it runs the interrupted epoch again.
        save_checkpoint(
            context.logdir,
            completed_epochs,
            context.editor.components.unet,
            context.optimizer,
            context.tracker,
            context.config,
            context.global_step,
            extra={"partial_epoch": partial_epoch},
        )
    accelerator.wait_for_everyone()
    return checkpoints_root(context.logdir) / f"checkpoint-{completed_epochs}"


def _check_replicas_match(context: _Context) -> None:
    """Raise CheckpointError when the LoRA weights differ between processes (gradients not synced)."""
    accelerator = context.accelerator
    if accelerator.num_processes == 1:
        return
    flat = torch.cat([param.detach().float().flatten() for param in context.params])
    summary = torch.stack([flat.sum(), flat.square().sum(), flat.abs().max()]).to(accelerator.device)
    summaries = accelerator.gather(summary[None]).cpu()
    if not bool((summaries == summaries[0]).all()):
        raise CheckpointError(
            f"LoRA weights differ between processes at epoch {context.epoch + 1} (sum, sum of squares, max per "
            f"process: {summaries.tolist()}); the checkpoint is not saved. Report this as a bug"
        )


def _write_plots(context: _Context, history: list[dict[str, Any]], last_batch: SampledBatch) -> None:
    if not context.accelerator.is_main_process:
        return
    plot_reward_curve(context.logdir, history)
    trajectory = last_batch.trajectory
    if trajectory.attention_maps is not None:
        save_sample_grid(
            context.logdir,
            context.epoch + 1,
            trajectory.input_images.cpu(),
            trajectory.images.cpu(),
            trajectory.attention_maps,
            trajectory.masks.cpu() if trajectory.masks is not None else None,
        )
