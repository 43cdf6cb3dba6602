"""The checks `make scale-smoke` makes (scripts/scale_load.py) pass and fail on recorded requests as they should;
the load itself is run against the real stack by the smoke test."""

import importlib.util
import json

import pytest

from tests.processes import REPO_ROOT

spec = importlib.util.spec_from_file_location("scale_load", REPO_ROOT / "scripts" / "scale_load.py")
scale_load = importlib.util.module_from_spec(spec)
spec.loader.exec_module(scale_load)


def request(start: float, replica: str = "a", version: str = "v1", status: int = 200, took: float = 0.05) -> dict:
    return {"start": start, "end": start + took, "status": status, "served_by": replica if status == 200 else None,
            "version": version if status == 200 else None, "error": None if status == 200 else "502"}


def outcome(capsys, code: int) -> tuple[int, dict]:
    return code, json.loads(capsys.readouterr().out.splitlines()[-1])


def test_spread_needs_every_replica_and_no_failure(capsys):
    records = [request(i * 0.1, replica) for i in range(30) for replica in "abc"]
    code, figures = outcome(capsys, scale_load.spread(records, replicas=3))
    assert code == 0 and figures["replicas_seen"] == 3 and figures["shares"] == {"a": 0.333, "b": 0.333, "c": 0.333}
    assert scale_load.spread(records, replicas=4) == 1
    assert scale_load.spread([*records, request(5.0, status=502)], replicas=3) == 1


@pytest.mark.parametrize("switch_after,failures,expected", [(3.0, 0, 0), (16.0, 0, 1), (3.0, 1, 1)])
def test_swap_needs_every_replica_on_the_new_version_within_15_s_and_no_failure(capsys, switch_after, failures,
                                                                              expected):
    published = 100.0
    records = [request(published - 5 + i * 0.5, replica, "v2" if published - 5 + i * 0.5 > published + (
        switch_after if replica == "c" else 1.0) else "v1") for i in range(50) for replica in "abc"]
    records += [request(published + 2, status=502)] * failures
    code, figures = outcome(capsys, scale_load.swap(records, new="v2", published=published))
    assert code == expected
    if expected == 0:
        assert 3.0 <= figures["lag_s"]["c"] <= 3.6 and 1.4 <= figures["mixed_versions_s"] <= 1.6


def test_swap_fails_when_a_replica_goes_back_to_the_old_version(capsys):
    records = [request(101.0, "a", "v2"), request(102.0, "a", "v1"), request(103.0, "a", "v2")]
    assert scale_load.swap(records, new="v2", published=100.0) == 1


def test_an_old_answer_sent_before_a_new_one_arrived_is_not_going_back(capsys):
    """Two requests of one batch reach their client threads in either order: only what was sent later counts."""
    records = [request(101.0, "a", "v1", took=1.0), request(101.2, "a", "v2", took=0.1)]  # v1 arrives last
    code, figures = outcome(capsys, scale_load.swap(records, new="v2", published=100.0))
    assert code == 0 and figures["went_back"] == []
    records.append(request(101.5, "a", "v1"))  # sent after the v2 answer arrived (101.3): it went back
    code, figures = outcome(capsys, scale_load.swap(records, new="v2", published=100.0))
    assert code == 1 and figures["went_back"] == ["a/None"]


def test_kill_allows_failures_only_in_flight_on_the_kill_and_needs_the_others_to_take_over(capsys):
    before = [request(i * 0.1, replica) for i in range(50) for replica in "abc"]
    after = [request(7 + i * 0.1, replica) for i in range(50) for replica in "ab"]
    in_flight = [request(4.9, status=502, took=0.2)] * 2
    code, figures = outcome(capsys, scale_load.kill(before + in_flight + after, "c", 5.0, 5.05, clients=12))
    assert code == 0 and figures["failed_in_flight"] == 2 and figures["answers_after_by_others"] == {"a": 50, "b": 50}
    late = [request(8.0, status=502)]
    assert scale_load.kill(before + after + late, "c", 5.0, 5.05, clients=12) == 1, "a failure after the kill"
    still = [request(7.5, "c")]
    assert scale_load.kill(before + after + still, "c", 5.0, 5.05, clients=12) == 1, "the killed one still answers"
    early = [request(3.0, status=502, took=0.2)]
    assert scale_load.kill(before + early + after, "c", 5.0, 5.05, clients=12) == 1, "a failure before the kill"
    # More failures than clients is fine while they all fall in the kill: a client's next request can fail too.
    assert scale_load.kill(before + in_flight * 7 + after, "c", 5.0, 5.05, clients=12) == 0


def test_swap_counts_each_worker_of_a_replica_on_its_own(capsys):
    """Two worker processes of one replica switch on their own polls: old and new answers from the same replica
    interleave for a moment, which is fine; the replica has switched once its last worker has."""
    def answer(start: float, worker: str, version: str) -> dict:
        return {**request(start, "a", version), "worker": worker}

    records = [answer(99.0, "1", "v1"), answer(99.0, "2", "v1"), answer(101.0, "1", "v2"), answer(101.5, "2", "v1"),
               answer(102.0, "2", "v2"), answer(103.0, "1", "v2"), answer(103.0, "2", "v2")]
    code, figures = outcome(capsys, scale_load.swap(records, new="v2", published=100.0))
    assert code == 0 and figures["lag_s"] == {"a": 2.05} and figures["went_back"] == []
    back = [*records, answer(104.0, "1", "v1")]
    code, figures = outcome(capsys, scale_load.swap(back, new="v2", published=100.0))
    assert code == 1 and figures["went_back"] == ["a/1"]


def test_served_needs_no_failure_and_every_later_answer_from_the_given_replicas(capsys):
    old = [request(i * 0.1, replica) for i in range(30) for replica in "abc"]
    new = [request(5 + i * 0.1, replica) for i in range(30) for replica in "def"]
    code, figures = outcome(capsys, scale_load.served(old + new, by={"d", "e", "f"}, after=4.5))
    assert code == 0 and figures["answered_after"] == 90 and figures["failed"] == 0
    code, figures = outcome(capsys, scale_load.served(old + new, by={"d", "e", "f"}, after=2.0))
    assert code == 1 and set(figures["answered_after_by_others"]) == {"a", "b", "c"}
    assert scale_load.served(old + new + [request(6.0, status=502)], by={"d", "e", "f"}, after=4.5) == 1
    assert scale_load.served(old, by={"a", "b", "c"}, after=10.0) == 1, "nothing answered after the mark"
    assert scale_load.served(old, by={"a", "b", "c"}, after=0.0) == 0
