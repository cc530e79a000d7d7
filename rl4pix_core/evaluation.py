"""Evaluation of an editing model on MagicBrush-format data with L1, L2, CLIP-T, SSIM and PSNR."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from rl4pix_core.data.magicbrush import EditSession, EditTurn, evaluable_turns, normalize_setting, source_for_turn
from rl4pix_core.editing import EditRequest, InstructEditor
from rl4pix_core.errors import InvalidInputError
from rl4pix_core.metrics import ClipScorer, MetricsResult, score_pairs

logger = logging.getLogger(__name__)


@dataclass
class EvalSettings:
    """Sampling settings of an evaluation run; every turn uses seed + its position in the run."""

    setting: str = "single-turn"
    limit: int | None = None  # at most this many turns, in data order
    steps: int = 20
    guidance_scale: float = 7.5
    image_guidance_scale: float = 1.5
    seed: int = 0
    batch_size: int = 4


def _selected_turns(sessions: list[EditSession], settings: EvalSettings) -> list[tuple[EditSession, EditTurn]]:
    selected = []
    for session in sessions:
        for turn in evaluable_turns(session, settings.setting):
            selected.append((session, turn))
    if settings.limit is not None:
        selected = selected[: settings.limit]
    if not any(turn.has_target for _, turn in selected):
        raise InvalidInputError(
            "none of the selected turns has a ground-truth output image (<id>-output<k>.png), which L1, L2, "
            "SSIM and PSNR compare against: evaluate on data that includes them"
        )
    return selected


def evaluate(
    editor: InstructEditor,
    sessions: list[EditSession],
    settings: EvalSettings,
    clip_scorer: ClipScorer | None = None,
    output_dir: Path | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> MetricsResult:
    """Edit every selected turn and score the outputs against the ground-truth images.

    Turns run in waves by turn index, so that in the multi-turn setting turn k can start from the
    model's own output of turn k - 1. Turns without a ground-truth output are edited (the next
    multi-turn turn needs them) but not scored. With `output_dir`, outputs are written there as
    `<img_id>-output<k>.png`, the MagicBrush naming, so `rl4pix metrics` can score them again.

    Raises:
        InvalidInputError: the selection has no turn with a ground-truth output.
    """
    settings.setting = normalize_setting(settings.setting)
    selected = _selected_turns(sessions, settings)
    logger.info("evaluating %d turns in the %s setting", len(selected), settings.setting)

    outputs: dict[tuple[str, int], Image.Image] = {}
    order = {id(turn): position for position, (_, turn) in enumerate(selected)}
    for turn_index in sorted({turn.turn_index for _, turn in selected}):
        wave = [(session, turn) for session, turn in selected if turn.turn_index == turn_index]
        for start in range(0, len(wave), settings.batch_size):
            chunk = wave[start : start + settings.batch_size]
            requests = [_request(session, turn, settings, outputs, order[id(turn)]) for session, turn in chunk]
            for (session, turn), result in zip(chunk, editor.edit(requests)):
                outputs[(session.img_id, turn.turn_index)] = result.image
                if output_dir is not None:
                    _save_output(output_dir, session.img_id, turn.turn_index, result.image)
            if on_progress is not None:
                on_progress(len(outputs), len(selected))

    scored = [(session, turn) for session, turn in selected if turn.has_target]
    pairs = [(outputs[(session.img_id, turn.turn_index)], turn.target_image()) for session, turn in scored]
    captions = [turn.caption for _, turn in scored]
    names = [f"{session.img_id}/{turn.turn_index}" for session, turn in scored]
    result = score_pairs(pairs, captions, clip_scorer, names=names)
    result.settings.update(
        {
            "setting": settings.setting,
            "model": editor.components.model_id,
            "adapters": sorted(editor.components.adapters),
            "steps": settings.steps,
            "guidance_scale": settings.guidance_scale,
            "image_guidance_scale": settings.image_guidance_scale,
            "seed": settings.seed,
            "max_side": editor.max_side,
            "edited_turns": len(selected),
        }
    )
    return result


def _request(
    session: EditSession,
    turn: EditTurn,
    settings: EvalSettings,
    outputs: dict[tuple[str, int], Image.Image],
    position: int,
) -> EditRequest:
    previous = [outputs[(session.img_id, index)] for index in range(1, turn.turn_index) if (session.img_id, index) in outputs]
    source = source_for_turn(session, turn.turn_index, settings.setting, previous)
    return EditRequest(
        image=source,
        instruction=turn.instruction,
        seed=settings.seed + position,
        steps=settings.steps,
        guidance_scale=settings.guidance_scale,
        image_guidance_scale=settings.image_guidance_scale,
        key=f"{session.img_id}/{turn.turn_index}",
    )


def _save_output(output_dir: Path, img_id: str, turn_index: int, image: Image.Image) -> None:
    folder = output_dir / img_id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{img_id}-output{turn_index}.png"
    temporary = path.with_name(f".{path.name}.partial")
    image.save(temporary, format="PNG")
    temporary.replace(path)
