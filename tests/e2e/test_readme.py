"""The README's commands, run for real: its curl examples against a live stack, and its make targets."""

import json
import re
import subprocess

from tests.e2e.stack import wait_for_samples
from tests.processes import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def curl_examples() -> list[str]:
    block = re.search(r"<!-- readme-curl.*?-->\n```bash\n(.*?)```\n<!-- /readme-curl -->", README, re.S)
    assert block, "README.md lost its curl examples block"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


def test_readme_has_curl_examples_for_every_endpoint():
    text = "\n".join(curl_examples())
    for endpoint in ("/predict", "top_k=", "pixels", "instances", "/metrics", "/samples/random", "/samples/",
                     "/health", "/ready", "/metrics/prometheus", "/training", ":5000/sample", ":5000/predict",
                     "/v2/models/fashion-mnist", "/v2/models/fashion-mnist/infer", ":8000/models", "/models/pin"):
        assert endpoint in text, endpoint


def test_every_curl_example_works_against_the_real_services(stack, tmp_path):
    wait_for_samples(stack.api)
    for line in curl_examples():
        command = line.replace("http://127.0.0.1:8000", stack.api).replace("http://127.0.0.1:5000", stack.page)
        result = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=tmp_path, capture_output=True,
                                timeout=60)
        assert result.returncode == 0, f"{line}\n{result.stderr.decode()}"
        output = result.stdout.decode()
        if "> sample.png" in line:
            assert (tmp_path / "sample.png").read_bytes().startswith(b"\x89PNG")
        elif "prometheus" in line:
            assert "# TYPE" in output
        else:
            assert "error" not in json.loads(output), line


def test_make_train_and_make_default_model(tiny_data_dir, tmp_path):
    env_args = [f"DATA_DIR={tiny_data_dir}", f"ARTIFACTS_DIR={tmp_path / 'artifacts'}",
                f"DEFAULT_MODEL_DIR={tmp_path / 'default'}"]
    train = subprocess.run(["make", "-s", "train", *env_args, "ARGS=--epochs 1 --val-size 100 --no-download"],
                           cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, train.stdout + train.stderr
    export = subprocess.run(["make", "-s", "default-model", *env_args], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=120)
    assert export.returncode == 0, export.stdout + export.stderr
    published = json.loads((tmp_path / "artifacts" / "latest.json").read_text())
    assert json.loads((tmp_path / "default" / "latest.json").read_text())["model_version"] == \
        published["model_version"]
