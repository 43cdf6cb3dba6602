"""Reading training.json: missing, unreadable and half-written-by-hand files, and a heartbeat judged by a clock the
test sets (``describe(progress, now)``)."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from shared.training_progress import ProgressUnreadable, describe, progress_path, read_progress

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


def record(state: str = "running", age_s: float = 0.0, interval_s: float | None = 2.0) -> dict:
    written = {"state": state, "run_id": "r1", "updated_at": (NOW - timedelta(seconds=age_s)).isoformat()}
    if interval_s is not None:
        written["interval_s"] = interval_s
    return written


def test_no_file_is_none_and_a_written_one_reads_back(tmp_path):
    assert read_progress(tmp_path) is None
    progress_path(tmp_path).write_text(json.dumps(record()))
    assert read_progress(tmp_path)["run_id"] == "r1"


@pytest.mark.parametrize("content, reason", [("{\"state\": \"runn", "not valid JSON"), ("[1, 2]", "JSON list"),
                                             (b"\xff\xfe{}", "cannot read")])
def test_an_unreadable_file_says_why(tmp_path, content, reason):
    path = progress_path(tmp_path)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ProgressUnreadable, match=reason):
        read_progress(tmp_path)


def test_a_folder_in_its_place_is_unreadable_not_missing(tmp_path):
    progress_path(tmp_path).mkdir()
    with pytest.raises(ProgressUnreadable, match="cannot read training.json"):
        read_progress(tmp_path)


def test_a_running_record_goes_stale_after_ten_of_its_own_intervals():
    assert describe(record(age_s=19.9), NOW)["state"] == "running"
    stale = describe(record(age_s=20.1), NOW)
    assert stale["state"] == "stale" and stale["heartbeat_age_s"] == pytest.approx(20.1)
    assert stale["stale_after_s"] == 20.0
    assert describe(record(age_s=0.9, interval_s=0.1), NOW)["state"] == "running"
    assert describe(record(age_s=1.1, interval_s=0.1), NOW)["state"] == "stale"


def test_ended_runs_never_go_stale_and_odd_records_are_named_so():
    for state in ("finished", "failed", "interrupted"):
        assert describe(record(state, age_s=86_400), NOW)["state"] == state
    assert describe(record("exploded"), NOW)["state"] == "unknown"
    assert describe({"state": "running"}, NOW)["state"] == "stale"  # no heartbeat at all: nobody vouches for it
    assert describe({}, NOW) == {"state": "unknown", "heartbeat_age_s": None, "stale_after_s": 20.0}
    odd_interval = describe(record(age_s=25, interval_s="soon"), NOW)
    assert odd_interval["state"] == "stale" and odd_interval["stale_after_s"] == 20.0  # the default 2 s interval


def test_a_heartbeat_without_a_zone_is_taken_as_utc():
    naive = {"state": "running", "interval_s": 2.0, "updated_at": (NOW - timedelta(seconds=5)).replace(tzinfo=None)
             .isoformat()}
    assert describe(naive, NOW)["heartbeat_age_s"] == pytest.approx(5.0)
