"""MagicBrush edit sessions from the released folder layout or Hugging Face parquet files.

Folder layout (the MagicBrush test and dev archives):

    <root>/edit_sessions.json     {img_id: [{"input", "mask", "output", "instruction"}, ...]}
    <root>/local_captions.json    {img_id: {output_file_name: caption}}   (optional)
    <root>/images/<img_id>/<img_id>-input.png, <img_id>-mask<k>.png, <img_id>-output<k>.png

Turn k > 1 names the ground-truth output of turn k - 1 as its input. Parquet files (the Hugging
Face release) hold one row per turn with the columns img_id, turn_index, source_img, mask_img,
instruction and target_img, images stored as {"bytes", "path"} structs.

Images load lazily, so ground-truth outputs may be missing: `EditTurn.target_image()` is then None.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from rl4pix_core.errors import InvalidInputError
from rl4pix_core.images import DEFAULT_MAX_PIXELS, load_image, load_mask

logger = logging.getLogger(__name__)

SESSIONS_FILE = "edit_sessions.json"
CAPTIONS_FILE = "local_captions.json"
IMAGES_DIR = "images"
PARQUET_COLUMNS = ("img_id", "turn_index", "source_img", "mask_img", "instruction", "target_img")

SINGLE_TURN = "single-turn"
MULTI_TURN = "multi-turn"
SETTINGS = (SINGLE_TURN, MULTI_TURN)

MAX_LISTED_PROBLEMS = 10


@dataclass(frozen=True)
class ImageRef:
    """An image that loads on demand: a file path, or encoded bytes from a parquet row."""

    name: str
    path: Path | None = None
    data: bytes | None = field(default=None, repr=False)

    def available(self) -> bool:
        return self.data is not None or (self.path is not None and self.path.is_file())

    def _source(self) -> Path | bytes:
        if self.data is not None:
            return self.data
        if self.path is not None and self.path.is_file():
            return self.path
        raise InvalidInputError(
            f"image file not found: {self.path or self.name}; add the file or fix its name"
        )

    def load(self, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
        try:
            return load_image(self._source(), max_pixels=max_pixels)
        except InvalidInputError as error:
            raise InvalidInputError(f"{self.name}: {error}") from error

    def load_mask(
        self, size: tuple[int, int] | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
    ) -> np.ndarray:
        try:
            return load_mask(self._source(), size, max_pixels=max_pixels)
        except InvalidInputError as error:
            raise InvalidInputError(f"{self.name}: {error}") from error


@dataclass
class EditTurn:
    """One instruction of an edit session, with its source, mask and ground-truth target."""

    img_id: str
    turn_index: int  # 1-based
    instruction: str
    source: ImageRef
    mask: ImageRef | None
    target: ImageRef | None
    caption: str | None = None  # caption of the ground-truth output, for CLIP-T

    @property
    def source_path(self) -> Path | None:
        return self.source.path

    @property
    def mask_path(self) -> Path | None:
        return self.mask.path if self.mask is not None else None

    @property
    def target_path(self) -> Path | None:
        return self.target.path if self.target is not None else None

    @property
    def has_target(self) -> bool:
        return self.target is not None and self.target.available()

    def source_image(self) -> Image.Image:
        """Load the ground-truth source: the session input for turn 1, the output of turn k - 1 after."""
        return self.source.load()

    def mask_array(self, size: tuple[int, int] | None = None) -> np.ndarray | None:
        """Load the mask as float32 [H, W] in [0, 1] (1 = edit), resized to `size` (width, height)."""
        return self.mask.load_mask(size) if self.mask is not None else None

    def target_image(self) -> Image.Image | None:
        """Load the ground-truth output, or return None when it is missing."""
        return self.target.load() if self.has_target else None


@dataclass
class EditSession:
    """The turns applied one after another to one MagicBrush input image."""

    img_id: str
    turns: list[EditTurn]


@dataclass
class MagicBrushSummary:
    """The result of `validate_magicbrush`: counts, ids and non-fatal warnings."""

    path: str
    format: str  # "folder" or "parquet"
    sessions: int
    turns: int
    turns_with_target: int
    turns_with_caption: int
    max_turns: int
    img_ids: list[str]
    warnings: list[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_file_name(name: object, label: str, img_id: str) -> str:
    """Reject names that are not plain file names, so a session cannot point outside its folder."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"session {img_id!r}: {label} must be a non-empty file name, got {name!r}")
    if "/" in name or "\\" in name or name in (".", ".."):
        raise InvalidInputError(
            f"session {img_id!r}: {label} {name!r} must be a plain file name without folders"
        )
    return name


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise InvalidInputError(f"{path} not found; a MagicBrush folder needs {SESSIONS_FILE}") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidInputError(
            f"{path} is not valid UTF-8 JSON ({error}); fix or re-export the file"
        ) from error


