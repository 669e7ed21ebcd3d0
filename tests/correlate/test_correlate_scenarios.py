"""Scenarios, table-driven: an appliance's log lines in, message and connection records out."""

from __future__ import annotations

import random
from typing import Any

import pytest

from streams.correlate import Correlator
from tests.correlate.correlate_support import T0, Line, Run, get, iso, parse, run_events, run_lines

# --- Building blocks ---------------------------------------------------------------------------

CONNECT: list[Line] = [
    (0, "New SMTP ICID 5 interface Data 1 (10.1.1.1) address 192.0.2.9 reverse dns host "
        "mx.example.net verified yes"),
    (0, "ICID 5 ACCEPT SG UNKNOWNLIST match sbrs[-1.0:10.0] SBRS 3.4 country Thailand"),
    (0, "ICID 5 TLS success protocol TLSv1.2 cipher ECDHE-RSA-AES256-GCM-SHA384"),
]


def envelope(mid: int = 6, icid: int = 5, *, rcpts: tuple[str, ...] = ("bob@example.org",),
             t: float = 1, sender: str = "alice@example.com", host: str = "esa") -> list[Line]:
    """Start, From, To lines, headers and ready of one message."""
    lines: list[Line] = [
        (t, f"Start MID {mid} ICID {icid}", host),
        (t, f"MID {mid} ICID {icid} From: <{sender}>", host),
    ]
    lines += [(t, f"MID {mid} ICID {icid} RID {rid} To: <{addr}>", host)
              for rid, addr in enumerate(rcpts)]
    lines += [
        (t + 1, f"MID {mid} Message-ID '<abc{mid}@example.com>'", host),
        (t + 1, f"MID {mid} Subject 'Hello'", host),
        (t + 1, f"MID {mid} ready 4306 bytes from <{sender}>", host),
        (t + 1, f"MID {mid} matched all recipients for per-recipient policy DEFAULT in the "
                "inbound table", host),
    ]
    return lines


SCAN_CLEAN: list[Line] = [
    (3, "ICID 5 close"),
    (3, "MID 6 interim verdict using engine: CASE spam negative"),
    (3, "MID 6 using engine: CASE spam negative"),
    (3, "MID 6 interim AV verdict using Sophos CLEAN"),
    (3, "MID 6 antivirus negative"),
    (3, "MID 6 Outbreak Filters: verdict negative"),
]


def deliver(mid: int = 6, dcid: int = 8, rids: str = "0", t: float = 4,
            finish: bool = True) -> list[Line]:
    """A delivery connection delivering ``rids`` of ``mid``, then the finish."""
    lines: list[Line] = [
        (t, f"MID {mid} queued for delivery"),
        (t, f"New SMTP DCID {dcid} interface 10.1.1.2 address 198.51.100.25 port 25"),
        (t, f"Delivery start DCID {dcid} MID {mid} to RID [{rids}]"),
        (t + 1, f"Message done DCID {dcid} MID {mid} to RID [{rids}]"),
        (t + 1, f"MID {mid} RID [{rids}] Response '2.0.0 Ok: queued as 4XyZ'"),
    ]
    if finish:
        lines.append((t + 1, f"Message finished MID {mid} done"))
    lines.append((t + 2, f"DCID {dcid} close"))
    return lines


DELIVERED = CONNECT + envelope() + SCAN_CLEAN + deliver()

HOUR = 3600


# --- The table -------------------------------------------------------------------------------
# (name, lines, expectations). Expectation keys: "m6" / "c5" (appliance "esa"), "esa2:m6",
# with {path: value}; "revisions:m6": how many times the message was emitted (at least);
# "count:message": how many message records in all.

