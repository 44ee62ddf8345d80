"""Photos sent from phones (a disinfection job, a task's report, a group's QR code): at most ``MAX_BYTES``, and
really an image — Pillow opens and verifies it — of a format phones send. Stored under MEDIA_ROOT by the model's
FileField, with the extension of what it really is."""

from __future__ import annotations

from bihuan.core.errors import Refused

MAX_BYTES = 8 * 1024 * 1024
FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif"}
MAX_PIXELS = 40_000_000


def checked_extension(upload, field: str = "photo") -> str:
    """The file's extension if ``upload`` is an acceptable image; else ``Refused(field, why)``."""
    from PIL import Image, UnidentifiedImageError

    size = getattr(upload, "size", None)
    if size is not None and size > MAX_BYTES:
        raise Refused(field, f"照片不能超过 {MAX_BYTES // 1024 // 1024} MB")
    upload.seek(0)
    try:
        with Image.open(upload) as image:
            kind = image.format
            if image.width * image.height > MAX_PIXELS:
                raise Refused(field, "照片像素过大")
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise Refused(field, "请上传照片（JPEG、PNG、WebP 或 GIF）") from exc
    finally:
        upload.seek(0)
    if kind not in FORMATS:
        raise Refused(field, "请上传照片（JPEG、PNG、WebP 或 GIF）")
    return FORMATS[kind]
