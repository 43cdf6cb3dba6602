"""Fixtures for the inference tests: real servers (``python -m services.inference``) and real test images."""

from collections.abc import Callable, Iterator

import numpy as np
import pytest

from shared.data import Split, load_split
from tests.processes import inference_server


@pytest.fixture(scope="session")
def start_server(tmp_path_factory) -> Callable:
    log_dir = tmp_path_factory.mktemp("inference-logs")
    return lambda **env: inference_server(log_dir, **env)


@pytest.fixture(scope="session")
def default_server(start_server, default_model_dir, real_data_dir, tmp_path_factory) -> Iterator[str]:
    """Serves the shipped default model (ARTIFACTS_DIR empty) with the real test images for /samples."""
    empty_artifacts = tmp_path_factory.mktemp("no-artifacts")
    with start_server(ARTIFACTS_DIR=empty_artifacts, DEFAULT_MODEL_DIR=default_model_dir,
                      DATA_DIR=real_data_dir, THREADS="1") as url:
        yield url


@pytest.fixture(scope="session")
def real_test_split(real_data_dir) -> Split:
    return load_split(real_data_dir, train=False, download=False)


@pytest.fixture(scope="session")
def real_subset(real_test_split) -> tuple[np.ndarray, np.ndarray]:
    """300 test images (a fixed random choice across the split) and their labels, as numpy."""
    indices = np.random.default_rng(20240601).choice(len(real_test_split), size=300, replace=False)
    return real_test_split.images.numpy()[indices], real_test_split.labels.numpy()[indices]

