"""Appliance lines: status metrics, file headers (time offset, version), scanner subscriptions
that mention a MID, and the recognised system noise; :func:`system_or_unknown` is every
handler's fallback when a body does not have the shape its first word promised.
"""

from __future__ import annotations

import re
from typing import Any, Final

from streams.events import MSG_INFO, STATUS, SYSTEM
from streams.parse.fields import Result, float_or_none, is_number, unknown

# ---------------------------------------------------------------------------------------------
# Appliance noise: recognised prefixes become ``system``; the rest is ``unknown``.
# ---------------------------------------------------------------------------------------------

SYSTEM_PREFIXES: Final = (
    # file headers and housekeeping
    "Begin Logfile", "End Logfile", "Logfile rolled over", "Version:", "Time offset from UTC:",
    "System is coming up", "PID ", "Hostname is ", "The system time was changed",
    "An application fault", "Counters", "Log file",
    # alerts, licences, internal mail
    "A System/", "An Antivirus/", "A Hardware/", "A Updater/", "An Updater/", "A Virus/",
    "Error while sending alert", "Your \"", "Your ", "Internal SMTP", "URL category definitions",
    # services
    "graymail ", "Graymail ", "URL_REP_CLIENT:", "case ", "CASE ", "PF:", "ISQ:", "LDAP:",
    "SenderBase upload", "SDS_CLIENT", "Updater", "updater", "ECS:", "Reporting", "Tracking",
    "service_log_client", "TLS connection failed", "PERIODIC REPORTS", "lame DNS referral",
    "Received an invalid DNS", "DNS ", "Message containing attachment(s)",
    # GUI, authentication and HTTP subscriptions
    "User ", "The user ", "An authentication attempt", "login:", "logout:", "req:",
    "Error in http connection", "SSL error", "http service", "https service", "Session ",
    # AMP / file analysis without a MID
    "File ", "SHA256:", "Retrospective verdict", "Response received for file",
    "Message Tracking", "Cisco ", "IronPort ",
)

_L4TM_PREFIXES: Final = ("Firewall noted", "Firewall blocked", "Address ")


def system_or_unknown(body: str) -> Result:
    if body.startswith(SYSTEM_PREFIXES):
        return (SYSTEM, None, None, None, {"text": body})
    if body.startswith(_L4TM_PREFIXES):
        return unknown("wsa l4tm log (web proxy, not ESA mail)")
    return unknown("unrecognised body")


_OFFSET = re.compile(r"Time offset from UTC: (-?\d{1,9}) seconds")
_VERSION = re.compile(r"Version: (\S+)(?: SN: (\S+))?")


def time_offset_line(body: str) -> Result:
    match = _OFFSET.match(body)
    if match is None:
        return system_or_unknown(body)
    return (SYSTEM, None, None, None, {"text": body, "utc_offset": int(match.group(1))})


def version_line(body: str) -> Result:
    match = _VERSION.match(body)
    if match is None:
        return system_or_unknown(body)
    data: dict[str, Any] = {"text": body, "version": match.group(1)}
    if match.group(2) is not None:
        data["serial"] = match.group(2)
    return (SYSTEM, None, None, None, data)



def status_line(body: str) -> Result:
    words = body[8:].split()
    metrics: dict[str, int | float] = {}
    for index in range(0, len(words) - 1, 2):
        value = words[index + 1]
        if is_number(value):
            metrics[words[index]] = int(value)
        else:
            number = float_or_none(value)
            if number is not None:
                metrics[words[index]] = number
    if not metrics:
        return unknown("Status line without metrics")
    return (STATUS, None, None, None, {"metrics": metrics})


# Scanner subscriptions (``antivirus``, ``amp``) mention MIDs in their own phrasing.
_AV_MID = re.compile(r"antivirus - MID (\d{1,18})")
_AMP_MID = re.compile(r"\bMID = (\d{1,18})")


def antivirus_log_line(body: str) -> Result:
    match = _AV_MID.search(body)
    if match is None:
        return system_or_unknown(body)
    return (MSG_INFO, None, int(match.group(1)), None, {"text": body})


def amp_log_line(body: str) -> Result:
    match = _AMP_MID.search(body)
    if match is None or match.group(1) == "0":
        return system_or_unknown(body)
    return (MSG_INFO, None, int(match.group(1)), None, {"text": body})
