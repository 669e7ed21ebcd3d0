"""Every event kind and variant: one body in, the expected kind, identifiers and data out."""

from __future__ import annotations

from typing import Any

import pytest

from streams import events as ev
from streams.parse import Parser

PREFIX = "<22>Mar 17 18:24:37 esa1 mail_logs: Info: "
RECEIVED = 1710700000.0  # 2024-03-17T18:26:40Z

# (body, kind, (icid, mid, dcid), data): data compared exactly.
CASES: list[tuple[str, str, tuple[int | None, int | None, int | None], dict[str, Any]]] = [
    # --- connection ---------------------------------------------------------------------
    ("New SMTP ICID 5 interface Data 1 (10.1.1.1) address 192.0.2.9 reverse dns host "
     "mx.example.net verified yes", ev.CONN_NEW, (5, None, None),
     {"interface": "Data 1", "interface_ip": "10.1.1.1", "ip": "192.0.2.9",
      "rdns": "mx.example.net", "rdns_verified": True}),
    ("New SMTP ICID 7 interface Management (1.128.3.4) address 1.128.3.4 reverse dns host "
     "unknown verified no", ev.CONN_NEW, (7, None, None),
     {"interface": "Management", "interface_ip": "1.128.3.4", "ip": "1.128.3.4",
      "rdns": "unknown", "rdns_verified": False}),
    ("New SMTP ICID 8 interface Data 1 (10.1.1.1) address 192.0.2.9", ev.CONN_NEW,
     (8, None, None), {"interface": "Data 1", "interface_ip": "10.1.1.1", "ip": "192.0.2.9"}),
    ("ICID 5 ACCEPT SG UNKNOWNLIST match sbrs[-1.0:10.0] SBRS 3.4 country Thailand",
     ev.CONN_POLICY, (5, None, None),
     {"action": "ACCEPT", "sender_group": "UNKNOWNLIST", "match": "sbrs[-1.0:10.0]",
      "sbrs": 3.4, "country": "Thailand", "delayed": False}),
    ("ICID 442736 ACCEPT SG UNKNOWNLIST match sbrs[-2.0:10.0] SBRS -0.9", ev.CONN_POLICY,
     (442736, None, None),
     {"action": "ACCEPT", "sender_group": "UNKNOWNLIST", "match": "sbrs[-2.0:10.0]",
      "sbrs": -0.9, "country": None, "delayed": False}),
    ("ICID 10152 RELAY SG RELAY_SG match 75.111.22.123 SBRS not enabled", ev.CONN_POLICY,
     (10152, None, None),
     {"action": "RELAY", "sender_group": "RELAY_SG", "match": "75.111.22.123", "sbrs": None,
      "country": None, "delayed": False}),
    ("ICID 9 REJECT SG BLOCKLIST match sbrs[-10.0:-3.0] SBRS None country United States",
     ev.CONN_POLICY, (9, None, None),
     {"action": "REJECT", "sender_group": "BLOCKLIST", "match": "sbrs[-10.0:-3.0]",
      "sbrs": None, "country": "United States", "delayed": False}),
    ("ICID 10 TCPREFUSE SG BLOCKLIST match .spam.example SBRS -7.5", ev.CONN_POLICY,
     (10, None, None),
     {"action": "TCPREFUSE", "sender_group": "BLOCKLIST", "match": ".spam.example",
      "sbrs": -7.5, "country": None, "delayed": False}),
    ("ICID 67542 Delayed HAT REJECT continuing session for recipient logging "
     "(223.71.167.166)", ev.CONN_POLICY, (67542, None, None),
     {"action": "REJECT", "delayed": True,
      "detail": "HAT REJECT continuing session for recipient logging (223.71.167.166)"}),
    ("ICID 5 TLS success protocol TLSv1.2 cipher ECDHE-RSA-AES256-GCM-SHA384", ev.CONN_TLS,
     (5, None, None),
     {"success": True, "protocol": "TLSv1.2", "cipher": "ECDHE-RSA-AES256-GCM-SHA384"}),
    ("ICID 5 TLS failed: (336151568, 'error:14094410:SSL routines:SSL3_READ_BYTES')",
     ev.CONN_TLS, (5, None, None),
     {"success": False, "error": "(336151568, 'error:14094410:SSL routines:SSL3_READ_BYTES')"}),
    ("SMTP Auth: (ICID 5) succeeded for user: jdoe using AUTH mechanism: LOGIN with profile: "
     "corp", ev.CONN_AUTH, (5, None, None),
     {"success": True, "user": "jdoe", "mechanism": "LOGIN", "profile": "corp"}),
    ("SMTP Auth: (ICID 6) failed for user: mallory using AUTH mechanism: PLAIN with profile: "
     "corp", ev.CONN_AUTH, (6, None, None),
     {"success": False, "user": "mallory", "mechanism": "PLAIN", "profile": "corp"}),
    ("ICID 5 lost", ev.CONN_CLOSE, (5, None, None), {"lost": True}),
    ("ICID 5 close", ev.CONN_CLOSE, (5, None, None), {"lost": False}),
    ("ICID 5 Receiving Failed: Connection timed out", ev.CONN_INFO, (5, None, None),
     {"text": "Receiving Failed: Connection timed out"}),
    ("ICID 5 RID 0 To: <c@example.org> Rejected by RAT", ev.MSG_RCPT, (5, None, None),
     {"rid": 0, "address": "c@example.org", "rejected": True, "reason": "Rejected by RAT"}),
    # --- message envelope ---------------------------------------------------------------
    ("Start MID 6 ICID 5", ev.MSG_START, (5, 6, None), {}),
    ("MID 6 ICID 5 From: <a@example.com>", ev.MSG_FROM, (5, 6, None),
     {"sender": "a@example.com"}),
    ("MID 257 ICID 44785 From: test@virus.org", ev.MSG_FROM, (44785, 257, None),
     {"sender": "test@virus.org"}),
    ("MID 6 ICID 5 From: <>", ev.MSG_FROM, (5, 6, None), {"sender": ""}),
    ("MID 6 ICID 5 From: <a@example.com> SIZE=1234", ev.MSG_FROM, (5, 6, None),
     {"sender": "a@example.com"}),
    ("MID 6 ICID 5 RID 0 To: <b@example.org>", ev.MSG_RCPT, (5, 6, None),
     {"rid": 0, "address": "b@example.org", "rejected": False}),
    ("MID 6 ICID 5 RID 1 To: <c@example.org> Rejected by RAT", ev.MSG_RCPT, (5, 6, None),
     {"rid": 1, "address": "c@example.org", "rejected": True, "reason": "Rejected by RAT"}),
    ("MID 6 Message-ID '<abc@example.com>'", ev.MSG_MESSAGE_ID, (None, 6, None),
     {"message_id": "<abc@example.com>"}),
    ("MID 6 Subject 'Hello'", ev.MSG_SUBJECT, (None, 6, None), {"subject": "Hello"}),
    ('MID 6 Subject "redacted subject"', ev.MSG_SUBJECT, (None, 6, None),
     {"subject": "redacted subject"}),
    ("MID 6 Subject Re: [ticket #1] FW: SOUTH AFRICA\\r\\n (PTY) LTD", ev.MSG_SUBJECT,
     (None, 6, None), {"subject": "Re: [ticket #1] FW: SOUTH AFRICA\\r\\n (PTY) LTD"}),
    ("MID 6 Subject ''", ev.MSG_SUBJECT, (None, 6, None), {"subject": ""}),
    ("MID 6 Subject 'It's here'", ev.MSG_SUBJECT, (None, 6, None), {"subject": "It's here"}),
    ("MID 6 ready 4306 bytes from <a@example.com>", ev.MSG_READY, (None, 6, None),
     {"size": 4306, "sender": "a@example.com"}),
    ("MID 6 matched all recipients for per-recipient policy DEFAULT in the inbound table",
     ev.MSG_POLICY, (None, 6, None), {"policy": "DEFAULT", "direction": "inbound", "rids": None}),
    ("MID 6 matched recipients [0, 2] for per-recipient policy Sales in the outbound table",
     ev.MSG_POLICY, (None, 6, None), {"policy": "Sales", "direction": "outbound", "rids": [0, 2]}),
    # --- verdicts -----------------------------------------------------------------------
    ("MID 6 interim verdict using engine: CASE spam negative", ev.MSG_VERDICT, (None, 6, None),
     {"engine": "antispam", "verdict": "negative", "interim": True, "detail": "CASE"}),
    ("MID 6 using engine: CASE spam positive", ev.MSG_VERDICT, (None, 6, None),
     {"engine": "antispam", "verdict": "positive", "interim": False, "detail": "CASE"}),
    ("MID 6 using engine: CASE spam suspect", ev.MSG_VERDICT, (None, 6, None),
     {"engine": "antispam", "verdict": "suspect", "interim": False, "detail": "CASE"}),
    ("MID 68119155 interim verdict using engine: CASE bulk", ev.MSG_VERDICT,
     (None, 68119155, None),
     {"engine": "antispam", "verdict": "bulk", "interim": True, "detail": "CASE"}),
    ("MID 6 using engine: GRAYMAIL positive", ev.MSG_VERDICT, (None, 6, None),
     {"engine": "graymail", "verdict": "positive", "interim": False, "detail": "GRAYMAIL"}),
    ("MID 6 antispam negative", ev.MSG_VERDICT, (None, 6, None),
     {"engine": "antispam", "verdict": "negative", "interim": False}),
    ("MID 6 interim AV verdict using Sophos CLEAN", ev.MSG_VERDICT, (None, 6, None),
     {"engine": "antivirus", "verdict": "clean", "interim": True, "detail": "Sophos"}),
    ("MID 6 interim AV verdict using McAfee VIRAL", ev.MSG_VERDICT, (None, 6, None),
     {"engine": "antivirus", "verdict": "viral", "interim": True, "detail": "McAfee"}),
    ("MID 256 antivirus positive 'EICAR-AV-Test'", ev.MSG_VERDICT, (None, 256, None),
     {"engine": "antivirus", "verdict": "positive", "interim": False,
      "virus_name": "EICAR-AV-Test"}),
    ("MID 6 antivirus negative", ev.MSG_VERDICT, (None, 6, None),
     {"engine": "antivirus", "verdict": "negative", "interim": False}),
    ("MID 6 antivirus encrypted", ev.MSG_VERDICT, (None, 6, None),
     {"engine": "antivirus", "verdict": "encrypted", "interim": False}),
    ("MID 6 antivirus unscannable", ev.MSG_VERDICT, (None, 6, None),
     {"engine": "antivirus", "verdict": "unscannable", "interim": False}),
    ("MID 6 AMP file reputation verdict : CLEAN", ev.MSG_VERDICT, (None, 6, None),
     {"engine": "amp", "verdict": "clean", "interim": False}),
    ("MID 6 AMP file reputation verdict : SKIPPED (no attachment in message)", ev.MSG_VERDICT,
     (None, 6, None), {"engine": "amp", "verdict": "skipped", "interim": False,
                       "detail": "no attachment in message"}),
    ("MID 6 Outbreak Filters: verdict negative", ev.MSG_VERDICT, (None, 6, None),
     {"engine": "outbreak", "verdict": "negative", "interim": False}),
    ("MID 6 Outbreak Filters: verdict positive Threat Level: 5", ev.MSG_VERDICT,
     (None, 6, None), {"engine": "outbreak", "verdict": "positive", "interim": False,
                       "detail": "Threat Level: 5"}),
    ("MID 6 was too big (362262/262144) for scanning by Outbreak Filters", ev.MSG_VERDICT,
     (None, 6, None), {"engine": "outbreak", "verdict": "skipped", "interim": False,
                       "detail": "too big (362262/262144)"}),
    ("MID 111 DLP violation. Severity: LOW (Risk Factor: 15). DLP policy match: 'PCI-DSS "
     "(Payment Card Industry Data Security Standard)'.", ev.MSG_VERDICT, (None, 111, None),
     {"engine": "dlp", "verdict": "violation", "interim": False,
      "detail": "PCI-DSS (Payment Card Industry Data Security Standard)", "severity": "LOW",
      "risk_factor": 15}),
    ("MID 6 DLP no violation", ev.MSG_VERDICT, (None, 6, None),
     {"engine": "dlp", "verdict": "no violation", "interim": False}),
    ("MID 6 SPF: mailfrom identity a@example.com Pass (v=spf1)", ev.MSG_VERDICT,
     (None, 6, None), {"engine": "spf", "verdict": "pass", "interim": False,
                       "detail": "mailfrom a@example.com"}),
    ("MID 1357 SPF: helo identity postmaster None", ev.MSG_VERDICT, (None, 1357, None),
     {"engine": "spf", "verdict": "none", "interim": False, "detail": "helo postmaster"}),
    ("MID 6 DKIM: pass signature verified (d=example.com s=s1 i=@example.com)", ev.MSG_VERDICT,
     (None, 6, None), {"engine": "dkim", "verdict": "pass", "interim": False,
                       "detail": "signature verified (d=example.com s=s1 i=@example.com)"}),
    ("MID 6 DKIM: permfail body hash did not verify [final] (d=example.com s=k i=@example.com)",
     ev.MSG_VERDICT, (None, 6, None),
     {"engine": "dkim", "verdict": "permfail", "interim": False,
      "detail": "body hash did not verify [final] (d=example.com s=k i=@example.com)"}),
    ("MID 6 DMARC: Verification passed", ev.MSG_VERDICT, (None, 6, None),
     {"engine": "dmarc", "verdict": "passed", "interim": False}),
    ("MID 6 DMARC: Message from domain example.com, DMARC pass (SPF aligned True, DKIM aligned "
     "True)", ev.MSG_VERDICT, (None, 6, None),
     {"engine": "dmarc", "verdict": "pass", "interim": False,
      "detail": "Message from domain example.com, DMARC pass (SPF aligned True, DKIM aligned "
                "True)"}),
    ("MID 6 SDR: Consolidated Sender Threat Level: Neutral, Threat Category: N/A",
     ev.MSG_VERDICT, (None, 6, None),
     {"engine": "sdr", "verdict": "neutral", "interim": False,
      "detail": "Consolidated Sender Threat Level: Neutral, Threat Category: N/A"}),
    ("MID 6 SDR: Tracker Header : abc", ev.MSG_INFO, (None, 6, None),
     {"text": "SDR: Tracker Header : abc"}),
    ("MID 6 using engine: SPF Verdict Cache using cached verdict", ev.MSG_INFO,
     (None, 6, None), {"text": "using engine: SPF Verdict Cache using cached verdict"}),
    # --- content ------------------------------------------------------------------------
    ("MID 6 attachment 'invoice.pdf'", ev.MSG_ATTACHMENT, (None, 6, None),
     {"name": "invoice.pdf"}),
    ("MID 6 Custom Log Entry: Mail Not DKIM Signed", ev.MSG_CUSTOM, (None, 6, None),
     {"text": "Mail Not DKIM Signed"}),
    ("MID 6 URL http://www.example.com/x?a=b has reputation 3.0 matched Condition: URL "
     "Reputation Rule", ev.MSG_URL, (None, 6, None),
     {"url": "http://www.example.com/x?a=b",
      "detail": "has reputation 3.0 matched Condition: URL Reputation Rule"}),
    # --- quarantine ---------------------------------------------------------------------
    ('MID 6 quarantined to "Policy" (content filter: q_exe)', ev.MSG_QUARANTINE,
     (None, 6, None), {"name": "Policy", "via": "content filter: q_exe", "central": False}),
    ('MID 6 quarantined to "Outbreak" (VOF rule: OUTBREAK_0001)', ev.MSG_QUARANTINE,
     (None, 6, None), {"name": "Outbreak", "via": "VOF rule: OUTBREAK_0001", "central": False}),
    ('MID 6 enqueued for transfer to centralized quarantine "Policy" (content filter: q)',
     ev.MSG_QUARANTINE, (None, 6, None),
     {"name": "Policy", "via": "content filter: q", "central": True}),
    ("ISQ: Tagging MID 6 for quarantine", ev.MSG_QUARANTINE, (None, 6, None),
     {"name": "spam", "via": "ISQ tagging", "central": False}),
    ("RPC Delivery start RCID 4051 MID 6 to local IronPort Spam Quarantine", ev.MSG_QUARANTINE,
     (None, 6, None), {"name": "spam", "via": "RPC RCID 4051", "central": False, "rcid": 4051}),
    ('MID 6 released from quarantine "Outbreak" (expired)', ev.MSG_RELEASE, (None, 6, None),
     {"name": "Outbreak", "reason": "expired"}),
    # --- lineage ------------------------------------------------------------------------
    ("MID 6 rewritten to MID 7 by LDAP rewrite", ev.MSG_REWRITE, (None, 6, None),
     {"new_mid": 7, "reason": "LDAP rewrite"}),
    ("MID 2 rewritten to 3 by antispam", ev.MSG_REWRITE, (None, 2, None),
     {"new_mid": 3, "reason": "antispam"}),
    ("MID 6 was split creating MID 8 due to a per-recipient policy Marketing in the inbound "
     "table", ev.MSG_SPLIT, (None, 6, None),
     {"new_mid": 8, "policy": "Marketing", "direction": "inbound"}),
    ("MID 9 was generated based on MID 6 by bcc filter 'copy'", ev.MSG_GENERATED,
     (None, 9, None), {"parent_mid": 6, "reason": "bcc filter 'copy'", "bounce": False}),
    ("MID 14 generated based on MID 13 by bcc filter 'nonetest'", ev.MSG_GENERATED,
     (None, 14, None), {"parent_mid": 13, "reason": "bcc filter 'nonetest'", "bounce": False}),
    ("MID 10 was generated for bounce of MID 6", ev.MSG_GENERATED, (None, 10, None),
     {"parent_mid": 6, "reason": "bounce", "bounce": True}),
    # --- end of a message ---------------------------------------------------------------
    ("MID 6 queued for delivery", ev.MSG_QUEUED, (None, 6, None), {}),
    ("Message aborted MID 6 Dropped by antivirus", ev.MSG_ABORTED, (None, 6, None),
     {"reason": "Dropped by antivirus"}),
    ("Message aborted MID 7 Dropped by filter 'drop_zip_c'", ev.MSG_ABORTED, (None, 7, None),
     {"reason": "Dropped by filter 'drop_zip_c'"}),
    ("Message aborted MID 8 Receiving aborted by sender", ev.MSG_ABORTED, (None, 8, None),
     {"reason": "Receiving aborted by sender"}),
    ("Message finished MID 6 done", ev.MSG_FINISHED, (None, 6, None), {"outcome": "done"}),
    ("Message finished MID 6 aborted", ev.MSG_FINISHED, (None, 6, None),
     {"outcome": "aborted"}),
    ("MID 256, Message Scanning Problem: Continuation line seen before first header",
     ev.MSG_INFO, (None, 256, None),
     {"text": "Message Scanning Problem: Continuation line seen before first header"}),
    # --- delivery -----------------------------------------------------------------------
    ("New SMTP DCID 8 interface 10.1.1.2 address 198.51.100.25 port 25", ev.DLV_NEW,
     (None, None, 8), {"interface": "10.1.1.2", "ip": "198.51.100.25", "port": 25}),
    ("New SMTP DCID 16 interface PublicNet address 172.17.0.113", ev.DLV_NEW, (None, None, 16),
     {"interface": "PublicNet", "ip": "172.17.0.113"}),
    ("DCID 112095 TLS success protocol TLSv1 cipher AES128-SHA for dummy_domain.com",
     ev.DLV_TLS, (None, None, 112095),
     {"success": True, "protocol": "TLSv1", "cipher": "AES128-SHA",
      "domain": "dummy_domain.com"}),
    ("DCID 8 TLS failed: verify error", ev.DLV_TLS, (None, None, 8),
     {"success": False, "error": "verify error"}),
    ("Delivery start DCID 8 MID 6 to RID [0, 1]", ev.DLV_START, (None, 6, 8), {"rids": [0, 1]}),
    ("Message done DCID 8 MID 6 to RID [0]", ev.DLV_DONE, (None, 6, 8),
     {"rids": [0], "external_quarantine": False}),
    ("Message done DCID 8 MID 6 to RID [0] [('from', 'a@example.com'), ('to', 'b@x, c@y')]",
     ev.DLV_DONE, (None, 6, 8),
     {"rids": [0], "external_quarantine": False,
      "headers": [["from", "a@example.com"], ["to", "b@x, c@y"]]}),
    ("Message done DCID 8 MID 6 to RID [0, 1] (external quarantine)", ev.DLV_DONE,
     (None, 6, 8), {"rids": [0, 1], "external_quarantine": True}),
    ("MID 6 RID [0] Response '2.0.0 Ok: queued as 4XyZ'", ev.DLV_RESPONSE, (None, 6, None),
     {"rids": [0], "response": "2.0.0 Ok: queued as 4XyZ"}),
    ("MID 200257070 RID [0] Response 2.6.0 <37gva9$5uvbhe@mail.example.com> Queued mail for "
     "delivery", ev.DLV_RESPONSE, (None, 200257070, None),
     {"rids": [0],
      "response": "2.6.0 <37gva9$5uvbhe@mail.example.com> Queued mail for delivery"}),
    ("Bounced: DCID 8 MID 6 to RID 1 - 5.1.0 - Unknown address error ('550', ['5.1.1 user "
     "unknown']) []", ev.DLV_BOUNCED, (None, 6, 8),
     {"rids": [1], "code": "5.1.0", "reason": "Unknown address error",
      "response": "('550', ['5.1.1 user unknown'])"}),
    ("Bounced: DCID 2 MID 15232 From:<a@example.com> To:<b@example.com> RID 0 - 5.1.0 - "
     "Unknown address error ('550', ['5.1.1 no such user'])", ev.DLV_BOUNCED, (None, 15232, 2),
     {"rids": [0], "code": "5.1.0", "reason": "Unknown address error",
      "response": "('550', ['5.1.1 no such user'])", "sender": "a@example.com",
      "recipient": "b@example.com"}),
    ("Delayed: DCID 5 MID 4 to RID 0 - 4.1.0 - Unknown address error ('466', ['Mailbox "
     "temporarily full.'])[]", ev.DLV_DELAYED, (None, 4, 5),
     {"rids": [0], "code": "4.1.0", "reason": "Unknown address error",
      "response": "('466', ['Mailbox temporarily full.'])"}),
    ("Message 4 to RID [0] pending till Mon Mar 31 20:01:23 2003", ev.DLV_PENDING,
     (None, 4, None), {"rids": [0], "until": "Mon Mar 31 20:01:23 2003"}),
    ("DCID 8 close", ev.DLV_CLOSE, (None, None, 8), {}),
    ("Connection Error: DCID 63 domain: example.com IP: 192.0.2.5 port: 25 details: timeout "
     "interface: 10.1.1.2 reason: unable to connect", ev.DLV_ERROR, (None, None, 63),
     {"text": "domain: example.com IP: 192.0.2.5 port: 25 details: timeout interface: "
              "10.1.1.2 reason: unable to connect", "domain": "example.com",
      "ip": "192.0.2.5", "port": 25, "details": "timeout", "interface": "10.1.1.2",
      "reason": "unable to connect"}),
    ("DCID 8 STARTTLS command not supported", ev.DLV_INFO, (None, None, 8),
     {"text": "STARTTLS command not supported"}),
    # --- bounce log ---------------------------------------------------------------------
    ('Bounced: 45346670:0 From:<a@yourdomain.com> To:<b@sample.com> Reason: "5.1.0 - Unknown '
     "address error\" Response: \"('550', ['There is no such active account.'])\"",
     ev.BOUNCE_LOG, (None, 45346670, None),
     {"rid": 0, "sender": "a@yourdomain.com", "recipient": "b@sample.com", "delayed": False,
      "reason": "5.1.0 - Unknown address error",
      "response": "('550', ['There is no such active account.'])"}),
    ('Delayed: 44451135:0 From:<a@x.com> To:<b@y.com> Reason: "4.1.0 - Unknown address '
     "error\" Response: \"('451', ['try later'])\"", ev.BOUNCE_LOG, (None, 44451135, None),
     {"rid": 0, "sender": "a@x.com", "recipient": "b@y.com", "delayed": True,
      "reason": "4.1.0 - Unknown address error", "response": "('451', ['try later'])"}),
    # --- appliance ----------------------------------------------------------------------
    ("Status: CPULd 3 DskIO 0 RAMUtil 11 QKUsd 0 QKFre 8388608 CrtMID 19036 SwpPgIn 2.5",
     ev.STATUS, (None, None, None),
     {"metrics": {"CPULd": 3, "DskIO": 0, "RAMUtil": 11, "QKUsd": 0, "QKFre": 8388608,
                  "CrtMID": 19036, "SwpPgIn": 2.5}}),
    ("Version: 7.6.3-019 SN: 420D8A1B2C3D-ABCDEF1", ev.SYSTEM, (None, None, None),
     {"text": "Version: 7.6.3-019 SN: 420D8A1B2C3D-ABCDEF1", "version": "7.6.3-019",
      "serial": "420D8A1B2C3D-ABCDEF1"}),
    ("Time offset from UTC: -21600 seconds", ev.SYSTEM, (None, None, None),
     {"text": "Time offset from UTC: -21600 seconds", "utc_offset": -21600}),
    ("Begin Logfile", ev.SYSTEM, (None, None, None), {"text": "Begin Logfile"}),
    ("Internal SMTP system successfully sent a message to a@example.com with subject 'x'.",
     ev.SYSTEM, (None, None, None),
     {"text": "Internal SMTP system successfully sent a message to a@example.com with "
              "subject 'x'."}),
    ("LDAP: Drop query Q1 lookup failed", ev.SYSTEM, (None, None, None),
     {"text": "LDAP: Drop query Q1 lookup failed"}),
    # --- scanner subscriptions that name a MID -------------------------------------------
    ("sophos  antivirus - MID 69391938 - Result 'CLEAN' ()", ev.MSG_INFO,
     (None, 69391938, None), {"text": "sophos  antivirus - MID 69391938 - Result 'CLEAN' ()"}),
    ("File reputation query initiating. File Name = 'a.exe', MID = 5, File Size = 16 bytes",
     ev.MSG_INFO, (None, 5, None),
     {"text": "File reputation query initiating. File Name = 'a.exe', MID = 5, File Size = "
              "16 bytes"}),
    # --- unknown ------------------------------------------------------------------------
    ("Something the appliance never said", ev.UNKNOWN, (None, None, None),
     {"reason": "unrecognised body"}),
    ("MID 6 ICID x From: <a@b>", ev.UNKNOWN, (None, None, None),
     {"reason": "MID ICID line: no ICID number"}),
    ("New SMTP something else", ev.UNKNOWN, (None, None, None),
     {"reason": "New line: neither SMTP ICID nor SMTP DCID"}),
]


