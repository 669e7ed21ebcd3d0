"""Consolidated Event Log lines (CEF, AsyncOS 13+).

``CEF:0|Cisco|<product>|<version>|ESA_CONSOLIDATED_LOG_EVENT|Consolidated Log Event|5|<ext>``.
The extension is ``key=value`` pairs separated by spaces, but the appliance does not escape
values consistently: subjects and friendly names hold spaces, Python-literal dicts hold ``'k': v``
and even ``'k'='v'``. So values are cut only at `` key=`` where ``key`` is a known CEF key or an
ESA key token (``ESA...``, ``cs1``/``cs1Label`` ...), never at any ``=``.
"""

from __future__ import annotations

import re
from typing import Any

from streams import events as ev

# Standard CEF extension keys (ArcSight dictionary, the ones appliances emit) and ESA's own.
_STANDARD_KEYS = [
    "act", "app", "cat", "cnt", "destinationDnsDomain", "destinationServiceName",
    "destinationTranslatedAddress", "destinationTranslatedPort", "deviceCustomDate1",
    "deviceCustomDate1Label", "deviceCustomDate2", "deviceCustomDate2Label", "deviceDirection",
    "deviceDnsDomain", "deviceExternalId", "deviceFacility", "deviceInboundInterface",
    "deviceNtDomain", "deviceOutboundInterface", "devicePayloadId", "deviceProcessName",
    "deviceTranslatedAddress", "dhost", "dmac", "dntdom", "dpid", "dpriv", "dproc", "dpt",
    "dst", "dtz", "duid", "duser", "dvc", "dvchost", "dvcmac", "dvcpid", "end", "End",
    "endTime", "EndTime", "externalId", "fileCreateTime", "fileHash", "fileId",
    "fileModificationTime", "filePath", "filePermission", "fileType", "fname", "fsize", "in",
    "msg", "oldFileCreateTime", "oldFileHash", "oldFileId", "oldFileModificationTime",
    "oldFileName", "oldFilePath", "oldFilePermission", "oldFileSize", "oldFileType", "out",
    "outcome", "proto", "reason", "request", "requestClientApplication", "requestContext",
    "requestCookies", "requestMethod", "rt", "shost", "smac", "sntdom", "sourceDnsDomain",
    "sourceServiceName", "sourceTranslatedAddress", "sourceTranslatedPort", "spid", "spriv",
    "sproc", "spt", "src", "start", "Start", "startTime", "StartTime", "suid", "suser", "type",
    "sourceAddress", "sourceHostName", "sourcePort", "destinationAddress",
    "destinationHostName", "destinationPort", "deviceAddress", "deviceHostName", "SBRSScore",
]

_KEY = (
    r"(?:ESA[A-Za-z0-9_]+"
    r"|(?:cs|cn|cfp|c6a|flexString|flexNumber|flexDate|deviceCustomString|deviceCustomNumber"
    r"|deviceCustomFloatingPoint|deviceCustomIPv6Address)\d(?:Label)?"
    r"|Message Filters Verdict"
    r"|" + "|".join(sorted(_STANDARD_KEYS, key=len, reverse=True)) + r")"
)
_BOUNDARY = re.compile(r"(?:^|(?<=\s))(" + _KEY + r")=")
_HEADER_SPLIT = re.compile(r"(?<!\\)\|")
_UNESCAPE = re.compile(r"\\([\\=|nr])")
_UNESCAPES = {"\\": "\\", "=": "=", "|": "|", "n": "\n", "r": "\r"}


def _unescape(value: str) -> str:
    if "\\" not in value:
        return value
    return _UNESCAPE.sub(lambda m: _UNESCAPES[m.group(1)], value)


def parse_extension(text: str) -> dict[str, str]:
    """``k1=v 1 k2=v2`` -> ``{"k1": "v 1", "k2": "v2"}``, tolerant of unescaped values.

    Text before the first recognised key is kept under ``""`` so nothing is lost.
    """
    ext: dict[str, str] = {}
    marks = list(_BOUNDARY.finditer(text))
    if not marks:
        if text.strip():
            ext[""] = text.strip()
        return ext
    head = text[: marks[0].start()].strip()
    if head:
        ext[""] = head
    for index, mark in enumerate(marks):
        end = marks[index + 1].start() if index + 1 < len(marks) else len(text)
        ext[mark.group(1)] = _unescape(text[mark.end():end].strip())
    return ext


def _id(ext: dict[str, str], key: str) -> int | None:
    value = ext.get(key)
    return int(value) if value is not None and len(value) <= 18 and value.isdecimal() else None


def parse_cef(body: str) -> tuple[str, int | None, int | None, int | None, dict[str, Any]]:
    """One CEF line -> (kind, icid, mid, dcid, data); ``unknown`` if the header is short."""
    parts = _HEADER_SPLIT.split(body, 7)
    if len(parts) < 8:
        return (ev.UNKNOWN, None, None, None,
                {"reason": "CEF line with fewer than 7 header fields"})
    _version, vendor, product, version, signature, name, severity, extension = parts
    ext = parse_extension(extension)
    data: dict[str, Any] = {
        "vendor": _unescape(vendor), "product": _unescape(product),
        "version": _unescape(version), "signature": _unescape(signature),
        "name": _unescape(name), "severity": severity.strip(), "ext": ext,
    }
    return (ev.CEF, _id(ext, "ESAICID"), _id(ext, "ESAMID"), _id(ext, "ESADCID"), data)
