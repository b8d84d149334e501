"""Pictures as files hold them: their header (`header`) and their decoding into the frame the
reader takes (`decode`), shared by the service's uploads, the command line and the file camera."""

from device.picture.decode import (
    OPENCV_FORMATS,
    PILLOW_FORMATS,
    PictureError,
    decode_picture,
    file_pixel_limit,
    looks_like,
    read_picture,
    small_picture_header,
)
from device.picture.header import DamagedHeaderError, ImageHeader, read_header

__all__ = [
    "OPENCV_FORMATS", "PILLOW_FORMATS", "DamagedHeaderError", "ImageHeader", "PictureError",
    "decode_picture", "file_pixel_limit", "looks_like", "read_header", "read_picture",
    "small_picture_header",
]