SCENARIOS: list[tuple[str, list[Line], dict[str, Any]]] = [
    ("delivered", DELIVERED, {
        "m6": {
            "status": "delivered", "complete": True, "expired": False, "icid": 5,
            "started_at": iso(1), "finished_at": iso(5), "sender": "alice@example.com",
            "recipients.0.address": "bob@example.org", "recipients.0.status": "delivered",
            "recipients.0.dcid": 8, "recipients.0.response": "2.0.0 Ok: queued as 4XyZ",
            "recipients.0.updated_at": iso(5), "recipients.0.remote_ip": "198.51.100.25",
            "message_id": "<abc6@example.com>", "subject": "Hello", "size": 4306,
            "direction": "inbound", "policy": "DEFAULT", "client.ip": "192.0.2.9",
            "client.rdns": "mx.example.net", "client.rdns_verified": True, "client.sbrs": 3.4,
            "client.sender_group": "UNKNOWNLIST", "client.flow": "ACCEPT",
            "client.interface": "Data 1", "client.country": "Thailand",
            "client.tls": "TLSv1.2", "auth_user": None, "verdicts.antispam": "negative",
            "verdicts.antivirus": "negative", "verdicts.outbreak": "negative",
            "tags": ["delivered"], "parent_mid": None, "child_mids": [],
            "events.0.kind": "msg_start", "events.-1.kind": "msg_finished",
        },
        "c5": {"action": "ACCEPT", "mids": [6], "complete": True, "closed_at": iso(3),
               "started_at": iso(0), "client.ip": "192.0.2.9", "client.tls": "TLSv1.2"},
        "count:message": 1,
    }),
    ("multiple recipients with mixed outcomes",
     CONNECT + envelope(rcpts=("bob@example.org", "nobody@example.org")) + [
         (1, "MID 6 ICID 5 RID 2 To: <carol@example.org> Rejected by RAT"),
         (4, "New SMTP DCID 8 interface 10.1.1.2 address 198.51.100.25 port 25"),
         (4, "Delivery start DCID 8 MID 6 to RID [0, 1]"),
         (5, "Message done DCID 8 MID 6 to RID [0]"),
         (5, "Bounced: DCID 8 MID 6 to RID 1 - 5.1.0 - Unknown address error ('550', "
             "['5.1.1 user unknown']) []"),
         (5, "Message finished MID 6 done"),
     ], {
         "m6": {"status": "partially_delivered", "recipients.0.status": "delivered",
                "recipients.1.status": "hard_bounced", "recipients.2.status": "rejected",
                "recipients.2.address": "carol@example.org",
                "recipients.1.response": "5.1.0 - Unknown address error - ('550', "
                                         "['5.1.1 user unknown'])",
                "tags": ["delivered", "hard_bounced"]},
     }),
    ("soft bounce, then delivery an hour later",
     CONNECT + envelope() + [
         (4, "New SMTP DCID 8 interface 10.1.1.2 address 198.51.100.25 port 25"),
         (4, "Delivery start DCID 8 MID 6 to RID [0]"),
         (5, "Delayed: DCID 8 MID 6 to RID 0 - 4.1.0 - Unknown address error ('466', "
             "['Mailbox full.']) []"),
         (5, "Message 6 to RID [0] pending till Mon Mar 18 11:00:05 2024"),
         (6, "DCID 8 close"),
         (HOUR + 5, "New SMTP DCID 9 interface 10.1.1.2 address 198.51.100.26 port 25"),
         (HOUR + 5, "Delivery start DCID 9 MID 6 to RID [0]"),
         (HOUR + 6, "Message done DCID 9 MID 6 to RID [0]"),
         (HOUR + 6, "Message finished MID 6 done"),
     ], {
         "m6": {"status": "delivered", "recipients.0.status": "delivered",
                "recipients.0.dcid": 9, "recipients.0.remote_ip": "198.51.100.26",
                "recipients.0.response": None, "tags": ["delivered", "soft_bounced"]},
         "first:m6": {"status": "in_flight", "complete": False,
                      "recipients.0.status": "soft_bounced",
                      "recipients.0.response": "4.1.0 - Unknown address error - ('466', "
                                               "['Mailbox full.'])"},
         "revisions:m6": 2,
     }),
    ("hard bounce and the bounce message",
     CONNECT + envelope() + [
         (4, "Delivery start DCID 8 MID 6 to RID [0]"),
         (5, "Bounced: DCID 8 MID 6 to RID 0 - 5.1.0 - Unknown address error ('550', "
             "['5.1.1 user unknown']) []"),
         (5, "MID 10 was generated for bounce of MID 6"),
         (5, "MID 10 queued for delivery"),
         (5, "Message finished MID 6 done"),
         (6, "Delivery start DCID 9 MID 10 to RID [0]"),
         (6, "Message done DCID 9 MID 10 to RID [0]"),
         (6, "Message finished MID 10 done"),
     ], {
         "m6": {"status": "bounced", "recipients.0.status": "hard_bounced",
                "tags": ["hard_bounced"], "child_mids": [10]},
         "m10": {"status": "delivered", "parent_mid": 6, "sender": "",
                 "recipients.0.address": "alice@example.com", "subject": None,
                 "message_id": None},
     }),
    ("virus: dropped by anti-virus",
     CONNECT + envelope() + [
         (3, "MID 6 interim AV verdict using Sophos VIRAL"),
         (3, "MID 6 antivirus positive 'EICAR-AV-Test'"),
         (3, "Message aborted MID 6 Dropped by antivirus"),
         (3, "Message finished MID 6 done"),
     ], {
         "m6": {"status": "dropped", "recipients.0.status": "dropped",
                "verdicts.antivirus": "positive", "verdicts.virus_name": "EICAR-AV-Test",
                "tags": ["virus_positive", "dropped"], "complete": True},
     }),
    ("spam quarantine",
     CONNECT + envelope() + [
         (3, "MID 6 using engine: CASE spam positive"),
         (3, "ISQ: Tagging MID 6 for quarantine"),
         (3, "RPC Delivery start RCID 4051 MID 6 to local IronPort Spam Quarantine"),
         (4, "Message finished MID 6 done"),
     ], {
         "m6": {"status": "quarantined", "recipients.0.status": "quarantined",
                "verdicts.antispam": "positive", "tags": ["spam_positive", "spam_quarantine"],
                "quarantines": [{"name": "spam", "entered_at": iso(3), "released_at": None}]},
     }),
    ("outbreak quarantine, released two hours later",
     CONNECT + envelope() + [
         (3, "MID 6 Outbreak Filters: verdict positive"),
         (3, 'MID 6 quarantined to "Outbreak" (VOF rule: OUTBREAK_0001)'),
         (2 * HOUR, 'MID 6 released from quarantine "Outbreak" (expired)'),
         *deliver(t=2 * HOUR + 1),
     ], {
         "m6": {"status": "delivered", "tags": ["delivered", "outbreak_quarantine"],
                "verdicts.outbreak": "positive",
                "quarantines": [{"name": "Outbreak", "entered_at": iso(3),
                                 "released_at": iso(2 * HOUR)}]},
         "first:m6": {"status": "quarantined", "complete": False,
                      "recipients.0.status": "quarantined", "quarantines.0.released_at": None},
         "revisions:m6": 2,
     }),
    ("finished in a policy quarantine, released the next day",
     [*CONNECT, *envelope(),
      (3, 'MID 6 quarantined to "Policy" (content filter: q_exe)'),
      (4, "Message finished MID 6 done"),
      (30 * HOUR, 'MID 6 released from quarantine "Policy" (manual release)'),
      *deliver(t=30 * HOUR + 1)], {
         "m6": {"status": "delivered", "finished_at": iso(30 * HOUR + 2),
                "tags": ["delivered", "policy_quarantine"],
                "quarantines.0.released_at": iso(30 * HOUR)},
         "first:m6": {"status": "quarantined", "complete": True},
         "revisions:m6": 2,
         "count:message": 1,
     }),
    ("rewrite: the new MID carries on and inherits the envelope",
     CONNECT + envelope() + [
         (3, "MID 6 rewritten to MID 7 by LDAP rewrite"),
         (3, "Message finished MID 6 done"),
         *deliver(mid=7),
     ], {
         "m6": {"status": "rewritten", "child_mids": [7], "complete": True},
         "m7": {"status": "delivered", "parent_mid": 6, "sender": "alice@example.com",
                "recipients.0.address": "bob@example.org", "recipients.0.status": "delivered",
                "subject": "Hello", "message_id": "<abc6@example.com>", "icid": 5,
                "client.ip": "192.0.2.9", "size": 4306},
     }),
    ("split: recipients of another policy continue under a new MID",
     [*CONNECT, *envelope(rcpts=("bob@example.org", "carol@example.org"))[:4],
         (2, "MID 6 matched recipients [0] for per-recipient policy DEFAULT in the inbound "
             "table"),
         (2, "MID 6 matched recipients [1] for per-recipient policy Marketing in the inbound "
             "table"),
         (2, "MID 6 was split creating MID 8 due to a per-recipient policy Marketing in the "
             "inbound table"),
         *deliver(mid=6, rids="0"),
         *deliver(mid=8, dcid=9, rids="1"),
     ], {
         "m6": {"status": "delivered", "child_mids": [8], "recipients.1.moved_to": 8,
                "recipients.0.status": "delivered"},
         "m8": {"status": "delivered", "parent_mid": 6, "sender": "alice@example.com",
                "recipients": [{"rid": 1, "address": "carol@example.org",
                                "status": "delivered", "dcid": 9,
                                "response": "2.0.0 Ok: queued as 4XyZ",
                                "updated_at": iso(5), "remote_ip": "198.51.100.25"}]},
     }),
    ("bcc copy: a generated message with its own recipient",
     [
         *DELIVERED,
         (4, "MID 9 was generated based on MID 6 by bcc filter 'copy'"),
         (4, "MID 9 ICID 0 RID 0 To: <archive@example.net>"),
         *deliver(mid=9, dcid=9),
     ], {
         "m6": {"status": "delivered", "child_mids": [9]},
         "m9": {"status": "delivered", "parent_mid": 6, "sender": "alice@example.com",
                "subject": "Hello", "recipients.0.address": "archive@example.net"},
     }),
    ("aborted while receiving",
     CONNECT + envelope()[:3] + [
         (2, "Message aborted MID 6 Receiving aborted by sender"),
         (2, "Message finished MID 6 aborted"),
         (2, "ICID 5 lost"),
     ], {
         "m6": {"status": "aborted", "recipients.0.status": "aborted", "tags": ["aborted"],
                "complete": True},
         "c5": {"lost": True, "complete": True, "mids": [6]},
     }),
    ("rejected connections are records without messages",
     [
         (0, "New SMTP ICID 7 interface Data 1 (10.1.1.1) address 203.0.113.5 reverse dns "
             "host unknown verified no"),
         (0, "ICID 7 REJECT SG BLOCKLIST match sbrs[-10.0:-3.0] SBRS -5.5 country Germany"),
         (0, "ICID 7 close"),
         (1, "New SMTP ICID 8 interface Data 1 (10.1.1.1) address 203.0.113.7 reverse dns "
             "host unknown verified no"),
         (1, "ICID 8 TCPREFUSE SG BLOCKED match 203.0.113.7 SBRS -9.0"),
         (1, "ICID 8 close"),
     ], {
         "c7": {"action": "REJECT", "mids": [], "complete": True, "client.sbrs": -5.5,
                "client.sender_group": "BLOCKLIST", "client.country": "Germany",
                "client.rdns_verified": False},
         "c8": {"action": "TCPREFUSE", "client.ip": "203.0.113.7"},
         "count:message": 0,
     }),
    ("SMTP AUTH relay: the user on the connection and its messages",
     [
         (0, "New SMTP ICID 5 interface Data 1 (10.1.1.1) address 10.1.1.50 reverse dns host "
             "pc50.corp.example verified yes"),
         (0, "ICID 5 RELAY SG RELAYLIST match 10.1.1.0/24 SBRS not enabled"),
         (0, "SMTP Auth: (ICID 5) succeeded for user: jdoe using AUTH mechanism: LOGIN with "
             "profile: corp"),
         *envelope()[:3],
         (2, "MID 6 matched all recipients for per-recipient policy OUT in the outbound table"),
         *deliver(),
     ], {
         "m6": {"auth_user": "jdoe", "direction": "outbound", "policy": "OUT",
                "client.flow": "RELAY", "client.sbrs": None, "status": "delivered"},
         "c5": {"auth_user": "jdoe", "action": "RELAY"},
     }),
    ("two appliances with colliding MIDs are two messages",
     envelope(host="esa1", sender="a@one.example") + envelope(host="esa2", sender="b@two.example")
     + [(5, "Message finished MID 6 done", "esa1"), (5, "Message finished MID 6 done", "esa2")],
     {
         "esa1:m6": {"sender": "a@one.example", "host": "esa1", "complete": True},
         "esa2:m6": {"sender": "b@two.example", "host": "esa2", "complete": True},
         "count:message": 2,
     }),
    ("a bounce-log line after the finish re-emits the record",
     [
         *DELIVERED,
         (600, "Bounced: 6:0 From:<alice@example.com> To:<bob@example.org> Reason: \"5.1.0 - "
               "Unknown address error\" Response: \"('550', ['no such user'])\""),
     ], {
         "m6": {"status": "bounced", "recipients.0.status": "hard_bounced",
                "tags": ["delivered", "hard_bounced"]},
         "first:m6": {"status": "delivered"},
         "revisions:m6": 2,
     }),
    ("a consolidated event log line is a whole message",
     [(5, "CEF:0|Cisco|C100V Email Security Virtual Appliance|14.0.0-657|"
          "ESA_CONSOLIDATED_LOG_EVENT|Consolidated Log Event|5|ESAMID=1053 ESAICID=134 "
          "ESAASVerdict=POSITIVE ESAAVVerdict=NEGATIVE ESADLPVerdict=NOT_EVALUATED "
          "ESAMailFlowPolicy=ACCEPT suser=alice@example.com cs1Label=MailPolicy cs1=DEFAULT "
          "act=QUARANTINED ESAFinalActionDetails=To POLICY cs4Label=ExternalMsgID "
          "cs4='<abc@example.com>' ESAMsgSize=11873 duser=bob@example.org cfp1=-1.5 "
          "deviceDirection=0 ESASenderGroup=UNKNOWNLIST sourceAddress=192.0.2.9 msg='Testing'")],
     {
         "m1053": {"status": "quarantined", "complete": True, "icid": 134,
                   "sender": "alice@example.com", "recipients.0.address": "bob@example.org",
                   "recipients.0.status": "quarantined", "message_id": "<abc@example.com>",
                   "subject": "Testing", "size": 11873, "policy": "DEFAULT",
                   "direction": "inbound", "verdicts.antispam": "positive",
                   "verdicts.dlp": None, "client.ip": "192.0.2.9", "client.sbrs": -1.5,
                   "client.flow": "ACCEPT", "quarantines.0.name": "POLICY",
                   "tags": ["spam_positive", "policy_quarantine"]},
     }),
    ("a MID reused with a new start is a new message",
     [*envelope(), (2, "Message finished MID 6 done"), *envelope(t=100, sender="z@x.example"),
      (102, "Message finished MID 6 done")],
     {"count:message": 2}),
]


