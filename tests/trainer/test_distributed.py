"""Data-parallel training with torchrun: two real trainer processes on the CPU (gloo) on tiny IDX data."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from services.trainer.distributed import DistributedSetupError, World, per_rank_batch, shard
from services.trainer.signals import StopFlag
from services.trainer.train import run
from shared.artifacts import read_manifest, run_dir
from shared.training_progress import progress_path
from tests.conftest import tiny_settings
from tests.processes import REPO_ROOT
from tests.waiting import wait_until


def torchrun(data_dir, artifacts_dir, *flags: str) -> subprocess.Popen:
    """``torchrun --standalone --nproc_per_node=2 -m services.trainer`` in a session of its own (so a signal can
    reach the launcher and both ranks, as Ctrl-C or a container stop would)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "services.trainer", "--data-dir", str(data_dir), "--artifacts-dir", str(artifacts_dir),
               "--no-download", "--val-size", "100", "--seed", "7", "--device", "cpu", *flags]
    return subprocess.Popen(command, cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def wait_for_first_epoch(process: subprocess.Popen, artifacts_dir) -> Path:
    last = run_dir(artifacts_dir) / "last.pt"

    def saved() -> bool:
        assert process.poll() is None, process.stdout.read()
        return last.exists()

    wait_until(saved, "the first epoch's checkpoint", timeout=600, interval=0.02)
    return last


def rank_pid(launcher: subprocess.Popen, rank: int) -> int:
    """The process id of one rank: the launcher's child whose environment says RANK=<rank> (Linux /proc)."""
    for child in Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children").read_text().split():
        if f"RANK={rank}".encode() in Path(f"/proc/{child}/environ").read_bytes().split(b"\0"):
            return int(child)
    raise AssertionError(f"no rank {rank} among the launcher's children")


def group_is_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_shards_of_an_epoch_make_up_the_one_process_batches():
    order = torch.randperm(11, generator=torch.Generator().manual_seed(3))
    world = [World(rank=rank, size=2) for rank in range(2)]
    shards = [shard(order, each) for each in world]
    assert [len(part) for part in shards] == [6, 6]  # padded with order[0] so both ranks take 3 steps of 2
    assert sorted(torch.cat(shards).tolist()) == sorted(order.tolist() + [order[0].item()])
    per_rank = per_rank_batch(4, world[0])
    for step, start in enumerate(range(0, 11, 4)):  # global batch 4: step k of both ranks = one-process batch k
        together = torch.cat([part[step * per_rank:(step + 1) * per_rank] for part in shards])
        expected = torch.cat([order, order[:1]])[start:start + 4]
        assert sorted(together.tolist()) == sorted(expected.tolist())


def test_a_global_batch_that_does_not_divide_among_the_processes_is_refused(tiny_data_dir, tmp_path):
    with pytest.raises(DistributedSetupError, match="BATCH_SIZE 127 does not divide among 2 processes"):
        run(tiny_settings(tiny_data_dir, tmp_path, batch_size=127), StopFlag(), World(rank=0, size=2))
    assert not tmp_path.joinpath("run").exists()


def test_two_processes_stop_together_on_sigterm_resume_and_publish_exactly_one_model(tiny_data_dir, tmp_path):
    epochs = ["--epochs", "4"]
    process = torchrun(tiny_data_dir, tmp_path, *epochs)
    last = wait_for_first_epoch(process, tmp_path)
    os.killpg(process.pid, signal.SIGTERM)  # the launcher and both ranks, mid-run
    output, _ = process.communicate(timeout=600)
    assert process.returncode != 0, output
    assert "run again with the same settings to resume" in output, output
    wait_until(lambda: group_is_gone(process.pid), "every rank to exit with the launcher")  # none waits for the other
    state = torch.load(last, weights_only=True)
    assert 1 <= state["epoch"] < 4 and not state["completed"]
    assert read_manifest(tmp_path) is None and not (tmp_path / "models").exists()
    stopped = json.loads(progress_path(tmp_path).read_text())
    assert stopped["state"] == "interrupted" and len(stopped["history"]) == state["epoch"]

    resumed = torchrun(tiny_data_dir, tmp_path, *epochs)
    output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, output
    assert f"resuming after epoch {state['epoch']} of 4" in output
    assert "2 processes (gloo), 64 images per process per step" in output

    published = read_manifest(tmp_path)
    assert published is not None
    assert sorted(path.name for path in (tmp_path / "models").iterdir()) == [
        f"{published.model_version}.graph.json", f"{published.model_version}.metrics.json",
        f"{published.model_version}.onnx", f"{published.model_version}.pt"]  # one model, all its files
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert (metrics["world_size"], metrics["per_rank_batch_size"], metrics["distributed_backend"]) == (2, 64, "gloo")
    assert metrics["batch_size"] == 128 and metrics["model_version"] == published.model_version
    assert [epoch["epoch"] for epoch in metrics["history"]] == [1, 2, 3, 4]
    assert all(epoch["world_size"] == 2 and epoch["images"] == 500 for epoch in metrics["history"])
    assert metrics["dataset_sizes"] == {"train": 500, "val": 100, "test": 200}
    assert sum(map(sum, metrics["confusion_matrix"])) == 200
    assert torch.load(last, weights_only=True)["completed"]
    progress = json.loads(progress_path(tmp_path).read_text())  # rank 0's record, the same run resumed
    assert progress["state"] == "finished" and progress["run_id"] == stopped["run_id"]
    assert progress["resumed_from_epoch"] == state["epoch"] and progress["model_version"] == published.model_version
    assert (progress["settings"]["world_size"], progress["settings"]["per_rank_batch_size"]) == (2, 64)


def test_sigterm_to_one_rank_stops_both_after_the_same_step(tiny_data_dir, tmp_path):
    """The stop flags are all-reduced before every step: rank 0, never signalled, stops too instead of waiting."""
    process = torchrun(tiny_data_dir, tmp_path, "--epochs", "40")
    last = wait_for_first_epoch(process, tmp_path)
    writer = rank_pid(process, 0)
    os.kill(rank_pid(process, 1), signal.SIGTERM)
    output, _ = process.communicate(timeout=600)
    assert process.returncode != 0
    # Rank 0 read its own flag as false when the all-reduce told it to stop: it stopped because rank 1 was asked to
    # (the launcher passes a SIGTERM on to it only once rank 1 has exited, which may print a line in any order).
    assert "[rank 0/2] INFO another rank was asked to stop: stopping with it after the same step" in output, output
    assert "[rank 0/2] INFO stopped; the last completed epoch is saved" in output, output
    assert "exitcode  : 143" in output  # both ranks left through the trainer's own exit, not a crash
    assert 1 <= torch.load(last, weights_only=True)["epoch"] < 40 and read_manifest(tmp_path) is None
    progress = json.loads(progress_path(tmp_path).read_text())
    assert progress["state"] == "interrupted" and progress["pid"] == writer  # rank 0 alone writes it
