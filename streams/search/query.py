"""Criteria -> OpenSearch query, as a pure function (no client, no I/O).

Field names follow the index templates in ``schemas/opensearch/``: address fields are keywords
with a lower-case normaliser and a ``wildcard`` sub-field for *contains*; recipients are nested so
that "recipient X was hard-bounced" is asked of one and the same recipient.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Final

from streams.search.criteria import Criteria, Event, Op, TextMatch

Query = dict[str, Any]

# --- Field names (one place; they mirror schemas/opensearch/) --------------------------------
STARTED_AT: Final = "started_at"
RECORD_ID: Final = "id"
HOST: Final = "host"
MID: Final = "mid"
SENDER: Final = "sender"
RECIPIENTS: Final = "recipients"
RCPT_ADDRESS: Final = "recipients.address"
RCPT_STATUS: Final = "recipients.status"
SUBJECT_KEYWORD: Final = "subject.keyword"
"""Exact subject (ignore_above 2048): tells an empty subject from a missing one."""
SUBJECT_LOWER: Final = "subject.lower"
"""Lower-cased subject keyword: *is* and *begins with*, case-insensitive."""
SUBJECT_WILDCARD: Final = "subject.wildcard"
"""Lower-cased wildcard sub-field (no length limit): *contains*, and presence."""
MESSAGE_ID: Final = "message_id"
CLIENT_IP: Final = "client.ip"
DIRECTION: Final = "direction"
TAGS: Final = "tags"
ATTACHMENT_NAME: Final = "attachments.name"
ATTACHMENT_SHA256: Final = "attachments.sha256"
ACTION: Final = "action"
WILDCARD_SUFFIX: Final = ".wildcard"
"""Sub-field of address fields that answers *contains* cheaply."""

REJECTED_ACTIONS: Final = ("REJECT", "TCPREFUSE")

RECIPIENT_STATUSES: Final[dict[Event, tuple[str, ...]]] = {
    Event.DELIVERED: ("delivered",),
    Event.HARD_BOUNCED: ("hard_bounced",),
    Event.SOFT_BOUNCED: ("soft_bounced",),
}
"""Events that are facts about one recipient, and the ``recipients.status`` values meaning them.
With a recipient criterion these are asked of the same nested recipient; without one the
message-level tag answers. Values as in ``schemas/message.schema.json``."""

_SHA256: Final = re.compile(r"^[0-9a-fA-F]{64}$")
_WILDCARD_SPECIALS: Final = re.compile(r"([\\*?])")


def build_query(criteria: Criteria) -> Query:
    """The ``query`` part of a search for ``criteria`` over message records, or over connection
    records when ``criteria.rejected_only``."""
    filters: list[Query] = []
    if criteria.start or criteria.end:
        filters.append(_time_range(criteria.start, criteria.end))
    if criteria.hosts:
        filters.append({"terms": {HOST: list(criteria.hosts)}})
    if criteria.sender_ip:
        filters.append({"term": {CLIENT_IP: criteria.sender_ip}})
    if criteria.rejected_only:
        filters.append({"terms": {ACTION: list(REJECTED_ACTIONS)}})
        return _bool(filters)
    if criteria.sender:
        filters.append(_address(SENDER, criteria.sender))
    if criteria.subject:
        filters.append(_subject(criteria.subject))
    if criteria.message_id:
        filters.append({"terms": {MESSAGE_ID: message_id_forms(criteria.message_id)}})
    if criteria.mid is not None:
        filters.append({"term": {MID: criteria.mid}})
    if criteria.attachment:
        filters.append(_attachment(criteria.attachment))
    if criteria.direction:
        filters.append({"term": {DIRECTION: criteria.direction.value}})
    recipient = _address(RCPT_ADDRESS, criteria.recipient) if criteria.recipient else None
    if recipient is not None:
        filters.append(_nested(recipient))
    if criteria.events:
        filters.append(_events(criteria.events, recipient))
    return _bool(filters)


def build_sort(*, newest_first: bool = False) -> list[Query]:
    """A total order for ``search_after``: start time, then the unique record id."""
    order = "desc" if newest_first else "asc"
    return [{STARTED_AT: {"order": order}}, {RECORD_ID: {"order": order}}]


def lineage_query(host: str, mids: list[int]) -> Query:
    """Records of one appliance with any of ``mids`` (the related MIDs of a message)."""
    return _bool([{"term": {HOST: host}}, {"terms": {MID: mids}}])


def message_id_forms(value: str) -> list[str]:
    """A Message-ID as typed and in its other bracket form (``<a@b>`` and ``a@b``)."""
    bare = value.strip().removeprefix("<").removesuffix(">")
    return [f"<{bare}>", bare]


def _bool(filters: list[Query]) -> Query:
    if not filters:
        return {"match_all": {}}
    return {"bool": {"filter": filters}}


def _nested(query: Query) -> Query:
    return {"nested": {"path": RECIPIENTS, "query": query}}


def _time_range(start: datetime | None, end: datetime | None) -> Query:
    bounds: dict[str, Any] = {"format": "epoch_millis"}
    if start:
        bounds["gte"] = int(start.timestamp() * 1000)
    if end:
        bounds["lt"] = int(end.timestamp() * 1000)
    return {"range": {STARTED_AT: bounds}}


def _escape_wildcard(text: str) -> str:
    return _WILDCARD_SPECIALS.sub(r"\\\1", text)


def _address(field: str, match: TextMatch) -> Query:
    """An address criterion. Addresses are stored lower-case (normaliser), so values are too."""
    value = match.value.lower()
    if match.op is Op.IS:
        return {"term": {field: value}}
    if match.op is Op.BEGINS:
        return {"prefix": {field: {"value": value}}}
    return {
        "wildcard": {
            field + WILDCARD_SUFFIX: {
                "value": f"*{_escape_wildcard(value)}*", "case_insensitive": True,
            }
        }
    }


def _subject(match: TextMatch) -> Query:
    """A subject criterion, case-insensitive; *empty* means no subject or an empty one."""
    if match.op is Op.EMPTY:
        return {
            "bool": {
                "should": [
                    {"bool": {"must_not": [{"exists": {"field": SUBJECT_WILDCARD}}]}},
                    {"term": {SUBJECT_KEYWORD: ""}},
                ],
                "minimum_should_match": 1,
            }
        }
    value = match.value.lower()
    if match.op is Op.IS:
        return {"term": {SUBJECT_LOWER: value}}
    if match.op is Op.BEGINS:
        return {"prefix": {SUBJECT_LOWER: {"value": value}}}
    return {
        "wildcard": {
            SUBJECT_WILDCARD: {"value": f"*{_escape_wildcard(value)}*", "case_insensitive": True}
        }
    }


def _attachment(value: str) -> Query:
    """An attachment by SHA-256 (64 hex digits) or by file name (case-insensitive)."""
    if _SHA256.match(value):
        return {"term": {ATTACHMENT_SHA256: value.lower()}}
    return {"term": {ATTACHMENT_NAME: value.lower()}}


def _events(events: tuple[Event, ...], recipient: Query | None) -> Query:
    """Events OR-ed. Per-recipient events go to the matching nested recipient if there is one."""
    tags = [event.value for event in events]
    if recipient is None:
        return {"terms": {TAGS: tags}}
    should: list[Query] = []
    statuses = [s for event in events for s in RECIPIENT_STATUSES.get(event, ())]
    if statuses:
        should.append(
            _nested({"bool": {"filter": [recipient, {"terms": {RCPT_STATUS: statuses}}]}})
        )
    message_level = [event.value for event in events if event not in RECIPIENT_STATUSES]
    if message_level:
        should.append({"terms": {TAGS: message_level}})
    return {"bool": {"should": should, "minimum_should_match": 1}}
