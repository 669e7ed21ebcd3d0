"""A realistic, deterministic mix of ESA mail_logs lines for benchmarks.

Shapes come from the public samples (shared/samples/esa-text): per message an inbound
connection (new, HAT policy, TLS), the envelope (start, from, recipients, Message-ID, subject,
ready), policy and scanning verdicts (anti-spam, anti-virus, AMP, outbreak, SPF/DKIM/DMARC,
URLs, attachments), then delivery (new DCID, TLS, start, done, response) and the end, about 25
lines per message. Some connections are rejected without a message; some messages bounce, are
delayed then delivered, are quarantined, split, or dropped by anti-virus. Lines are RFC 3164
syslog framed with the appliance as host (``<22>Mar 17 00:00:01 esa1.example.net mail_logs:
Info: ...``), sorted by time, so each appliance's lines are in its own order.

Used by bench/bench_parse.py and importable by other benchmarks::

    from bench.mix import generate
    lines = generate(10_000, seed=1)            # list[bytes], no trailing newlines

Same arguments, same lines (``random.Random(seed)``); no I/O.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

START = 1710633600.0
"""2024-03-17 00:00:00 UTC: the first message's time (parse with year=2024 or received_at)."""

HOSTS = ("esa1.example.net", "esa2.example.net", "esa3.example.net")

_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.co.th", "corp.example",
            "partner.example", "shop.example", "news.example.org")
_USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
          "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter")
_SUBJECTS = ("Invoice {n}", "Re: meeting on {n}", "Your order #{n} has shipped",
             "Weekly report {n}", "FW: contract draft v{n}", "Password reset request",
             "ยืนยันการสั่งซื้อ {n}", "Newsletter issue {n}", "Re: [ticket #{n}] printer",
             "Quarterly results {n}")
_GROUPS = (("ACCEPT", "UNKNOWNLIST", "sbrs[-1.0:10.0]"), ("ACCEPT", "ACCEPTLIST", "sbrs[3.0:10.0]"),
           ("RELAY", "RELAYLIST", "10.1.1.0/24"), ("ACCEPT", "SUSPECTLIST", "sbrs[-3.0:-1.0]"))
_COUNTRIES = ("Thailand", "United States", "Germany", "Japan", "Singapore", "not enabled")
_CIPHERS = ("ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256", "AES128-SHA")
_ATTACHMENTS = ("invoice.pdf", "report.xlsx", "photo.jpg", "contract.docx", "Banner.gif")


@dataclass(slots=True)
class Message:
    """What the generator decided for one message (the truth a correlator should rebuild)."""

    host: str
    icid: int
    mid: int | None
    sender: str
    recipients: list[str]
    subject: str
    outcome: str
    """delivered, bounced, delayed_then_delivered, quarantined, dropped, rejected, split."""
    lines: list[tuple[float, int, str]] = field(default_factory=list)
    """(time, sequence, body) before framing."""


@dataclass(slots=True)
class _Counters:
    icid: int
    mid: int
    dcid: int


def _address(rng: random.Random) -> str:
    return f"{rng.choice(_USERS)}{rng.randrange(100)}@{rng.choice(_DOMAINS)}"


def _ip(rng: random.Random) -> str:
    return f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}." \
           f"{rng.randrange(1, 255)}"


