"""Several worker processes (WORKERS): each serves with its own model and reloads it, and the Prometheus metrics
add up every worker's requests."""

import contextlib
import json
import shutil

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.inference.helpers import encode, files
from tests.inference.test_reload import _republish_changed
from tests.waiting import wait_until


def _records(serving) -> list[dict]:
    records = []
    for path in serving.glob("*.json"):
        with contextlib.suppress(OSError, ValueError):  # being replaced right now
            records.append(json.loads(path.read_text()))
    return records


def _requests_counted(url: str) -> float:
    text = requests.get(f"{url}/metrics/prometheus", timeout=10).text
    family = next(f for f in text_string_to_metric_families(text) if f.name == "inference_http_requests")
    return sum(s.value for s in family.samples
               if s.name.endswith("_total") and s.labels["route"] == "/predict" and s.labels["status"] == "200")


def test_two_workers_each_serve_and_reload_their_model_and_metrics_add_up(start_server, tiny_artifacts, tmp_path,
                                                                           real_subset):
    artifacts, serving, metrics_dir = tmp_path / "artifacts", tmp_path / "serving", tmp_path / "prometheus"
    shutil.copytree(tiny_artifacts, artifacts)
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"stale garbage from an earlier run")
    with start_server(ARTIFACTS_DIR=artifacts, DEFAULT_MODEL_DIR=tmp_path / "none", DATA_DIR=tmp_path / "none",
                      SERVING_DIR=serving, RELOAD_INTERVAL_S="0.2", WORKERS="2",
                      PROMETHEUS_MULTIPROC_DIR=metrics_dir) as url:
        records = wait_until(lambda: len(_records(serving)) == 2 and _records(serving), "two serving records")
        assert len({record["pid"] for record in records}) == 2  # two processes, each with its model loaded
        assert not (metrics_dir / "counter_999999.db").exists()  # emptied before the workers started

        image = encode(real_subset[0][0])
        sent = 40
        with requests.Session() as session:
            for _ in range(sent):
                assert session.post(f"{url}/predict", files=files([image]), timeout=10).status_code == 200
        assert _requests_counted(url) == sent  # every worker's requests, whichever answers the scrape

        version = _republish_changed(artifacts)
        wait_until(lambda: [r["model_version"] for r in _records(serving)] == [version, version], "both reloaded")
        for _ in range(10):  # new connections land on either worker: all answer with the new model
            assert requests.post(f"{url}/predict", files=files([image]), timeout=10).json()["model_version"] == version
        text = requests.get(f"{url}/metrics/prometheus", timeout=10).text
        assert f'inference_model_info{{device="cpu",source="artifacts",version="{version}"}} 1.0' in text
    assert _records(serving) == []  # each worker removed its record when it stopped