@pytest.mark.parametrize(("body", "kind", "ids", "data"), CASES,
                         ids=[f"{case[1]}:{case[0][:40]}" for case in CASES])
def test_body_kind_ids_and_data(body: str, kind: str, ids: tuple[int | None, ...],
                                data: dict[str, Any]) -> None:
    """Each body shape becomes its kind with the identifiers and data keys of the contract."""
    event = Parser(default_host="esa").parse_line(PREFIX + body, RECEIVED)
    assert (event.kind, (event.icid, event.mid, event.dcid), event.data) == (kind, ids, data)
    assert event.body == body
    assert set(event.data) <= set(ev.KIND_FIELDS[kind]), "data keys outside KIND_FIELDS"


@pytest.mark.parametrize(("body", "kind", "ids", "data"), CASES[:12])
def test_file_format_gives_the_same_event(body: str, kind: str, ids: tuple[int | None, ...],
                                          data: dict[str, Any]) -> None:
    """The appliance file format frames the same bodies into the same events."""
    event = Parser().parse_line("Wed Nov 19 09:16:38 2014 Info: " + body)
    assert (event.kind, (event.icid, event.mid, event.dcid), event.data) == (kind, ids, data)


def test_kind_fields_cover_every_kind_constant() -> None:
    """Every kind constant in the event module has its data keys documented."""
    kinds = {value for name, value in vars(ev).items()
             if name.isupper() and isinstance(value, str) and name != "KIND_FIELDS"}
    assert kinds == set(ev.KIND_FIELDS)


def test_repeated_verdict_lines_give_independent_events() -> None:
    """Memoised verdict lines still carry their own MID and their own data dict."""
    parser = Parser()
    first = parser.parse_line(PREFIX + "MID 6 using engine: CASE spam negative", RECEIVED)
    second = parser.parse_line(PREFIX + "MID 7 using engine: CASE spam negative", RECEIVED)
    first.data["verdict"] = "changed by a consumer"
    assert (second.mid, second.data["verdict"]) == (7, "negative")
    third = parser.parse_line(PREFIX + "MID 8 using engine: CASE spam negative", RECEIVED)
    assert third.data == {"engine": "antispam", "verdict": "negative", "interim": False,
                          "detail": "CASE"}


def test_repeated_policy_lines_do_not_share_rid_lists() -> None:
    """Lists in event data are never shared between two events."""
    parser = Parser()
    line = PREFIX + "MID {} matched recipients [0, 2] for per-recipient policy S in the " \
        "inbound table"
    first = parser.parse_line(line.format(6), RECEIVED)
    second = parser.parse_line(line.format(7), RECEIVED)
    assert first.data["rids"] is not second.data["rids"]
