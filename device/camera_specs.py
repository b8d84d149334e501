"""What `--camera` / `DIGITS_CAMERA` may say, checked without opening (or importing) anything.

A spec that cannot work is refused here, at start-up, with the spelling that would: the
service exits with one line instead of retrying a camera that can never open.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SPEC_FORMS = (
    "auto, picamera2, opencv:0 (a USB camera), opencv:/path/video.mp4, opencv:rtsp://host/stream, "
    "file:/path/image_or_folder or none (uploads only)"
)
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".gif", ".avif"}
)
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp",
     ".ts", ".mjpeg", ".mjpg", ".h264"}
)
KINDS = ("auto", "picamera2", "opencv", "file", "none")


@dataclass(frozen=True)
class CameraSpec:
    kind: str  # one of KINDS, or "python" (a developer's own camera; the service only)
    arg: str  # after the colon: a device index, a path or URL; "" for the bare kinds


def parse_camera_spec(spec: str, *, allow_python: bool = False) -> CameraSpec:
    """The spec's kind and argument; ValueError (saying what would work) for one that cannot."""
    text = spec.strip()
    kind, colon, arg = text.partition(":")
    arg = arg.strip()  # "opencv: 0" is opencv:0
    if kind == "python" and allow_python and arg:
        return CameraSpec(kind, arg)
    bare = kind in {"auto", "picamera2", "none"}
    if kind not in KINDS or (bare and colon) or (not bare and not arg):
        raise ValueError(f"unknown camera {spec!r}; use {SPEC_FORMS}")
    if kind == "file":
        _check_still_images(arg)
    return CameraSpec(kind, arg)


def images_in(folder: Path) -> list[Path]:
    """The still images in a folder, in name order (what file: and predict DIR read)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def no_image_at(path: Path) -> str:
    """Why a path that is neither a file nor a folder gives no image (what file: and predict
    say of it)."""
    if path.exists():  # a pipe, a device such as /dev/null, a socket
        return "not a regular file or folder (a pipe or a device); name an image or a folder"
    return "no such file or folder"


def no_images_in(folder: Path | str) -> str:
    return f"the folder {folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})"


def _check_still_images(arg: str) -> None:
    path = Path(arg)
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        raise ValueError(
            f"file:{arg} is a video, and file: reads still images; for a video use opencv:{arg}"
        )
    # A path that does not exist yet is allowed: the camera is retried until it appears.
    try:
        is_file = path.is_file()
    except OSError as exc:  # a folder on the way the service's user may not enter
        raise ValueError(f"file:{arg}: {exc.strerror or exc}; give the service's user read "
                         "access to it") from None
    if is_file and suffix not in IMAGE_SUFFIXES:
        kinds = ", ".join(sorted(IMAGE_SUFFIXES))
        raise ValueError(
            f"file:{arg} is not an image ({kinds}); file: reads still images or a folder of "
            f"them; a video is opencv:{arg}"
        )
