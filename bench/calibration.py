"""Calibration measured from the probabilities the API returns (``python -m bench calibration``).

Two real ``python -m services.inference`` processes: one serves the model (BENCH_MODEL_DIR, by default the shipped
models/default) as published, with its temperature; the other the same checkpoint with the temperature taken out,
which is how it served before calibration (T = 1). All 10,000 test images go to each as JSON ``instances``
(CHUNK per request, ``top_k=10`` so every class's probability comes back); ECE (15 equal-width bins), NLL, mean
confidence and accuracy are computed from the answers. Goal (issue 8): ECE <= 1.0 % after calibration.
"""

import tempfile
from pathlib import Path

import httpx
import numpy as np

from bench.common import data_dir, model_dir, save_result
from shared.artifacts import publish_model, read_manifest
from shared.calibration_measures import calibration_summary
from shared.checkpoint import load_checkpoint
from shared.data import load_split
from tests.processes import inference_server

CHUNK = 250
GOAL_ECE = 0.01


def served_probabilities(url: str, images: np.ndarray) -> np.ndarray:
    """(N, 10) probabilities as /predict returns them for uint8 ``images`` (N, 28, 28)."""
    rows = []
    with httpx.Client(timeout=120) as client:
        for start in range(0, len(images), CHUNK):
            response = client.post(f"{url}/predict?top_k=10", json={"instances": images[start:start + CHUNK].tolist()})
            response.raise_for_status()
            for prediction in response.json()["predictions"]:
                row = np.zeros(10)
                for item in prediction["top_k"]:
                    row[item["class_id"]] = item["probability"]
                rows.append(row)
    return np.stack(rows)


def api_calibration(url: str, images: np.ndarray, labels: np.ndarray) -> dict:
    """ECE, NLL, mean confidence, accuracy and reliability bins of what ``url`` answers for these images."""
    return calibration_summary(served_probabilities(url, images), labels)


def uncalibrated_twin(source: Path, target: Path) -> Path:
    """``target`` publishes the checkpoint of ``source`` without its temperature (served as T = 1)."""
    published = read_manifest(source)
    data = dict(load_checkpoint(published.checkpoint_path).data)
    data.pop("temperature", None)
    data["model_version"] += "-uncalibrated"
    publish_model(target, data, {"note": "the benchmark's uncalibrated copy"})
    return target


def main() -> None:
    split = load_split(data_dir(), train=False, download=False)
    images, labels = split.images.numpy(), split.labels.numpy()
    workdir = Path(tempfile.mkdtemp(prefix="bench-calibration-"))
    rows, served = [], {}
    for name, model in (("before: same weights, no temperature (T = 1)", uncalibrated_twin(model_dir(),
                                                                                           workdir / "uncalibrated")),
                        ("after: as published", model_dir())):
        env = {"ARTIFACTS_DIR": workdir / "no-artifacts", "DEFAULT_MODEL_DIR": model, "DATA_DIR": workdir / "no-data"}
        with inference_server(workdir, **env) as url:
            served[name] = httpx.get(f"{url}/metrics", timeout=10).json()["model"]
            summary = api_calibration(url, images, labels)
        rows.append({"probabilities from /predict": name, "temperature": served[name]["temperature"],
                     "images": summary["images"], "ece": summary["ece"], "nll": summary["nll"],
                     "mean_confidence": summary["mean_confidence"], "accuracy": summary["accuracy"],
                     "reliability": summary["reliability"]})
    after = rows[-1]
    goal = f"{'PASS' if after['ece'] <= GOAL_ECE else 'MISS'}  test ECE from the API {after['ece']:.2%} (<= 1.0%)"
    table = [{key: value for key, value in row.items() if key != "reliability"} for row in rows]
    save_result("calibration", table, goal=goal, model_version=served[after["probabilities from /predict"]]["version"],
                bins=len(after["reliability"]), reliability={row["probabilities from /predict"]: row["reliability"]
                                                              for row in rows})
    print(goal)


if __name__ == "__main__":
    main()
