"""Validation of uploaded MagicBrush datasets (zip archive or parquet file) before they are stored.

The gateway may not import rl4pix_core (it pulls torch), so this module checks the same layout as
`rl4pix_core.data.magicbrush` with zipfile, pyarrow and PIL alone:

    [<folder>/]edit_sessions.json   {img_id: [{"input", "mask", "output"?, "instruction"}, ...]}
    [<folder>/]local_captions.json  optional, {img_id: {output file name: caption}}
    [<folder>/]images/<img_id>/<img_id>-input.png, -mask<k>.png, -output<k>.png

Archive checks: member names stay inside the archive root (no absolute paths, `..`, backslashes,
drive letters or symlinks) and no member is encrypted. Against zip bombs, the member count, the
total uncompressed size and the per-member compression ratio are capped, and each member is read
with a byte cap in case its header lies. Then every referenced image is decoded within the pixel
limit.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import stat
import zipfile
from typing import IO, Any

from service.errors import ApiError
from service.images import open_checked_image
from service.settings import Settings

logger = logging.getLogger(__name__)

SESSIONS_FILE = "edit_sessions.json"
CAPTIONS_FILE = "local_captions.json"
PARQUET_COLUMNS = ("img_id", "turn_index", "source_img", "mask_img", "instruction")
MAX_JSON_BYTES = 64 * 1024 * 1024
# Small members (JSON, tiny masks) compress far better than photos without being bombs.
RATIO_CHECK_MIN_BYTES = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class DatasetSummary:
    format: str
    session_count: int
    turn_count: int
    target_count: int  # turns with a ground-truth output image


def _invalid(message: str, code: str = "invalid_dataset") -> ApiError:
    return ApiError(422, code, f"file: {message}", "file")


def detect_format(head: bytes) -> str:
    if head.startswith(b"PK\x03\x04"):
        return "magicbrush-zip"
    if head.startswith(b"PAR1"):
        return "parquet"
    if not head:
        raise ApiError(400, "empty_file", "file: the upload is empty", "file")
    raise _invalid("not a zip archive or a parquet file")


def _check_member_name(info: zipfile.ZipInfo) -> None:
    name = info.filename
    if "\x00" in name or "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise _invalid(f"archive member {name!r} has an absolute or non-POSIX path", "unsafe_archive")
    if ".." in name.split("/"):
        raise _invalid(f"archive member {name!r} leaves the archive root", "unsafe_archive")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise _invalid(f"archive member {name!r} is a symbolic link", "unsafe_archive")
    if info.flag_bits & 0x1:
        raise _invalid(f"archive member {name!r} is encrypted", "unsafe_archive")


def _check_archive_sizes(members: list[zipfile.ZipInfo], settings: Settings) -> None:
    if len(members) > settings.max_dataset_members:
        raise _invalid(
            f"{len(members)} archive members, above the limit of {settings.max_dataset_members}", "zip_bomb"
        )
    total = 0
    for info in members:
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_CHECK_MIN_BYTES and ratio > settings.max_compression_ratio:
            raise _invalid(
                f"archive member {info.filename!r} expands {ratio:.0f}x, above the limit of "
                f"{settings.max_compression_ratio:.0f}x",
                "zip_bomb",
            )
    if total > settings.max_dataset_uncompressed_bytes:
        raise _invalid(
            f"archive expands to {total} bytes, above the limit of {settings.max_dataset_uncompressed_bytes}",
            "zip_bomb",
        )


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes:
    """Read a member, failing when it yields more bytes than its header declares or than `cap`."""
    limit = min(info.file_size, cap)
    try:
        with archive.open(info) as stream:
            data = stream.read(limit + 1)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as error:
        raise _invalid(f"archive member {info.filename!r} cannot be read ({error})") from error
    if len(data) > limit:
        raise _invalid(f"archive member {info.filename!r} is larger than declared or allowed", "zip_bomb")
    return data


def _find_root(names: set[str]) -> str:
    """Return the folder prefix ('' or 'name/') that contains edit_sessions.json."""
    if SESSIONS_FILE in names:
        return ""
    candidates = [name for name in names if name.count("/") == 1 and name.endswith("/" + SESSIONS_FILE)]
    if len(candidates) == 1:
        return candidates[0][: -len(SESSIONS_FILE)]
    raise _invalid(
        f"no {SESSIONS_FILE} at the archive root or in one top-level folder; zip the folder that contains "
        f"{SESSIONS_FILE} and images/<img_id>/"
    )


def _load_json(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Any:
    data = _read_member(archive, info, MAX_JSON_BYTES)
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _invalid(f"{info.filename} is not valid UTF-8 JSON ({error})") from error


def _plain_name(value: object, label: str) -> str:
    if (
        not isinstance(value, str)
        or not value.strip()
        or "/" in value
        or "\\" in value
        or value in (".", "..")
    ):
        raise _invalid(f"{label} must be a plain file name, got {value!r}")
    return value


def _check_image_member(
    archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], path: str, label: str, settings: Settings
) -> None:
    info = members.get(path)
    if info is None:
        raise _invalid(f"{label} {path} is missing from the archive")
    data = _read_member(archive, info, settings.max_upload_bytes * 4)
    try:
        open_checked_image(data, "file", settings.max_image_pixels)
    except ApiError as error:
        raise _invalid(f"{label} {path}: {error.message.removeprefix('file: ')}") from error


def _validate_turn(
    archive: zipfile.ZipFile,
    members: dict[str, zipfile.ZipInfo],
    folder: str,
    img_id: str,
    index: int,
    turn: object,
    previous_output: str | None,
    settings: Settings,
) -> tuple[str | None, bool]:
    """Check one turn; return its output file name and whether the archive contains that image."""
    label = f"session {img_id!r} turn {index}"
    if not isinstance(turn, dict):
        raise _invalid(f"{label}: expected an object, got {type(turn).__name__}")
    instruction = turn.get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        raise _invalid(f"{label}: instruction is missing or empty")
    input_name = _plain_name(turn.get("input"), f"{label} input")
    mask_name = _plain_name(turn.get("mask"), f"{label} mask")
    output_name = turn.get("output")
    if output_name is not None:
        output_name = _plain_name(output_name, f"{label} output")
    # A later turn's input is the previous ground-truth output, which MagicBrush may omit.
    if folder + input_name in members or input_name != previous_output:
        _check_image_member(archive, members, folder + input_name, f"{label} input", settings)
    _check_image_member(archive, members, folder + mask_name, f"{label} mask", settings)
    has_target = output_name is not None and folder + output_name in members
    if has_target:
        _check_image_member(archive, members, folder + output_name, f"{label} output", settings)
    return output_name, has_target


def _validate_sessions(
    archive: zipfile.ZipFile,
    members: dict[str, zipfile.ZipInfo],
    root: str,
    sessions: object,
    settings: Settings,
) -> DatasetSummary:
    if not isinstance(sessions, dict) or not sessions:
        raise _invalid(f"{SESSIONS_FILE} must map each img_id to a non-empty list of turns")
    turn_count = 0
    target_count = 0
    for img_id, turns in sessions.items():
        _plain_name(img_id, "img_id")
        if not isinstance(turns, list) or not turns:
            raise _invalid(f"session {img_id!r} has no turns")
        folder = f"{root}images/{img_id}/"
        previous_output = None
        for index, turn in enumerate(turns, start=1):
            previous_output, has_target = _validate_turn(
                archive, members, folder, img_id, index, turn, previous_output, settings
            )
            target_count += has_target
        turn_count += len(turns)
    return DatasetSummary(
        format="magicbrush-zip",
        session_count=len(sessions),
        turn_count=turn_count,
        target_count=target_count,
    )


def validate_zip(stream: IO[bytes], settings: Settings) -> DatasetSummary:
    """Check a MagicBrush zip archive; raise ApiError (4xx) naming the problem."""
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise _invalid(f"not a readable zip archive ({error})") from error
    with archive:
        infos = archive.infolist()
        for info in infos:
            _check_member_name(info)
        _check_archive_sizes(infos, settings)
        members = {info.filename: info for info in infos if not info.is_dir()}
        root = _find_root(set(members))
        sessions = _load_json(archive, members[root + SESSIONS_FILE])
        captions_info = members.get(root + CAPTIONS_FILE)
        if captions_info is not None and not isinstance(_load_json(archive, captions_info), dict):
            raise _invalid(f"{CAPTIONS_FILE} must map img_id to {{output file name: caption}}")
        return _validate_sessions(archive, members, root, sessions, settings)


def _parquet_image_bytes(value: object, label: str) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, dict) and value.get("bytes"):
        return bytes(value["bytes"])
    # A parquet cell that names a file path cannot be resolved once the file is uploaded alone.
    raise _invalid(f"{label} contains no embedded image bytes")


def _validate_parquet_row(row: dict[str, Any], settings: Settings) -> tuple[str, int, bool]:
    """Check one row; return its img_id, turn index and whether it has a target image."""
    img_id, turn_index = row.get("img_id"), row.get("turn_index")
    if not isinstance(img_id, str) or not img_id:
        raise _invalid(f"a row has an empty or non-text img_id {img_id!r}")
    if not isinstance(turn_index, int) or turn_index < 1:
        raise _invalid(f"session {img_id!r} has an invalid turn_index {turn_index!r}")
    label = f"session {img_id!r} turn {turn_index}"
    has_target = False
    instruction = row.get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        raise _invalid(f"{label}: instruction is missing or empty")
    for column, required in (("source_img", True), ("mask_img", True), ("target_img", False)):
        data = _parquet_image_bytes(row.get(column), f"{label} {column}")
        if data is None:
            if required:
                raise _invalid(f"{label}: {column} is missing")
            continue
        try:
            open_checked_image(data, "file", settings.max_image_pixels)
        except ApiError as error:
            raise _invalid(f"{label} {column}: {error.message.removeprefix('file: ')}") from error
        has_target = has_target or column == "target_img"
    return img_id, turn_index, has_target


def validate_parquet(stream: IO[bytes], settings: Settings) -> DatasetSummary:
    """Check a MagicBrush parquet file (one row per turn); raise ApiError (4xx) naming the problem."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(stream)
        columns = parquet.schema_arrow.names
    except (OSError, pa.ArrowException, ValueError) as error:
        raise _invalid(f"not a readable parquet file ({error})") from error
    missing = [column for column in PARQUET_COLUMNS if column not in columns]
    if missing:
        raise _invalid(
            f"parquet file lacks the columns {missing}; MagicBrush parquet needs {list(PARQUET_COLUMNS)}"
        )
    columns_to_read = [column for column in (*PARQUET_COLUMNS, "target_img") if column in columns]
    turns: dict[str, set[int]] = {}
    target_count = 0
    try:
        for batch in parquet.iter_batches(batch_size=64, columns=columns_to_read):
            for row in batch.to_pylist():
                img_id, turn_index, has_target = _validate_parquet_row(row, settings)
                target_count += has_target
                turns.setdefault(img_id, set()).add(turn_index)
    except (OSError, pa.ArrowException) as error:
        raise _invalid(f"parquet data cannot be read ({error})") from error
    if not turns:
        raise _invalid("parquet file has no rows")
    for img_id, indices in turns.items():
        if sorted(indices) != list(range(1, len(indices) + 1)):
            raise _invalid(
                f"session {img_id!r} has turn indices {sorted(indices)}; expected 1..{len(indices)}"
            )
    return DatasetSummary(
        format="parquet",
        session_count=len(turns),
        turn_count=sum(map(len, turns.values())),
        target_count=target_count,
    )


def validate_dataset(stream: IO[bytes], settings: Settings) -> DatasetSummary:
    """Detect the format from the first bytes and validate the whole upload."""
    stream.seek(0)
    dataset_format = detect_format(stream.read(4))
    stream.seek(0)
    if dataset_format == "parquet":
        summary = validate_parquet(stream, settings)
    else:
        summary = validate_zip(stream, settings)
    logger.info(
        "dataset validated",
        extra={
            "format": summary.format,
            "sessions": summary.session_count,
            "turns": summary.turn_count,
            "targets": summary.target_count,
        },
    )
    return summary
