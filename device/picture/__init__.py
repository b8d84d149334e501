"""Pictures as files hold them: their header (`header`) and their decoding into the frame the
reader takes (`decode`), shared by the service's uploads, the command line and the file camera."""

from device.picture.decode import PictureError, decode_picture, read_picture, small_picture_header
from device.picture.header import ImageHeader, read_header

__all__ = [
    "ImageHeader", "PictureError", "decode_picture", "read_header", "read_picture",
    "small_picture_header",
]
