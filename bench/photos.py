"""Photos through the upload path against the raw pixels of the same images (``python -m bench photos``).

BENCH_PHOTOS test images (default 2,000, a fixed random choice across the 10,000) are turned into photo-like JPEG
uploads, once per transformation in ``bench.photo_synthesis.TRANSFORMATIONS`` (light and grey backgrounds,
gradients, JPEG quality 60-90, upscaling, off-centre with margins, 30-50 % of the frame, rotations, noise, colour,
the data set's own dark background, and all at once). Each set goes to a real ``python -m services.inference``
serving the default model, as multipart uploads (FILES_PER_REQUEST per request), and its accuracy is compared with
the accuracy of the same images sent as raw pixels (JSON). Goal (issue 8): every transformation within 3 points of
the raw-pixel accuracy. ``prepare_ms`` is the median time of ``decode_picture`` (decode + prepare) per photo, in
process, for scale.
"""

import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from bench.common import data_dir, model_dir, save_result
from bench.photo_synthesis import TRANSFORMATIONS, photo
from services.inference.app.picture_decoding import decode_picture
from shared.data import load_split
from tests.processes import inference_server

IMAGES = int(os.environ.get("BENCH_PHOTOS", "2000"))
FILES_PER_REQUEST = 16
GOAL_POINTS = 3.0


def chosen_images(count: int, seed: int = 20261129) -> tuple[np.ndarray, np.ndarray]:
    """``count`` real test images and their labels, spread over the whole test split."""
    split = load_split(data_dir(), train=False, download=False)
    indices = np.random.default_rng(seed).choice(len(split), size=count, replace=False)
    return split.images.numpy()[indices], split.labels.numpy()[indices]


def photos(images: np.ndarray, name: str) -> list[bytes]:
    """One JPEG per image; image ``i`` of transformation ``name`` is the same on every run."""
    look = TRANSFORMATIONS[name]
    return [photo(pixels, look, np.random.default_rng([i, *name.encode()])) for i, pixels in enumerate(images)]


def predicted_from_pixels(client: httpx.Client, url: str, images: np.ndarray) -> np.ndarray:
    classes = []
    for start in range(0, len(images), 250):
        response = client.post(f"{url}/predict", json={"instances": images[start:start + 250].tolist()})
        response.raise_for_status()
        classes += [prediction["class_id"] for prediction in response.json()["predictions"]]
    return np.array(classes)


def predicted_from_uploads(client: httpx.Client, url: str, uploads: list[bytes]) -> np.ndarray:
    """The class /predict answers for each upload; -1 where it refused the picture (counted as wrong)."""
    classes = []
    for start in range(0, len(uploads), FILES_PER_REQUEST):
        chunk = uploads[start:start + FILES_PER_REQUEST]
        files = [("file", (f"photo-{start + i}.jpg", data, "image/jpeg")) for i, data in enumerate(chunk)]
        response = client.post(f"{url}/predict", files=files)
        if response.status_code == 422 and response.json()["error"] == "no_object_found":
            classes += [_one_by_one(client, url, data) for data in chunk]  # find which one was refused
            continue
        response.raise_for_status()
        body = response.json()
        classes += [p["class_id"] for p in body["predictions"]] if "predictions" in body else [body["class_id"]]
    return np.array(classes)


def _one_by_one(client: httpx.Client, url: str, data: bytes) -> int:
    response = client.post(f"{url}/predict", files={"file": ("photo.jpg", data, "image/jpeg")})
    return response.json()["class_id"] if response.status_code == 200 else -1


def compare(url: str, images: np.ndarray, labels: np.ndarray, names: list[str]) -> list[dict]:
    """One row per transformation: accuracy of its photos through /predict next to the raw-pixel accuracy."""
    rows = []
    with httpx.Client(timeout=300) as client:
        raw_accuracy = float((predicted_from_pixels(client, url, images) == labels).mean())
        for name in names:
            uploads = photos(images, name)
            predicted = predicted_from_uploads(client, url, uploads)
            accuracy = float((predicted == labels).mean())
            rows.append({"transformation": name, "images": len(images), "raw_pixel_accuracy": raw_accuracy,
                         "photo_accuracy": accuracy, "points_below_raw": round(100 * (raw_accuracy - accuracy), 2),
                         "refused": int((predicted == -1).sum()), "prepare_ms": _prepare_ms(uploads[:100]),
                         "mean_upload_kb": round(statistics.fmean(len(data) for data in uploads) / 1024, 1)})
    return rows


def _prepare_ms(uploads: list[bytes]) -> float:
    times = []
    for data in uploads:
        started = time.perf_counter()
        with contextlib.suppress(ValueError):  # a refused picture costs its time too
            decode_picture(data, 16_000_000)
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def main() -> None:
    images, labels = chosen_images(IMAGES)
    workdir = Path(tempfile.mkdtemp(prefix="bench-photos-"))
    env = {"ARTIFACTS_DIR": workdir / "no-artifacts", "DEFAULT_MODEL_DIR": model_dir(), "DATA_DIR": workdir}
    with inference_server(workdir, **env) as url:
        version = httpx.get(f"{url}/ready", timeout=10).json()["model_version"]
        rows = compare(url, images, labels, list(TRANSFORMATIONS))
    worst = max(row["points_below_raw"] for row in rows)
    goal = (f"{'PASS' if worst <= GOAL_POINTS else 'MISS'}  every transformation within {GOAL_POINTS:g} points of "
            f"the raw-pixel accuracy (worst: {worst:.2f} points below)")
    save_result("photos", rows, goal=goal, model_version=version)
    print(goal)


if __name__ == "__main__":
    main()
