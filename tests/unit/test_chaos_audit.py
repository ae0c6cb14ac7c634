"""The chaos suite's audit-log judgements (``tests/chaos/audit.py``) on hand-made writes.

They must catch what they claim to: a second writer while another holds the
Lease, a write after the renew deadline, a pod the syncer deleted unasked,
a host object created twice, a virtual object the syncer must never create.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import orjson

from tests.chaos.audit import Write, lost_pods, recreations, single_writer, writes

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
A, B = "user-a", "user-b"
SYNCER = "vcsync-admin"
IDS = {A: "a", B: "b"}


def w(second: float, user: str, verb: str, resource: str, name: str = "x",
      namespace: str = "ns", subresource: str = "", code: int = 200) -> Write:
    return Write(T0 + datetime.timedelta(seconds=second), user, verb, resource, subresource,
                 namespace, name, code)


def lease(second: float, user: str) -> Write:
    return w(second, user, "update", "leases", "vcsync-vc1")


def judge(*stream: Write) -> list[str]:
    return single_writer(list(stream), [], IDS, "vcsync-vc1", renew_deadline=3.0).violations


def test_writes_of_the_holder_within_its_deadline_are_fine_across_a_handover() -> None:
    found = single_writer(
        [lease(0, A), w(1, A, "create", "pods"), lease(2, A), w(4.5, A, "patch", "pods"),
         lease(9, B), w(9.5, B, "delete", "pods")],
        [w(3, A, "patch", "pods", subresource="status")], IDS, "vcsync-vc1", 3.0)
    assert found.violations == []
    assert (found.terms, found.runs, found.writes) == (2, 2, {"a": 3, "b": 1})


def test_a_write_by_the_old_holder_after_a_takeover_is_caught() -> None:
    (text,) = judge(lease(0, A), lease(5, B), w(5.2, A, "create", "pods"))
    assert text.startswith("a wrote pods ns/x")
    assert "while b held the Lease" in text


def test_a_write_after_the_renew_deadline_is_caught() -> None:
    (text,) = judge(lease(0, A), w(4.0, A, "create", "pods"))
    assert "after its last renewal" in text


def test_a_write_before_any_lease_is_caught() -> None:
    (text,) = judge(w(0, A, "create", "pods"))
    assert "while nobody held the Lease" in text


def test_a_pod_the_syncer_deleted_first_is_lost_but_one_it_finalized_is_not() -> None:
    rs = "system:serviceaccount:kube-system:replicaset-controller"
    stream = [w(0, rs, "delete", "pods", "p1"), w(1, SYNCER, "delete", "pods", "p1"),
              w(2, SYNCER, "delete", "pods", "p2"), w(3, SYNCER, "delete", "pods", "p3", code=404)]
    assert lost_pods(stream, {SYNCER}) == [
        f"virtual pod ns/p2 deleted by {SYNCER} at {T0 + datetime.timedelta(seconds=2)}"]


def test_recreations_are_named() -> None:
    host = [w(0, SYNCER, "create", "configmaps", "c", code=201),
            w(1, SYNCER, "create", "configmaps", "c", code=201),
            w(2, SYNCER, "create", "pods", "p", code=201),
            w(3, SYNCER, "create", "pods", "p", code=409)]
    virtual = [w(0, SYNCER, "create", "configmaps", "v", code=201),
               w(1, SYNCER, "create", "pods", "p", subresource="binding", code=201),
               w(2, SYNCER, "delete", "services", "s"), w(3, SYNCER, "delete", "services", "s"),
               w(4, SYNCER, "delete", "services", "t")]
    assert recreations(host, virtual, {SYNCER}) == [
        "host configmaps ns/c created 2 times",
        "virtual configmaps ns/v created by the syncer",
        "virtual Service ns/s re-created 2 times",
    ]


def test_the_log_is_read_in_time_order_from_the_completed_stage(tmp_path: Path) -> None:
    def line(stage: str, at: str, name: str) -> bytes:
        return orjson.dumps({
            "stage": stage, "requestReceivedTimestamp": at, "verb": "create",
            "user": {"username": A}, "objectRef": {"resource": "pods", "name": name},
            "responseStatus": {"code": 201}})

    log = tmp_path / "audit.log"
    log.write_bytes(b"\n".join([line("ResponseComplete", "2026-01-01T00:00:02.5Z", "late"),
                                line("ResponseStarted", "2026-01-01T00:00:01Z", "watch"),
                                line("ResponseComplete", "2026-01-01T00:00:01Z", "early")]))
    assert [x.name for x in writes(log)] == ["early", "late"]
    assert [x.name for x in writes(log, since=T0 + datetime.timedelta(seconds=2))] == ["late"]