def _check(run: Run, expectations: dict[str, Any]) -> None:
    for key, wanted in expectations.items():
        if key.startswith("count:"):
            kind = key.split(":", 1)[1]
            assert len({r["id"] for r in run.emitted if r["type"] == kind}) == wanted, key
            continue
        which, _, ident = key.rpartition(":")
        host = "esa"
        if which not in ("", "first", "revisions"):
            host = which
        record_type = "message" if ident[0] == "m" else "connection"
        revisions = run.revisions(record_type, int(ident[1:]), host)
        assert revisions, f"no {record_type} {ident} on {host}"
        if which == "revisions":
            assert len(revisions) >= wanted, f"{key}: {len(revisions)} emissions"
            numbers = [r["revision"] for r in revisions]
            assert numbers == sorted(set(numbers)), f"{key}: revisions not increasing {numbers}"
            assert len({r["id"] for r in revisions}) == 1, f"{key}: the id changed"
            continue
        record = revisions[0] if which == "first" else run.one(record_type, int(ident[1:]), host)
        for path, value in wanted.items():
            assert get(record, path) == value, f"{key} {path}: {get(record, path)!r}"


@pytest.mark.parametrize(("name", "lines", "expected"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_scenario(name: str, lines: list[Line], expected: dict[str, Any]) -> None:
    """Each scenario's lines come out as the records the table describes."""
    _check(run_lines(lines), expected)


# A reused MID is told apart by its Start line: lines of the new message that come before
# their own Start line cannot be told from late lines of the old one, so that case is left out.
SHUFFLED = [s for s in SCENARIOS if not s[0].startswith("a MID reused")]


@pytest.mark.parametrize(("name", "lines", "expected"), SHUFFLED, ids=[s[0] for s in SHUFFLED])
def test_scenario_shuffled_within_grace(name: str, lines: list[Line],
                                        expected: dict[str, Any]) -> None:
    """Any order of a scenario's lines within the grace period gives the same final records."""
    reference = run_lines(lines).final
    rng = random.Random(name)
    for _ in range(5):
        keyed = sorted(lines, key=lambda line: line[0] + rng.uniform(0, 9.9))
        assert run_lines(keyed).final == reference


def test_duplicated_lines_change_nothing() -> None:
    """Every line applied twice gives exactly the records of every line applied once."""
    doubled = [line for line in DELIVERED for _ in range(2)]
    once, twice = run_lines(DELIVERED), run_lines(doubled)
    assert twice.emitted == once.emitted


def test_unknown_lines_do_not_disturb_known_messages() -> None:
    """Unparseable lines and appliance noise in between change no record."""
    noise: list[Line] = [(2, "@@@ garbage line"), (3, "Status: CPULd 3 DskIO 0 RAMUtil 11"),
                         (3, "MID"), (4, "Start MID x ICID y"), (4, "ICID close")]
    mixed = sorted(DELIVERED + noise, key=lambda line: line[0])
    assert run_lines(mixed).final == run_lines(DELIVERED).final


def test_expiry_emits_open_state_as_incomplete() -> None:
    """An unfinished message reaching the 80 h horizon is emitted expired, then forgotten."""
    engine = Correlator()


    lines = CONNECT + envelope() + [(81 * HOUR, "New SMTP ICID 99 interface Data 1 (10.1.1.1) "
                                                "address 192.0.2.1 reverse dns host x verified no")]
    run = run_events(parse(lines), engine, flush=False)
    message = run.one("message", 6)
    assert (message["complete"], message["expired"], message["status"]) == (
        False, True, "in_flight")
    assert message["revision"] > run.revisions("message", 6)[0]["revision"]
    connection = run.one("connection", 5)
    assert connection["expired"] is True and connection["complete"] is False
    assert "esa|m|6" not in engine.state_keys() and "esa|c|5" not in engine.state_keys()
    assert engine.counts["expired"] == 2


def test_finished_state_is_retained_then_dropped() -> None:
    """A finished message stays for late lines for retain_seconds of log time, then goes."""
    engine = Correlator(retain_seconds=600)


    run_events(parse([*DELIVERED, (300, "ICID 77 close")]), engine, flush=False)
    assert "esa|m|6" in engine.state_keys()
    run_events(parse([(700, "ICID 78 close")]), engine, flush=False)
    assert "esa|m|6" not in engine.state_keys()
    assert any(rid.startswith("m-") for rid in engine.retired_ids())


def test_flush_emits_unfinished_messages_incomplete() -> None:
    """At the end of input an unfinished message comes out with complete false."""
    message = run_lines(CONNECT + envelope()).one("message", 6)
    assert message["complete"] is False and message["status"] == "in_flight"
    assert message["finished_at"] is None


def test_ids_are_stable_and_distinct() -> None:
    """The id depends on appliance, MID and start time only: equal across runs and revisions."""
    first, second = run_lines(DELIVERED), run_lines(DELIVERED)
    assert first.one("message", 6)["id"] == second.one("message", 6)["id"]
    shifted = run_lines([(t + 1, body) for t, body, *_ in DELIVERED])
    assert shifted.one("message", 6)["id"] != first.one("message", 6)["id"]


def test_a_waiting_message_is_kept_compressed_and_exports_the_same() -> None:
    """After its in-flight emission a waiting message is packed and compressed; its export,
    records and later lines are as if it never was."""
    lines = [*CONNECT, *envelope(), (4, "Delivery start DCID 8 MID 6 to RID [0]"),
             (5, "Delayed: DCID 8 MID 6 to RID 0 - 4.1.0 - Unknown address error ('466', "
                 "['Mailbox full.']) []"), (60, "ICID 99 close")]
    engine = Correlator(track_dirty=True)
    run_events(parse(lines), engine, flush=False)
    host = engine._hosts["esa"]  # internals on purpose: the compression is the subject
    assert isinstance(host.msgs[6], bytes)
    exported = engine.export("esa|m|6")
    state = host.msg(6)
    assert state is not None and host.msgs.get(6) is state and isinstance(state.blob, bytes)
    assert engine.export("esa|m|6") == exported
    state.thaw()
    assert isinstance(state.blob, str) and engine.export("esa|m|6") == exported
    later = run_events(parse([(HOUR, "Message done DCID 9 MID 6 to RID [0]"),
                              (HOUR, "Message finished MID 6 done")]), engine)
    assert later.one("message", 6)["status"] == "delivered"


def test_a_waiting_message_expires_a_horizon_after_its_latest_line() -> None:
    """A packed message that gets lines later (retries) has its wake entry moved each time it
    is packed again: it expires ``message_horizon`` after its latest line, however often it
    was unpacked and packed again, exported and restored in between."""
    delayed = [(4, "Delivery start DCID 8 MID 6 to RID [0]"),
               (5, "Delayed: DCID 8 MID 6 to RID 0 - 4.1.0 - Unknown address error ('466', "
                   "['Mailbox full.']) []"), (60, "ICID 5 close")]
    engine = Correlator(message_horizon=10 * HOUR)
    run = run_events(parse([*CONNECT, *envelope(), *delayed]), engine, flush=False)
    assert isinstance(engine._hosts["esa"].msgs[6], bytes)  # internals: packed while it waits
    latest = 0
    for retry in range(1, 6):  # a retry every 3 hours; every one re-emits the record
        latest = retry * 3 * HOUR
        lines = [(latest, f"Delivery start DCID {8 + retry} MID 6 to RID [0]"),
                 (latest, f"Delayed: DCID {8 + retry} MID 6 to RID 0 - 4.1.0 - Unknown "
                          "address error ('466', ['Mailbox full.']) []")]
        run.emitted += run_events(parse(lines), engine, flush=False).emitted
        run.emitted += engine.advance(T0 + latest + 20, "esa")
        if retry == 3:
            fresh = Correlator(message_horizon=10 * HOUR)
            for key in engine.state_keys():
                data = engine.export(key)
                assert data is not None
                fresh.restore(key, data)
            engine = fresh
    assert not any(r["expired"] for r in run.revisions("message", 6))
    assert engine.advance(T0 + latest + 10 * HOUR - 1, "esa") == []
    expired = engine.advance(T0 + latest + 10 * HOUR + 1, "esa")
    assert [(r["mid"], r["expired"], r["status"]) for r in expired] == [(6, True, "in_flight")]
    assert "esa|m|6" not in engine.state_keys()


def test_a_connection_keeps_its_client_as_compact_text() -> None:
    """The client a connection keeps for its messages reads back exactly, NaN and all."""
    from streams.correlate.records import (  # noqa: PLC0415 - internals on purpose
        fold_client_text,
        unfold_client_text,
    )

    clients: list[tuple[dict[str, Any], str | None, int]] = [
        ({"ip": "192.0.2.9", "rdns": "mx.example.net", "rdns_verified": True, "sbrs": 3.4,
          "sender_group": "UNKNOWNLIST", "flow": "ACCEPT", "interface": "Data 1",
          "country": "Thailand", "tls": "TLSv1.2"}, None, 3),
        ({"ip": None, "rdns": None, "rdns_verified": False, "sbrs": -10.0,
          "sender_group": None, "flow": None, "interface": None, "country": None,
          "tls": "failed"}, "alice", 2),
        ({"ip": "2001:db8::1", "rdns": None, "rdns_verified": None, "sbrs": None,
          "sender_group": "G", "flow": "RELAY", "interface": "Data 2", "country": None,
          "tls": None}, None, 1),
    ]
    for client, user, used in clients:
        text = fold_client_text(client, user, used)
        assert text is not None
        assert unfold_client_text(text) == (client, user, used)
        assert list(unfold_client_text(text)[0]) == list(client)  # the key order too
    nan = dict(clients[0][0], sbrs=float("nan"))
    text = fold_client_text(nan, None, 2)
    assert text is not None
    sbrs = unfold_client_text(text)[0]["sbrs"]
    assert sbrs != sbrs  # noqa: PLR0124 - NaN reads back as NaN
    assert fold_client_text(clients[0][0], None, 0) is None


def test_a_line_seen_again_leaves_a_waiting_message_packed() -> None:
    """Redelivered lines (a worker restarting) change nothing and leave waiting messages
    packed as they were; a new line unpacks the message until its next emission."""
    lines = [*CONNECT, *envelope(), (4, "MID 6 queued for delivery"), (60, "ICID 5 close")]
    engine = Correlator()
    run_events(parse(lines), engine, flush=False)
    host = engine._hosts["esa"]  # internals on purpose: the representation is the subject
    packed = host.msgs.get(6)
    assert isinstance(packed, bytes)
    assert run_events(parse(envelope()), engine, flush=False).emitted == []
    assert host.msgs.get(6) is packed and engine.counts["duplicates"] == len(envelope())
    run_events(parse([(70, "Delivery start DCID 8 MID 6 to RID [0]")]), engine, flush=False)
    assert not isinstance(host.msgs.get(6), bytes)
    later = run_events(parse([(90, "ICID 77 close")]), engine, flush=False)
    assert later.one("message", 6)["events"][-1]["kind"] == "dlv_start"
    assert isinstance(host.msgs.get(6), bytes)


def test_a_waiting_message_keeps_one_wake_entry() -> None:
    """However often a waiting message is unpacked and packed again, one entry wakes it; a
    message that finishes and goes leaves none behind."""
    lines = [*CONNECT, *envelope(), (4, "MID 6 queued for delivery"), (60, "ICID 5 close")]
    for retry in range(1, 8):
        lines += [(retry * HOUR, f"Delivery start DCID {retry} MID 6 to RID [0]"),
                  (retry * HOUR, f"Delayed: DCID {retry} MID 6 to RID 0 - 4.1.0 - x ('466', "
                                 "['Mailbox full.']) []"), (retry * HOUR + 60, "ICID 9 close")]
    engine = Correlator()
    run_events(parse(lines), engine, flush=False)
    host = engine._hosts["esa"]  # internals on purpose: the schedule is the subject

    def entries() -> int:
        return sum(1 for bucket in host.buckets.values() for item in bucket if item == 6)

    assert isinstance(host.msgs.get(6), bytes) and entries() == 1
    run_events(parse([(8 * HOUR, "Message done DCID 9 MID 6 to RID [0]"),
                      (8 * HOUR, "Message finished MID 6 done"), (9 * HOUR, "ICID 9 close")]),
               engine, flush=False)
    assert "esa|m|6" not in engine.state_keys() and entries() == 0


# --- Records at the finish line (ESATRACK_EMIT_AT_FINISH, the workers' default) ----------------


def _early(lines: list[Line]) -> Run:
    return run_events(parse(lines), Correlator(emit_at_finish=True))


@pytest.mark.parametrize(("name", "lines", "expected"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_scenario_emitting_at_the_finish(name: str, lines: list[Line],
                                         expected: dict[str, Any]) -> None:
    """Records sent at their finish line: each scenario still ends in the records the table
    describes, and in the same final records for any order within the grace."""
    run = _early(lines)
    _check(run, expected)
    reference = run_lines(lines).final
    assert run.final == reference
    if name.startswith("a MID reused"):
        return
    rng = random.Random(name)
    for _ in range(30):
        keyed = sorted(lines, key=lambda line: line[0] + rng.uniform(0, 9.9))
        assert _early(keyed).final == reference


def _emitted_by_finish(lines: list[Line], mid: int) -> list[dict[str, Any]]:
    """The message records of ``mid`` that the apply of its finish line returned."""
    engine = Correlator(emit_at_finish=True)
    for event in parse(lines):
        out = engine.apply(event)
        if event.kind == "msg_finished" and event.mid == mid:
            return [r for r in out if r["type"] == "message" and r["mid"] == mid]
    raise AssertionError(f"no finish line of MID {mid}")


def _scenario(prefix: str) -> list[Line]:
    return next(lines for name, lines, _expected in SCENARIOS if name.startswith(prefix))


def test_a_split_message_goes_out_at_its_finish_line() -> None:
    """A split child has no Start line: its lineage line starts it, and its parent knows it,
    so it need not wait for the grace; neither does its parent."""
    split = _scenario("split:")
    (parent,) = _emitted_by_finish(split, 6)
    assert parent["child_mids"] == [8]
    (child,) = _emitted_by_finish(split, 8)
    assert (child["parent_mid"], child["status"], child["sender"]) == (6, "delivered",
                                                                       "alice@example.com")


def test_a_copy_whose_parent_is_not_known_yet_waits_for_the_grace() -> None:
    """A generated copy whose lines arrive before its parent's: the parent, created later,
    does not know the copy, so its lines would not wake it; the copy waits, and comes right."""
    bcc = _scenario("bcc copy")
    copy = [line for line in bcc if "MID 9" in line[1] or "DCID 9" in line[1]]
    reordered = copy + [line for line in bcc if line not in copy]
    assert not _emitted_by_finish(reordered, 9)
    assert _emitted_by_finish(bcc, 9)
    assert _early(reordered).one("message", 9)["sender"] == "alice@example.com"


SHORT = [s for s in SHUFFLED if max(t for t, *_ in s[1]) - min(t for t, *_ in s[1]) < 9]


@pytest.mark.parametrize(("name", "lines", "expected"), SHORT, ids=[s[0] for s in SHORT])
def test_any_single_line_arriving_last_changes_no_final_record(
        name: str, lines: list[Line], expected: dict[str, Any]) -> None:
    """Each line of a scenario (all within the grace) held back to the end, with records at
    the finish line: the final records are those of the lines in order."""
    reference = run_lines(lines).final
    for index in range(len(lines)):
        moved = lines[:index] + lines[index + 1:] + [lines[index]]
        assert _early(moved).final == reference, lines[index]


def test_a_record_whose_joins_may_still_change_waits_for_the_grace() -> None:
    """No early record when a later line could change it without raising its revision: a
    message without its Start line, a delivery connection without its address. Their records
    come after the grace, and right."""
    lines = _scenario("delivered")
    assert _emitted_by_finish(lines, 6)
    for missing in ("Start MID", "New SMTP DCID"):
        held = [line for line in lines if not line[1].startswith(missing)]
        assert not _emitted_by_finish(held, 6), missing
        assert _early(held).final == run_lines(held).final
