"""Is a process still running? Read from /proc, so zombies (exited, not yet reaped) count as gone."""

from pathlib import Path

from tests.waiting import DEADLINE_S, wait_until


def _stat_fields(pid: int | str) -> list[str] | None:
    try:
        # The command name (field 2) may contain spaces and parentheses: split after its closing parenthesis.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def alive(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def group_members(pgid: int) -> list[int]:
    """Live processes in process group ``pgid`` (a started service and its workers share one group)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(entry.name)) and fields[0] != "Z" and \
                int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def assert_all_gone(groups: dict[str, int], timeout: float = DEADLINE_S) -> None:
    """Every process group in ``groups`` (name -> pgid) empties (workers may take a while to exit and be reaped)."""

    def left() -> dict[str, list[int]]:
        return {name: members for name, pgid in groups.items() if (members := group_members(pgid))}

    wait_until(lambda: not left(), f"these processes to exit: {left()}", timeout)


def processes_with_env(entry: str) -> list[int]:
    """Live processes whose environment holds ``entry`` (e.g. ``RUN_DIR=/tmp/x``): what one stack started."""
    needle = entry.encode() + b"\0"
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or not alive(int(proc.name)):
            continue
        try:
            environ = (proc / "environ").read_bytes() + b"\0"
        except OSError:
            continue
        if b"\0" + needle in b"\0" + environ:
            found.append(int(proc.name))
    return found
