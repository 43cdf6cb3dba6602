"""FashionMNIST for training: the splits as torch tensors, and the validation split carved out of training.

The files are read by ``shared.idx`` (numpy, no torchvision), the same reader the torch-free inference service
uses; ``data_dir`` is the torchvision root (``<data_dir>/FashionMNIST/raw/``). When the files are missing and
downloading is allowed they are fetched; when that fails (for example offline) the error names the directory
and the four files a user can put there by hand.
"""

from dataclasses import dataclass
from pathlib import Path

import torch

from shared.idx import RAW_FILES, DatasetNotFoundError, load_arrays, raw_folder

__all__ = ["RAW_FILES", "DatasetNotFoundError", "Split", "load_split", "raw_folder", "train_val_split"]


@dataclass(frozen=True)
class Split:
    """A whole split held in memory: uint8 images (N, 28, 28) and int64 labels (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


def load_split(data_dir: str | Path, train: bool, download: bool = True) -> Split:
    """Load the training (60k) or test (10k) split into memory."""
    images, labels = load_arrays(data_dir, train, download)
    return Split(images=torch.from_numpy(images.copy()), labels=torch.from_numpy(labels))


def train_val_split(split: Split, val_size: int, seed: int) -> tuple[Split, Split]:
    """Carve a validation set out of the training split, the same way for the same seed."""
    if not 0 < val_size < len(split):
        raise ValueError(f"VAL_SIZE must be between 1 and {len(split) - 1}, got {val_size}")
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = order[:val_size], order[val_size:]
    return (
        Split(split.images[train_idx], split.labels[train_idx]),
        Split(split.images[val_idx], split.labels[val_idx]),
    )
