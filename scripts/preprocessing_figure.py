"""Draw docs/preprocessing.png: what the upload path does to a photo (the picture in docs/api.md).

    .venv/bin/python scripts/preprocessing_figure.py [--output docs/preprocessing.png]

Each row: a photo-like upload made from a real test image (bench/photo_synthesis.py), with the object box the
preparation found drawn on it; the square crop around that box; the 28x28 the model sees (enlarged with NEAREST);
and the test image itself, for comparison. Uses the same ``decode_picture`` as the API.
"""

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from bench.common import data_dir
from bench.photo_synthesis import TRANSFORMATIONS, photo
from services.inference.app.picture_decoding import decode_picture
from shared.data import load_split

ROWS = (("all_at_once", 12), ("grey_background", 1), ("colour", 26))  # (look, test image index)
CELL, GAP, LABEL = 220, 14, 26
COLUMNS = ("the upload (box found)", "the crop", "what the model sees", "the test image")


def row_cells(pixels: np.ndarray, look: str) -> list[Image.Image]:
    data = photo(pixels, TRANSFORMATIONS[look], np.random.default_rng(5))
    upload = Image.open(io.BytesIO(data)).convert("RGB")
    prepared = decode_picture(data, 16_000_000)
    x0, y0, x1, y1 = prepared.box
    side = max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    crop = upload.crop((round(cx - side / 2), round(cy - side / 2), round(cx + side / 2), round(cy + side / 2)))
    boxed = upload.copy()
    ImageDraw.Draw(boxed).rectangle((x0, y0, x1, y1), outline=(230, 40, 40), width=max(2, upload.width // 150))
    seen = Image.fromarray(prepared.pixels).resize((CELL, CELL), Image.Resampling.NEAREST).convert("RGB")
    original = Image.fromarray(pixels).resize((CELL, CELL), Image.Resampling.NEAREST).convert("RGB")
    return [ImageOps.pad(boxed, (CELL, CELL), color=(255, 255, 255)), crop.resize((CELL, CELL)), seen, original]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=Path("docs/preprocessing.png"))
    args = parser.parse_args()
    split = load_split(data_dir(), train=False, download=False)
    width = len(COLUMNS) * CELL + (len(COLUMNS) + 1) * GAP
    height = LABEL + len(ROWS) * (CELL + GAP) + GAP
    figure = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(figure)
    for column, title in enumerate(COLUMNS):
        draw.text((GAP + column * (CELL + GAP), 8), title, fill=(40, 40, 60))
    for row, (look, index) in enumerate(ROWS):
        for column, cell in enumerate(row_cells(split.images[index].numpy(), look)):
            figure.paste(cell, (GAP + column * (CELL + GAP), LABEL + row * (CELL + GAP)))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    figure.save(args.output, optimize=True)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