def _read_captions(path: Path) -> dict[str, dict[str, str]]:
    if not path.is_file():
        logger.info("no %s in %s; turns have no captions", CAPTIONS_FILE, path.parent)
        return {}
    raw = _read_json(path)
    if not isinstance(raw, dict) or not all(isinstance(value, dict) for value in raw.values()):
        raise InvalidInputError(f"{path} must map img_id to {{output file name: caption}}")
    return raw


def _instruction(value: object, img_id: str, turn_index: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(
            f"session {img_id!r} turn {turn_index}: instruction is missing or empty; write the edit instruction"
        )
    return value.strip()


def _folder_turn(
    image_dir: Path,
    img_id: str,
    turn_index: int,
    raw_turn: object,
    captions: dict[str, str],
    previous_output: str | None,
) -> EditTurn:
    if not isinstance(raw_turn, dict):
        raise InvalidInputError(f"session {img_id!r} turn {turn_index}: expected an object, got {raw_turn!r}")
    instruction = _instruction(raw_turn.get("instruction"), img_id, turn_index)
    input_name = _check_file_name(raw_turn.get("input"), f"turn {turn_index} input", img_id)
    mask_name = _check_file_name(raw_turn.get("mask"), f"turn {turn_index} mask", img_id)
    output_name = raw_turn.get("output")
    if output_name is not None:
        output_name = _check_file_name(output_name, f"turn {turn_index} output", img_id)

    source = ImageRef(input_name, path=image_dir / input_name)
    # A later turn's input is the previous ground-truth output, which may be missing; only
    # single-turn evaluation needs it (see source_for_turn).
    if not source.available() and input_name != previous_output:
        raise InvalidInputError(f"session {img_id!r} turn {turn_index}: input image {source.path} not found")
    mask = ImageRef(mask_name, path=image_dir / mask_name)
    if not mask.available():
        raise InvalidInputError(f"session {img_id!r} turn {turn_index}: mask image {mask.path} not found")
    target = ImageRef(output_name, path=image_dir / output_name) if output_name is not None else None
    caption = captions.get(output_name) if output_name is not None else None
    return EditTurn(img_id, turn_index, instruction, source, mask, target, caption)


def _load_folder(root: Path) -> list[EditSession]:
    raw_sessions = _read_json(root / SESSIONS_FILE)
    if not isinstance(raw_sessions, dict):
        raise InvalidInputError(f"{root / SESSIONS_FILE} must map each img_id to a list of turns")
    captions = _read_captions(root / CAPTIONS_FILE)
    sessions = []
    for img_id, raw_turns in raw_sessions.items():
        _check_file_name(img_id, "img_id", img_id)
        if not isinstance(raw_turns, list) or not raw_turns:
            raise InvalidInputError(f"session {img_id!r} in {root / SESSIONS_FILE} has no turns")
        image_dir = root / IMAGES_DIR / img_id
        if not image_dir.is_dir():
            raise InvalidInputError(f"session {img_id!r}: image folder {image_dir} not found")
        turns: list[EditTurn] = []
        previous_output = None
        for turn_index, raw_turn in enumerate(raw_turns, start=1):
            turn = _folder_turn(
                image_dir, img_id, turn_index, raw_turn, captions.get(img_id, {}), previous_output
            )
            previous_output = turn.target.name if turn.target is not None else None
            turns.append(turn)
        sessions.append(EditSession(img_id, turns))
    logger.info("loaded %d MagicBrush sessions from %s", len(sessions), root)
    return sessions


def _parquet_image(value: object, name: str, parquet_file: Path) -> ImageRef | None:
    """Read a Hugging Face Image cell: a {"bytes", "path"} struct, raw bytes or null."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        return ImageRef(name, data=bytes(value))
    if isinstance(value, dict):
        data, path = value.get("bytes"), value.get("path")
        if data:
            return ImageRef(Path(path).name if path else name, data=bytes(data))
        if path:
            resolved = Path(path) if Path(path).is_absolute() else parquet_file.parent / path
            return ImageRef(Path(path).name, path=resolved)
        return None
    raise InvalidInputError(f"{parquet_file}: image cell {name} has unsupported type {type(value).__name__}")


def _parquet_turn(row: dict[str, Any], parquet_file: Path) -> EditTurn:
    img_id = row["img_id"]
    if not isinstance(img_id, str) or not img_id:
        raise InvalidInputError(f"{parquet_file}: a row has an empty or non-text img_id {img_id!r}")
    turn_index = row["turn_index"]
    if not isinstance(turn_index, int) or turn_index < 1:
        raise InvalidInputError(f"{parquet_file}: session {img_id!r} has invalid turn_index {turn_index!r}")
    instruction = _instruction(row["instruction"], img_id, turn_index)
    prefix = f"{img_id} turn {turn_index}"
    source = _parquet_image(row["source_img"], f"{prefix} source_img", parquet_file)
    mask = _parquet_image(row["mask_img"], f"{prefix} mask_img", parquet_file)
    target = _parquet_image(row["target_img"], f"{prefix} target_img", parquet_file)
    if source is None:
        raise InvalidInputError(
            f"{parquet_file}: session {img_id!r} turn {turn_index}: source_img is missing"
        )
    if mask is None:
        raise InvalidInputError(f"{parquet_file}: session {img_id!r} turn {turn_index}: mask_img is missing")
    return EditTurn(img_id, turn_index, instruction, source, mask, target, caption=None)


def _group_turns(turns: list[EditTurn]) -> list[EditSession]:
    by_id: dict[str, list[EditTurn]] = {}
    for turn in turns:
        by_id.setdefault(turn.img_id, []).append(turn)
    sessions = []
    for img_id, session_turns in by_id.items():
        session_turns.sort(key=lambda turn: turn.turn_index)
        indices = [turn.turn_index for turn in session_turns]
        if indices != list(range(1, len(indices) + 1)):
            raise InvalidInputError(
                f"session {img_id!r} has turn indices {indices}; expected 1..{len(indices)} with no gaps or repeats"
            )
        sessions.append(EditSession(img_id, session_turns))
    return sessions


def _load_parquet(files: list[Path]) -> list[EditSession]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    turns: list[EditTurn] = []
    for parquet_file in files:
        try:
            table = pq.read_table(parquet_file)
        except (OSError, pa.ArrowException) as error:
            raise InvalidInputError(f"cannot read parquet file {parquet_file} ({error})") from error
        missing = [column for column in PARQUET_COLUMNS if column not in table.column_names]
        if missing:
            raise InvalidInputError(
                f"parquet file {parquet_file} lacks the columns {missing}; MagicBrush parquet files "
                f"need {list(PARQUET_COLUMNS)}"
            )
        # NOTE: this keeps every image's encoded bytes in memory, an estimated 1 GB per 1000 turns
        # of the MagicBrush release. Load a large split a few files at a time.
        for row in table.select(list(PARQUET_COLUMNS)).to_pylist():
            turns.append(_parquet_turn(row, parquet_file))
    sessions = _group_turns(turns)
    logger.info("loaded %d MagicBrush sessions from %d parquet files", len(sessions), len(files))
    return sessions


def _resolve_layout(path: Path) -> tuple[str, Path | list[Path]]:
    """Return ("folder", root) or ("parquet", files) for a user-given path."""
    if not path.exists():
        raise InvalidInputError(f"MagicBrush data not found: {path}; check the path")
    if path.is_file():
        if path.suffix == ".parquet":
            return "parquet", [path]
        if path.name == SESSIONS_FILE:
            return "folder", path.parent
        raise InvalidInputError(f"{path} is neither {SESSIONS_FILE} nor a .parquet file")
    if (path / SESSIONS_FILE).is_file():
        return "folder", path
    parquet_files = sorted(path.glob("*.parquet")) or sorted(path.rglob("*.parquet"))
    if parquet_files:
        return "parquet", parquet_files
    # An extracted archive often wraps the data in one top-level folder.
    subfolders = [child for child in path.iterdir() if child.is_dir() and (child / SESSIONS_FILE).is_file()]
    if len(subfolders) == 1:
        return "folder", subfolders[0]
    raise InvalidInputError(
        f"no {SESSIONS_FILE} or .parquet files in {path}; point at the folder that holds {SESSIONS_FILE} "
        f"and {IMAGES_DIR}/<img_id>/, or at MagicBrush parquet files"
    )


def load_magicbrush(path: str | Path) -> list[EditSession]:
    """Load MagicBrush sessions from a folder, its edit_sessions.json, a parquet file or a parquet folder.

    Checks the layout and that every first-turn input and every mask exists; images are decoded only
    when used. Raises InvalidInputError naming the session and file for anything missing or invalid.
    """
    layout, location = _resolve_layout(Path(path))
    if layout == "folder":
        return _load_folder(location)  # type: ignore[arg-type]
    return _load_parquet(location)  # type: ignore[arg-type]


def _check_turn_images(turn: EditTurn, max_pixels: int) -> list[str]:
    """Decode one turn's images; return warnings, raise InvalidInputError for unreadable ones."""
    warnings_found: list[str] = []
    label = f"session {turn.img_id!r} turn {turn.turn_index}"
    if turn.source.available():
        source_size = turn.source.load(max_pixels).size
    else:
        source_size = None
        warnings_found.append(
            f"{label}: source {turn.source.name} is missing, so single-turn evaluation skips it"
        )
    if turn.mask is not None:
        mask = turn.mask.load_mask(max_pixels=max_pixels)
        if source_size is not None and (mask.shape[1], mask.shape[0]) != source_size:
            warnings_found.append(f"{label}: mask size differs from the source; it is resized when used")
        if float(mask.max(initial=0.0)) == 0.0:
            warnings_found.append(f"{label}: mask {turn.mask.name} marks no pixels")
    if turn.target is not None and turn.target.available():
        turn.target.load(max_pixels)
    return warnings_found


def validate_magicbrush(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> MagicBrushSummary:
    """Load a MagicBrush dataset and decode every image in it, for checking uploads.

    Raises InvalidInputError listing up to 10 problems (unreadable images, bad layout). Missing
    ground-truth outputs are not errors; they are counted and, where single-turn evaluation needs
    them, listed in `warnings`.
    """
    layout, _ = _resolve_layout(Path(path))
    sessions = load_magicbrush(path)
    problems: list[str] = []
    warnings_found: list[str] = []
    for session in sessions:
        for turn in session.turns:
            try:
                warnings_found.extend(_check_turn_images(turn, max_pixels))
            except InvalidInputError as error:
                problems.append(f"session {turn.img_id!r} turn {turn.turn_index}: {error}")
    if problems:
        listed = "; ".join(problems[:MAX_LISTED_PROBLEMS])
        more = (
            f" (and {len(problems) - MAX_LISTED_PROBLEMS} more)"
            if len(problems) > MAX_LISTED_PROBLEMS
            else ""
        )
        raise InvalidInputError(
            f"MagicBrush data at {path} has {len(problems)} unreadable images: {listed}{more}"
        )

    turns = [turn for session in sessions for turn in session.turns]
    return MagicBrushSummary(
        path=str(path),
        format=layout,
        sessions=len(sessions),
        turns=len(turns),
        turns_with_target=sum(turn.has_target for turn in turns),
        turns_with_caption=sum(turn.caption is not None for turn in turns),
        max_turns=max(len(session.turns) for session in sessions),
        img_ids=[session.img_id for session in sessions],
        warnings=warnings_found,
    )


def normalize_setting(setting: str) -> str:
    """Map "single", "single_turn" and similar spellings to SINGLE_TURN or MULTI_TURN."""
    key = setting.strip().lower().replace("_", "-")
    if key in ("single", SINGLE_TURN):
        return SINGLE_TURN
    if key in ("multi", MULTI_TURN):
        return MULTI_TURN
    raise InvalidInputError(f"unknown evaluation setting {setting!r}; use {SINGLE_TURN!r} or {MULTI_TURN!r}")


def source_for_turn(
    session: EditSession,
    turn_index: int,
    setting: str,
    previous_outputs: Sequence[Image.Image] = (),
) -> Image.Image:
    """Return the image that turn `turn_index` (1-based) edits under an evaluation setting.

    Single-turn: every turn starts from ground truth, turn 1 from the input and turn k from the
    ground-truth output of turn k - 1. A missing ground truth raises InvalidInputError here, while
    `evaluable_turns` skips such turns. Multi-turn: turn 1 starts from the input and turn k
    from the model's own output of turn k - 1, `previous_outputs[k - 2]`.
    """
    setting = normalize_setting(setting)
    if not 1 <= turn_index <= len(session.turns):
        raise InvalidInputError(
            f"session {session.img_id!r} has turns 1..{len(session.turns)}, not {turn_index}"
        )
    turn = session.turns[turn_index - 1]
    if turn_index == 1 or setting == SINGLE_TURN:
        if not turn.source.available():
            raise InvalidInputError(
                f"single-turn evaluation of session {session.img_id!r} turn {turn_index} needs the ground-truth "
                f"image {turn.source.name}, which is missing; add it or use the {MULTI_TURN} setting"
            )
        return turn.source_image()
    if len(previous_outputs) < turn_index - 1:
        raise InvalidInputError(
            f"multi-turn evaluation of session {session.img_id!r} turn {turn_index} needs the model outputs of "
            f"turns 1..{turn_index - 1}, got {len(previous_outputs)}"
        )
    return previous_outputs[turn_index - 2]


def evaluable_turns(session: EditSession, setting: str) -> list[EditTurn]:
    """List the turns that can be edited under `setting`, skipping with a WARNING those that cannot.

    Multi-turn needs only the session input, so it returns every turn. Single-turn skips turns
    whose ground-truth source (the previous turn's output) is missing.
    """
    if normalize_setting(setting) == MULTI_TURN:
        return list(session.turns)
    ready = [turn for turn in session.turns if turn.source.available()]
    skipped = [turn.turn_index for turn in session.turns if not turn.source.available()]
    if skipped:
        logger.warning(
            "session %s: skipping turns %s in %s evaluation because their ground-truth source image is missing",
            session.img_id,
            skipped,
            SINGLE_TURN,
        )
    return ready