def _plan_message(rng: random.Random, host: str, ids: _Counters, t: float) -> Message:
    seq = 0
    lines: list[tuple[float, int, str]] = []

    def add(delay: float, body: str) -> None:
        nonlocal t, seq
        t += delay
        seq += 1
        lines.append((t, seq, body))

    ids.icid += 1
    icid = ids.icid
    client = _ip(rng)
    rdns = f"mx{rng.randrange(1, 9)}.{rng.choice(_DOMAINS)}"
    add(0.0, f"New SMTP ICID {icid} interface Data 1 (10.1.1.1) address {client} "
             f"reverse dns host {rdns} verified {rng.choice(('yes', 'yes', 'no'))}")
    sender = _address(rng)
    roll = rng.random()
    if roll < 0.10:  # rejected connection: no message
        sbrs = round(rng.uniform(-10.0, -3.0), 1)
        add(0.01, f"ICID {icid} REJECT SG BLOCKLIST match sbrs[-10.0:-3.0] SBRS {sbrs} "
                  f"country {rng.choice(_COUNTRIES)}")
        add(0.05, f"ICID {icid} close")
        return Message(host, icid, None, sender, [], "", "rejected", lines)
    action, group, match = rng.choice(_GROUPS)
    sbrs_text = rng.choice(("None", "not enabled", str(round(rng.uniform(-1.0, 10.0), 1))))
    add(0.01, f"ICID {icid} {action} SG {group} match {match} SBRS {sbrs_text} "
              f"country {rng.choice(_COUNTRIES)}")
    add(0.05, f"ICID {icid} TLS success protocol TLSv1.2 cipher {rng.choice(_CIPHERS)}")
    ids.mid += 1
    mid = ids.mid
    recipients = [_address(rng) for _ in range(rng.choice((1, 1, 1, 2, 3)))]
    subject = rng.choice(_SUBJECTS).format(n=rng.randrange(1, 100_000))
    add(0.02, f"Start MID {mid} ICID {icid}")
    add(0.01, f"MID {mid} ICID {icid} From: <{sender}>")
    for rid, rcpt in enumerate(recipients):
        add(0.01, f"MID {mid} ICID {icid} RID {rid} To: <{rcpt}>")
    if rng.random() < 0.05:
        add(0.01, f"MID {mid} ICID {icid} RID {len(recipients)} To: <{_address(rng)}> "
                  "Rejected by RAT")
    add(0.03, f"MID {mid} Message-ID '<{rng.getrandbits(48):x}.{mid}@{sender.split('@')[1]}>'")
    quote = rng.choice(("'", "'", '"', ""))
    add(0.0, f"MID {mid} Subject {quote}{subject}{quote}")
    size = rng.randrange(800, 2_000_000)
    add(0.01, f"MID {mid} ready {size} bytes from <{sender}>")
    add(0.0, f"MID {mid} matched all recipients for per-recipient policy DEFAULT in the "
             f"{'outbound' if action == 'RELAY' else 'inbound'} table")
    add(0.01, f"ICID {icid} close")
    add(0.0, f"MID {mid} SPF: mailfrom identity {sender} {rng.choice(('Pass', 'None', 'Fail'))} "
             "(v=spf1)")
    add(0.0, f"MID {mid} DKIM: pass signature verified (d={sender.split('@')[1]} s=s1 "
             f"i=@{sender.split('@')[1]})")
    add(0.0, f"MID {mid} DMARC: Message from domain {sender.split('@')[1]}, DMARC pass "
             "(SPF aligned True, DKIM aligned True)")
    spam = rng.choice(("negative", "negative", "negative", "positive", "suspect"))
    add(0.02, f"MID {mid} interim verdict using engine: CASE spam {spam}")
    add(0.02, f"MID {mid} using engine: CASE spam {spam}")
    if rng.random() < 0.3:
        add(0.0, f"MID {mid} attachment '{rng.choice(_ATTACHMENTS)}'")
    if rng.random() < 0.3:
        add(0.0, f"MID {mid} URL https://{rng.choice(_DOMAINS)}/p/{rng.getrandbits(32):x} has "
                 f"reputation {round(rng.uniform(-10, 10), 1)} matched Condition: URL "
                 "Reputation Rule")
    viral = rng.random() < 0.02
    add(0.02, f"MID {mid} interim AV verdict using Sophos {'VIRAL' if viral else 'CLEAN'}")
    if viral:
        add(0.0, f"MID {mid} antivirus positive 'EICAR-AV-Test'")
        add(0.0, f"Message aborted MID {mid} Dropped by antivirus")
        add(0.0, f"Message finished MID {mid} done")
        return Message(host, icid, mid, sender, recipients, subject, "dropped", lines)
    add(0.0, f"MID {mid} antivirus negative")
    add(0.01, f"MID {mid} AMP file reputation verdict : "
              f"{rng.choice(('CLEAN', 'SKIPPED (no attachment in message)'))}")
    add(0.0, f"MID {mid} using engine: GRAYMAIL negative")
    add(0.0, f"MID {mid} Outbreak Filters: verdict negative")
    fate = rng.random()
    if fate < 0.03:
        add(0.0, f'MID {mid} quarantined to "Policy" (content filter: q_exe)')
        add(0.0, f"Message finished MID {mid} done")
        return Message(host, icid, mid, sender, recipients, subject, "quarantined", lines)
    outcome = "delivered"
    if fate < 0.05 and len(recipients) > 1:
        ids.mid += 1
        add(0.0, f"MID {mid} was split creating MID {ids.mid} due to a per-recipient policy "
                 "Marketing in the inbound table")
        outcome = "split"
    add(0.0, f"MID {mid} queued for delivery")
    ids.dcid += 1
    dcid = ids.dcid
    rids = ", ".join(str(rid) for rid in range(len(recipients)))
    add(0.05, f"New SMTP DCID {dcid} interface 10.1.1.2 address {_ip(rng)} port 25")
    add(0.05, f"DCID {dcid} TLS success protocol TLSv1.2 cipher {rng.choice(_CIPHERS)}")
    add(0.01, f"Delivery start DCID {dcid} MID {mid} to RID [{rids}]")
    if fate > 0.95:
        add(0.2, f"Bounced: DCID {dcid} MID {mid} to RID 0 - 5.1.0 - Unknown address error "
                 "('550', ['5.1.1 user unknown']) []")
        outcome = "bounced"
    elif fate > 0.90:
        add(0.2, f"Delayed: DCID {dcid} MID {mid} to RID 0 - 4.1.0 - Unknown address error "
                 "('466', ['Mailbox full.']) []")
        add(0.0, f"Message {mid} to RID [0] pending till "
                 f"{time.strftime('%a %b %d %H:%M:%S %Y', time.gmtime(t + 60))}")
        add(0.01, f"DCID {dcid} close")
        ids.dcid += 1
        dcid = ids.dcid
        add(60.0, f"New SMTP DCID {dcid} interface 10.1.1.2 address {_ip(rng)} port 25")
        add(0.01, f"Delivery start DCID {dcid} MID {mid} to RID [0]")
        add(0.2, f"Message done DCID {dcid} MID {mid} to RID [0]")
        add(0.0, f"MID {mid} RID [0] Response '2.0.0 Ok: queued as {rng.getrandbits(40):X}'")
        outcome = "delayed_then_delivered"
    else:
        add(0.2, f"Message done DCID {dcid} MID {mid} to RID [{rids}]")
        add(0.0, f"MID {mid} RID [{rids}] Response '2.0.0 Ok: queued as "
                 f"{rng.getrandbits(40):X}'")
    add(0.0, f"Message finished MID {mid} done")
    add(0.05, f"DCID {dcid} close")
    return Message(host, icid, mid, sender, recipients, subject, outcome, lines)


