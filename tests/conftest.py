"""Fixtures shared by all tests: tiny IDX data, a tiny trained model, the real data, a private Redis."""

import os
from pathlib import Path

import pytest

from services.trainer.config import TrainSettings
from services.trainer.signals import StopFlag
from services.trainer.train import run
from tests.idx import write_fashion_mnist
from tests.processes import REPO_ROOT, RedisServer

REAL_DATA_DIR = Path(os.environ.get("REAL_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
DEFAULT_MODEL_DIR = REPO_ROOT / "models" / "default"


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory) -> Path:
    """FashionMNIST-format files with 600 training and 200 test images, made by the test."""
    return write_fashion_mnist(tmp_path_factory.mktemp("tiny-data"), train_count=600, test_count=200)


def tiny_settings(data_dir: Path, artifacts_dir: Path, **overrides) -> TrainSettings:
    # precision="fp32": "auto" picks bf16 on CPUs with native bf16 (AVX512-BF16, AMX), so a test would record and
    # compute differently on different machines; test_precision_setting_is_applied_and_recorded covers bf16.
    values = dict(data_dir=data_dir, artifacts_dir=artifacts_dir, download=False, epochs=2, val_size=100,
                  seed=7, device="cpu", num_threads=1, precision="fp32")
    return TrainSettings(**{**values, **overrides})


@pytest.fixture(scope="session")
def tiny_artifacts(tiny_data_dir, tmp_path_factory) -> Path:
    """An artifacts directory holding a model trained for 2 epochs on the tiny data (read-only for tests)."""
    artifacts = tmp_path_factory.mktemp("tiny-artifacts")
    assert run(tiny_settings(tiny_data_dir, artifacts), StopFlag()) == 0
    return artifacts


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    raw = REAL_DATA_DIR / "FashionMNIST" / "raw"
    assert raw.is_dir(), f"real FashionMNIST expected in {raw} (set REAL_DATA_DIR)"
    return REAL_DATA_DIR


@pytest.fixture(scope="session")
def default_model_dir() -> Path:
    assert (DEFAULT_MODEL_DIR / "latest.json").is_file(), "the default model is missing from models/default"
    return DEFAULT_MODEL_DIR


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A private redis-server for the whole session (tests use their own key prefixes)."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()
