"""Training throughput, side by side on the real data at batch size 128.

(a) the trainer's own epoch (``train_one_epoch``: batched tensor augmentation + preprocessing + step), full epoch;
(b) bare forward/backward/step on preloaded, already preprocessed tensors (the ceiling for this model);
(c) the reference demo's pipeline: torchvision dataset, per-sample PIL RandomHorizontalFlip + RandomAffine +
    ToTensor, DataLoader with 2 workers, feeding the model as the reference demo does (fp32, default memory format);
(c') the same pipeline feeding the trainer's step (channels-last, bf16 autocast where the CPU has native bf16),
    to show what the data pipeline alone is worth.
(a) and (b) use the trainer's step (the same precision setting).
Goals: (a) >= 90 % of (b) and >= 1.5x (c).
"""

import os
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from bench.common import REPO_ROOT, save_result
from services.trainer.config import TrainSettings
from services.trainer.loop import train_one_epoch
from services.trainer.optimizer import make_optimizer
from services.trainer.signals import StopFlag
from services.trainer.splits import load_data
from shared.data import Split
from shared.model import FashionMNISTModelV2
from shared.preprocess import pixels_to_batch

DATA_DIR = os.environ.get("BENCH_DATA_DIR", str(REPO_ROOT.parent / "shared" / "data"))
BATCHES = 200  # for (b) and (c), after warm-up


def fresh_model_and_optimizer(settings: TrainSettings, steps: int, channels_last: bool = True):
    torch.manual_seed(0)
    model = FashionMNISTModelV2()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer, scheduler, _ = make_optimizer(model, settings, steps)
    return model, optimizer, scheduler


def step(model, optimizer, images: torch.Tensor, labels: torch.Tensor, channels_last: bool = True,
         bf16: bool = False) -> None:
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = F.cross_entropy(model(images), labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def trainer_epoch(settings: TrainSettings, train: Split) -> float:
    steps = -(-len(train) // settings.batch_size)
    model, optimizer, scheduler = fresh_model_and_optimizer(settings, steps)
    stats = train_one_epoch(model, optimizer, scheduler, train, settings, epoch=1, stop=StopFlag())
    return stats["images"] / stats["seconds"]


def bare_steps(settings: TrainSettings, train: Split, bf16: bool) -> float:
    images, labels = pixels_to_batch(train.images), train.labels
    model, optimizer, _ = fresh_model_and_optimizer(settings, 1000)
    model.train()
    batches = [(images[i:i + 128], labels[i:i + 128]) for i in range(0, 128 * (BATCHES + 10), 128)]
    for x, y in batches[:10]:
        step(model, optimizer, x, y, bf16=bf16)
    started = time.perf_counter()
    for x, y in batches[10:]:
        step(model, optimizer, x, y, bf16=bf16)
    return BATCHES * 128 / (time.perf_counter() - started)


def reference_pipeline(settings: TrainSettings, our_step: bool, bf16: bool) -> float:
    transform = transforms.Compose([
        transforms.RandomHorizontalFlip(),
        transforms.RandomAffine(degrees=0, translate=(0.1, 0.1)),
        transforms.ToTensor(),
    ])
    dataset = datasets.FashionMNIST(DATA_DIR, train=True, download=False, transform=transform)
    loader = DataLoader(dataset, batch_size=128, shuffle=True, num_workers=2, persistent_workers=True)
    model, optimizer, _ = fresh_model_and_optimizer(settings, 1000, channels_last=our_step)
    model.train()
    options = {"channels_last": our_step, "bf16": our_step and bf16}
    iterator = iter(loader)
    for _ in range(10):
        step(model, optimizer, *next(iterator), **options)
    started = time.perf_counter()
    for _ in range(BATCHES):
        step(model, optimizer, *next(iterator), **options)
    return BATCHES * 128 / (time.perf_counter() - started)


def main() -> None:
    settings = TrainSettings(data_dir=DATA_DIR, download=False, _cli_parse_args=False)
    train, _, _ = load_data(settings)
    bf16 = settings.uses_bf16(torch.device("cpu"))  # what the trainer's step uses here
    trainer = trainer_epoch(settings, train)
    bare = bare_steps(settings, train, bf16)
    reference = reference_pipeline(settings, our_step=False, bf16=bf16)
    reference_our_step = reference_pipeline(settings, our_step=True, bf16=bf16)
    rows = [
        {"pipeline": "(a) trainer epoch (tensor augmentation)", "images_per_s": trainer},
        {"pipeline": "(b) bare forward/backward, preloaded", "images_per_s": bare},
        {"pipeline": "(c) reference: PIL transforms + DataLoader(2 workers)", "images_per_s": reference},
        {"pipeline": "(c') reference pipeline feeding the trainer's step", "images_per_s": reference_our_step},
    ]
    save_result("training_throughput", rows, a_over_b=trainer / bare, a_over_c=trainer / reference,
                a_over_c_prime=trainer / reference_our_step,
                goals={"a_over_b": ">= 0.90", "a_over_c": ">= 1.5"},
                met=trainer / bare >= 0.9 and trainer / reference >= 1.5, threads=torch.get_num_threads())
    print(f"(a)/(b) = {trainer / bare:.2f}   (a)/(c) = {trainer / reference:.2f}   "
          f"(a)/(c') = {trainer / reference_our_step:.2f}")


if __name__ == "__main__":
    main()
