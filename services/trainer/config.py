"""Trainer settings: environment variables, each with a matching command-line flag (``EPOCHS`` / ``--epochs``)."""

from pathlib import Path
from typing import Literal

import torch
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.device import has_fast_bf16


class TrainSettings(BaseSettings):
    model_config = SettingsConfigDict(
        cli_prog_name="python -m services.trainer",
        cli_kebab_case=True,
        cli_implicit_flags=True,
        extra="ignore",
    )

    data_dir: Path = Field(Path("data"), description="torchvision root holding FashionMNIST/raw/")
    artifacts_dir: Path = Field(Path("artifacts"), description="where checkpoints, metrics, latest.json "
                                                               "and training.json are written")
    download: bool = Field(True, description="download FashionMNIST with torchvision when files are missing")
    epochs: int = Field(40, ge=1, description="training epochs (the best epoch on validation is published)")
    batch_size: int = Field(128, ge=1, description="images per step; under torchrun the global batch, "
                                                  "BATCH_SIZE / N per process")
    lr: float = Field(3e-3, gt=0, description="peak learning rate of the one-cycle schedule")
    weight_decay: float = Field(1e-4, ge=0, description="AdamW decoupled weight decay")
    label_smoothing: float = Field(0.1, ge=0, lt=1, description="cross-entropy label smoothing")
    max_shift: int = Field(2, ge=0, le=6, description="random translation in pixels (augmentation)")
    seed: int = Field(42, description="seed of the shuffling, the augmentation and the initial weights (the same "
                                       "SEED on the CPU gives identical metrics)")
    split_seed: int = Field(42, description="which training images form the validation split; fixed across runs, so "
                                            "PUBLISH_IF=better judges every run on the same images")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="torch device; auto = cuda when available, "
                                                                      "else cpu")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="bf16 autocast for forward/backward (weights, optimizer and evaluation stay fp32); "
                            "auto = bf16 where the hardware has native bf16 (AVX512-BF16/AMX CPUs, recent NVIDIA "
                            "GPUs), else fp32")
    val_size: int = Field(5000, ge=1, description="images carved from the 60k training set for validation")
    train_limit: int = Field(0, ge=0, description="use only this many training images (0 = all); for smoke runs")
    num_threads: int = Field(0, ge=0, description="CPU threads for torch (0 = torch's default)")
    retrain: bool = Field(False, description="start over even if these settings already finished or can resume")
    keep_models: int = Field(5, ge=0, description="published models kept after publishing (0 = all); the manifest's "
                                                  "one, any a running inference service serves and the pinned one are "
                                                  "always kept")
    progress_interval_s: float = Field(2.0, gt=0, description="how often the progress of a run is written to "
                                                                "ARTIFACTS_DIR/training.json (also at every epoch "
                                                                "end); readers call a running record silent for 10 "
                                                                "intervals stale")
    serving_dir: Path | None = Field(None, description="where inference services record what they serve and the pin "
                                                       "(their SERVING_DIR); those models are never deleted")
    publish_if: Literal["always", "better"] = Field(
        "better", description="better: a run becomes latest.json's model only when its validation accuracy is at "
                              "least the current latest model's, evaluated now on the same validation images, never "
                              "the test set (else it is kept on disk, listed, not served); always: every finished run "
                              "becomes latest")

    def uses_bf16(self, device: torch.device) -> bool:
        return self.precision == "bf16" or (self.precision == "auto" and has_fast_bf16(device))

    def recipe(self) -> dict:
        """The settings that define a run; resuming requires them to match."""
        return self.model_dump(
            mode="json", include={"epochs", "batch_size", "lr", "weight_decay", "label_smoothing", "max_shift",
                                  "seed", "split_seed", "val_size", "train_limit", "precision"},
        )
