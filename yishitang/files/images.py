"""Photos: refuse decompression bombs from the header alone, make a small JPEG thumbnail at upload.

Pillow reads only the header on `open`, so a PNG claiming 100 000 x 100 000 pixels is refused
before a single row is decoded. JPEGs decode at a reduced scale (`draft`), so even a large phone
photo costs a few MB of memory for its thumbnail.
"""

from __future__ import annotations

import io
import logging
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InvalidInput

log = logging.getLogger(__name__)

THUMBNAIL_PX = 320  # longest side
MAX_PIXELS = 50_000_000  # a 50-megapixel phone photo; anything larger is refused
THUMBNAIL_QUALITY = 80


class ImageTooLarge(InvalidInput):
    error, message = "image_too_large", "图片像素过大，请压缩后再上传"


def thumbnail(data: bytes) -> tuple[bytes, int, int] | None:
    """(JPEG bytes, width, height of the original), or None when Pillow cannot read the image
    (it is stored all the same, without a thumbnail); a bomb raises ImageTooLarge."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ImageTooLarge(errors={"file": [f"图片不能超过 {MAX_PIXELS // 1_000_000} 百万像素"]})
            image.draft("RGB", (THUMBNAIL_PX, THUMBNAIL_PX))  # JPEG: decode at 1/2, 1/4 or 1/8 scale
            image = ImageOps.exif_transpose(image)
            image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            small = _flatten(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLarge(errors={"file": [f"图片不能超过 {MAX_PIXELS // 1_000_000} 百万像素"]}) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt
        log.info("no thumbnail: %s", exc)
        return None
    out = io.BytesIO()
    small.save(out, "JPEG", quality=THUMBNAIL_QUALITY, optimize=True)
    return out.getvalue(), width, height


def _flatten(image: Image.Image) -> Image.Image:
    """RGB for JPEG: transparency over white, as a phone shows it."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")
