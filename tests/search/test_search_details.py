"""The details view and lineage merging, no services."""

from __future__ import annotations

from typing import Any

from streams.search.details import merged_timeline, related_mids, render_details

PARENT: dict[str, Any] = {
    "id": "p", "host": "esa1", "mid": 50, "icid": 10, "started_at": "2024-03-17T10:00:00Z",
    "size": 905, "subject": None, "sender": "a@x.org", "message_id": "<m@x>",
    "auth_user": None, "status": "rewritten", "child_mids": [51],
    "recipients": [{"address": "b@y.org", "status": "delivered", "response": "250 ok"}],
    "client": {"ip": "192.0.2.7", "rdns": "mx.x.org", "rdns_verified": True, "sbrs": 3.5},
    "events": [{"ts": "2024-03-17T10:00:00Z", "kind": "msg_start", "text": "Message enqueued"},
               {"ts": "2024-03-17T10:00:02Z", "kind": "msg_rewrite", "text": "Rewritten to 51"}],
}
CHILD: dict[str, Any] = {
    "id": "c", "host": "esa1", "mid": 51, "started_at": "2024-03-17T10:00:02Z",
    "status": "delivered", "parent_mid": 50,
    "events": [{"ts": "2024-03-17T10:00:01Z", "kind": "msg_start", "text": "Child created"},
               {"ts": "2024-03-17T10:00:03Z", "kind": "dlv_done", "text": "Delivered"}],
}


def test_related_mids_are_parent_and_children() -> None:
    """One hop of lineage: the parent MID and every child MID."""
    assert related_mids(PARENT) == {51}
    assert related_mids(CHILD) == {50}
    assert related_mids({"parent_mid": 1, "child_mids": [3, 4]}) == {1, 3, 4}


def test_timelines_merge_in_time_order_labelled_by_mid() -> None:
    """Events of the whole family interleave by time, each labelled by its MID."""
    lines = merged_timeline([PARENT, CHILD])
    assert [(mid, text) for _ts, mid, text in lines] == [
        (50, "Message enqueued"), (51, "Child created"), (50, "Rewritten to 51"),
        (51, "Delivered")]


def test_details_show_envelope_sending_host_and_lineage() -> None:
    """The details view has the SMA sections and the related MIDs with their states."""
    text = render_details(PARENT, [CHILD])
    for expected in ("Envelope and Header Summary", "Received Time:", "2024-03-17 10:00:00 UTC",
                     "Message Size:", "905 bytes", "(no subject)", "<m@x>",
                     "SMTP Auth User ID:", "b@y.org  delivered  Response: 250 ok",
                     "Sending Host", "mx.x.org (verified)", "192.0.2.7", "3.5",
                     "Related Messages", "MID 51", "(child)", "[MID 51]  Delivered",
                     "[MID 50]  Message enqueued"):
        assert expected in text, expected
    assert text.index("[MID 51]  Child created") < text.index("[MID 50]  Rewritten to 51")


def test_details_name_lineage_that_has_no_record() -> None:
    """A child MID with no record yet is listed as missing, not silently dropped."""
    text = render_details(PARENT, [])
    assert "MID 51  (no record found)" in text


def test_details_without_events_say_so() -> None:
    """A record without events says the timeline is empty."""
    assert "(no events recorded)" in render_details({"id": "x", "mid": 1})
