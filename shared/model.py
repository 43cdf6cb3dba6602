"""FashionMNISTModelV2: the TinyVGG-style CNN of the reference demo.

Two blocks of Conv3x3-ReLU-Conv3x3-ReLU-MaxPool2 take a 1x28x28 image to 32x7x7; a linear layer maps the
flattened features to 10 logits. With the default config it has 43,754 parameters. The config dataclass is
stored in every checkpoint so a loader can rebuild exactly the model that was trained.
"""

from dataclasses import asdict, dataclass

import torch
from torch import nn

from shared.classes import NUM_CLASSES

ARCHITECTURE = "FashionMNISTModelV2"


@dataclass(frozen=True)
class ModelConfig:
    in_channels: int = 1
    hidden_units: int = 32
    num_classes: int = NUM_CLASSES
    image_size: int = 28

    def to_dict(self) -> dict:
        return asdict(self)


def _conv_block(in_channels: int, hidden_units: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, hidden_units, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.Conv2d(hidden_units, hidden_units, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=2),
    )


class FashionMNISTModelV2(nn.Module):
    def __init__(self, config: ModelConfig = ModelConfig()) -> None:
        super().__init__()
        self.config = config
        feature_side = config.image_size // 4  # two 2x2 max-pools
        self.block_1 = _conv_block(config.in_channels, config.hidden_units)
        self.block_2 = _conv_block(config.hidden_units, config.hidden_units)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(config.hidden_units * feature_side * feature_side, config.num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block_1(x)
        x = self.block_2(x)
        return self.classifier(x)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def weights_size_bytes(model: nn.Module) -> int:
    """Bytes taken by the parameters and buffers themselves (what a user means by 'weights size')."""
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)
