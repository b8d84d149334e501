"""Pictures as files hold them: their header (`header`) and their decoding into the frame the
reader takes (`decode`), shared by the service's uploads, the command line and the file camera."""

from device.picture.decode import (
    Decoded,
    PictureError,
    PixelLimit,
    decode_for_reading,
    decoded_pixels,
    looks_like,
    picture_header,
    read_picture,
    read_picture_for_reading,
    small_picture_header,
)
from device.picture.header import ImageHeader, read_header

__all__ = [
    "Decoded", "ImageHeader", "PictureError", "PixelLimit", "decode_for_reading",
    "decoded_pixels", "looks_like", "picture_header", "read_header", "read_picture",
    "read_picture_for_reading",
    "small_picture_header",
]
