"""What a run keeps in ``<artifacts>/run/`` to survive a kill: ``best.pt`` (the best epoch so far, by validation
accuracy) and ``last.pt`` (model, optimizer, scheduler, history, best), both written atomically after every epoch.

Started again with the same recipe (``TrainSettings.recipe``), a run continues after its last completed epoch; a
finished one is marked ``completed`` and is not trained again unless RETRAIN is set.
"""

import logging

import torch

from services.trainer.config import TrainSettings
from shared.artifacts import run_dir
from shared.checkpoint import build_checkpoint, load_checkpoint, save_checkpoint

log = logging.getLogger("trainer")

FRESH_BEST = {"epoch": 0, "val_accuracy": -1.0, "val_loss": float("inf")}


def resume_state(settings: TrainSettings) -> dict | None:
    """The previous run's last.pt when it was made with the same recipe, else None (start fresh)."""
    last_path = run_dir(settings.artifacts_dir) / "last.pt"
    if settings.retrain or not last_path.exists():
        return None
    state = load_checkpoint(last_path).data
    recipe = state.get("recipe")
    if isinstance(recipe, dict) and "split_seed" not in recipe:  # from before SPLIT_SEED: the split used SEED
        recipe = {**recipe, "split_seed": recipe.get("seed")}
    if recipe != settings.recipe():
        log.info("%s was made with other settings: starting a new run", last_path)
        return None
    return state


def restore(state: dict | None, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
            scheduler: torch.optim.lr_scheduler.LRScheduler) -> tuple[list[dict], dict]:
    """Load last.pt's weights, optimizer and scheduler into the run's own; its (history, best), or a fresh start's."""
    if state is None:
        return [], dict(FRESH_BEST)
    model.load_state_dict(state["state_dict"])
    optimizer.load_state_dict(state["optimizer_state"])
    scheduler.load_state_dict(state["scheduler_state"])
    return state["history"], state["best"]


def save_epoch(settings: TrainSettings, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               scheduler: torch.optim.lr_scheduler.LRScheduler, stats: dict, history: list[dict], best: dict,
               run_id: str) -> None:
    """best.pt when this epoch (``stats["epoch"]``) is the best so far, then last.pt."""
    run_folder, epoch = run_dir(settings.artifacts_dir), stats["epoch"]
    if best["epoch"] == epoch:
        save_checkpoint(run_folder / "best.pt", build_checkpoint(
            model, hyperparameters=settings.recipe(), epoch=epoch, metrics=stats))
    save_checkpoint(run_folder / "last.pt", build_checkpoint(
        model, hyperparameters=settings.recipe(), epoch=epoch, metrics=stats,
        optimizer_state=optimizer.state_dict(), scheduler_state=scheduler.state_dict(),
        extra={"recipe": settings.recipe(), "history": history, "best": best, "completed": False, "run_id": run_id}))


def mark_completed(settings: TrainSettings, published_version: str) -> None:
    """last.pt says the run finished and which model it published (the same settings then train no more)."""
    last_path = run_dir(settings.artifacts_dir) / "last.pt"
    last = load_checkpoint(last_path).data
    last.update(completed=True, published_version=published_version)
    save_checkpoint(last_path, last)
