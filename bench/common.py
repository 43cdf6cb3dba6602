"""What every benchmark shares: where results go, which model and data it uses, and how a table is printed."""

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path

import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO_ROOT = Path(__file__).resolve().parents[1]


def model_dir() -> Path:
    """BENCH_MODEL_DIR, by default the shipped model (models/default)."""
    return Path(os.environ.get("BENCH_MODEL_DIR", REPO_ROOT / "models" / "default"))


def data_dir() -> Path:
    """BENCH_DATA_DIR, by default the team's shared copy beside the checkout (../shared/data), else data/."""
    shared = REPO_ROOT.parent / "shared" / "data"
    return Path(os.environ.get("BENCH_DATA_DIR", shared if shared.is_dir() else REPO_ROOT / "data"))


def machine() -> dict:
    return {
        "cpu_count": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def save_result(name: str, rows: list[dict], **extra) -> Path:
    """Write bench/results/<name>.json with the rows, the machine and the time, and print the table."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    result = {"benchmark": name, "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
              "machine": machine(), "rows": rows, **extra}
    path.write_text(json.dumps(result, indent=2) + "\n")
    print_table(name, rows)
    return path


def print_table(title: str, rows: list[dict]) -> None:
    if not rows:
        return
    columns = list(dict.fromkeys(key for row in rows for key in row))
    cells = [[_format(row.get(column, "")) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)]
    print(f"\n== {title} ==")
    print("  ".join(column.ljust(width) for column, width in zip(columns, widths, strict=True)))
    for line in cells:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def goal(ok: bool, text: str) -> str:
    """One line of a benchmark's verdict: PASS or MISS, then what was measured against what."""
    return f"{'PASS' if ok else 'MISS'}  {text}"
