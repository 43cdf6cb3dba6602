"""AdamW and its learning-rate schedule, stepped per batch, and their descriptions for metrics.json, read from the
objects the run uses (the scheduler's class and every parameter it was built with, the optimizer's own defaults),
so the record cannot drift from the code."""

import inspect
from typing import Any, NamedTuple

import torch
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, OneCycleLR

from services.trainer.config import TrainSettings

# How torch computes a step, not what the step is: left out of the record.
IMPLEMENTATION_FLAGS = {"foreach", "fused", "capturable", "differentiable"}
SCHEDULER_PLUMBING = {"optimizer", "last_epoch", "verbose"}


class Optimization(NamedTuple):
    optimizer: torch.optim.Optimizer
    scheduler: LRScheduler
    schedule: str  # what metrics.json's lr_schedule says: the scheduler's class and the parameters it was built with


def constant_rate(_step: int) -> float:
    """LambdaLR's factor for runs too short to cycle: LR at every step."""
    return 1.0


def make_optimizer(model: torch.nn.Module, settings: TrainSettings, steps_per_epoch: int) -> Optimization:
    """AdamW with a one-cycle schedule stepped per batch (a constant rate for runs too short to cycle)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    total_steps = settings.epochs * steps_per_epoch
    if total_steps < 4:
        return Optimization(optimizer, *scheduled(LambdaLR, optimizer, lr_lambda=constant_rate))
    return Optimization(optimizer, *scheduled(
        OneCycleLR, optimizer, max_lr=settings.lr, total_steps=total_steps, pct_start=max(0.25, 2 / total_steps),
        div_factor=10.0, final_div_factor=100.0))


def scheduled(cls: type[LRScheduler], optimizer: torch.optim.Optimizer, **arguments: Any) -> tuple[LRScheduler, str]:
    """``cls(optimizer, **arguments)`` and its description: every parameter, the defaults it was not given included
    (they matter: OneCycleLR cycles AdamW's beta1 by default)."""
    bound = inspect.signature(cls).bind(optimizer, **arguments)
    bound.apply_defaults()
    parameters = {name: value for name, value in bound.arguments.items()
                  if name not in SCHEDULER_PLUMBING and value is not None}
    return cls(optimizer, **arguments), f"{call(cls.__name__, parameters)}, stepped per batch"


def describe_optimizer(optimizer: torch.optim.Optimizer) -> str:
    """The optimizer's class and hyper-parameters as it holds them (its ``defaults``; a schedule moves the rate)."""
    return call(type(optimizer).__name__,
                {name: value for name, value in optimizer.defaults.items() if name not in IMPLEMENTATION_FLAGS})


def call(name: str, parameters: dict[str, Any]) -> str:
    """``Name (a=1, b='cos', f=function_name)``."""
    shown = (f"{key}={value.__name__ if callable(value) else repr(value)}" for key, value in parameters.items())
    return f"{name} ({', '.join(shown)})"