def plan(n_messages: int, seed: int = 0, hosts: Sequence[str] = HOSTS,
         start: float = START, rate: float = 200.0) -> list[Message]:
    """The messages (connections) the mix is made of; ``rate`` is messages per second."""
    rng = random.Random(seed)
    counters = {host: _Counters(icid=rng.randrange(1, 10**6), mid=rng.randrange(1, 10**7),
                                dcid=rng.randrange(1, 10**6)) for host in hosts}
    messages: list[Message] = []
    t = start
    for _ in range(n_messages):
        t += rng.expovariate(rate)
        host = rng.choice(hosts)
        messages.append(_plan_message(rng, host, counters[host], t))
    return messages


def frame(host: str, t: float, body: str, level: str = "Info", pri: int = 22) -> bytes:
    """One RFC 3164 line (UTC wall clock) for ``body``."""
    stamp = time.strftime("%b %d %H:%M:%S", time.gmtime(t))
    if stamp[4] == "0":
        stamp = f"{stamp[:4]} {stamp[5:]}"
    return f"<{pri}>{stamp} {host} mail_logs: {level}: {body}".encode()


def render(messages: Sequence[Message]) -> list[bytes]:
    """All lines of ``messages`` merged in time order (stable per appliance)."""
    timed = [(t, index, seq, message.host, body)
             for index, message in enumerate(messages) for t, seq, body in message.lines]
    timed.sort()
    return [frame(host, t, body) for t, _index, _seq, host, body in timed]


def generate(n_messages: int, seed: int = 0, hosts: Sequence[str] = HOSTS,
             start: float = START, rate: float = 200.0) -> list[bytes]:
    """``n_messages`` connections' worth of syslog-framed lines (about 25 per message)."""
    return render(plan(n_messages, seed, hosts, start, rate))


if __name__ == "__main__":
    import sys

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    for line in generate(count, seed=int(sys.argv[2]) if len(sys.argv) > 2 else 0):
        sys.stdout.buffer.write(line + b"\n")
