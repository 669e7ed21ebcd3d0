"""``esatrack receive``: listen for syslog (UDP, TCP, TLS) and publish the lines to the raw topic.

Ports, TLS files and the spool come from the settings (``ESATRACK_RECEIVER_*``); the options
below override them for one run. Stops cleanly on SIGTERM/SIGINT (see
:mod:`streams.ingest.receiver` for what happens to lines in flight).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from pathlib import Path

from prometheus_client.registry import CollectorRegistry

from streams.errors import ConfigError
from streams.ingest.metrics import IngestCollector
from streams.ingest.receiver import Ports, Receiver, tls_context
from streams.ingest.status import serve_status
from streams.settings import Settings, get_settings

_PROGRESS_EVERY = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    option = parser.add_argument
    option("--bind", help="listen address (ESATRACK_RECEIVER_BIND)")
    option("--udp-port", type=int, help="UDP port, 0 = off (ESATRACK_RECEIVER_UDP_PORT)")
    option("--tcp-port", type=int, help="TCP port, 0 = off (ESATRACK_RECEIVER_TCP_PORT)")
    option("--tls-port", type=int, help="TLS port, 0 = off (ESATRACK_RECEIVER_TLS_PORT)")
    option("--tls-cert", type=Path, help="PEM certificate (ESATRACK_RECEIVER_TLS_CERT)")
    option("--tls-key", type=Path, help="PEM key (ESATRACK_RECEIVER_TLS_KEY)")
    option("--spool-dir", type=Path, help="spool directory (ESATRACK_RECEIVER_SPOOL_DIR)")
    option("--metrics-port", type=int,
           help="port of /metrics and /healthz, 0 = off (ESATRACK_METRICS_PORT)")
    option("--topic", help="Kafka topic (ESATRACK_TOPIC_RAW)")


def _effective(settings: Settings, args: argparse.Namespace) -> Settings:
    overrides = {
        "receiver_bind": args.bind, "receiver_udp_port": args.udp_port,
        "receiver_tcp_port": args.tcp_port, "receiver_tls_port": args.tls_port,
        "receiver_tls_cert": args.tls_cert, "receiver_tls_key": args.tls_key,
        "receiver_spool_dir": args.spool_dir, "metrics_port": args.metrics_port,
        "topic_raw": args.topic,
    }
    chosen = {key: value for key, value in overrides.items() if value is not None}
    return settings.model_copy(update=chosen) if chosen else settings


def _ports(settings: Settings) -> tuple[Ports, bool]:
    """The ports to open, and whether TLS is on (it needs both a certificate and a key)."""
    cert, key = settings.receiver_tls_cert, settings.receiver_tls_key
    if (cert is None) != (key is None):
        raise ConfigError("TLS needs both ESATRACK_RECEIVER_TLS_CERT and ESATRACK_RECEIVER_TLS_KEY "
                          "(or --tls-cert and --tls-key); set both, or neither to turn TLS off")
    tls = cert is not None and settings.receiver_tls_port > 0
    ports = Ports(udp=settings.receiver_udp_port, tcp=settings.receiver_tcp_port,
                  tls=settings.receiver_tls_port if tls else 0)
    if not (ports.udp or ports.tcp or ports.tls):
        raise ConfigError("every listener is off: set ESATRACK_RECEIVER_UDP_PORT, "
                          "ESATRACK_RECEIVER_TCP_PORT or a TLS certificate, key and port")
    return ports, tls


def _say(message: str) -> None:
    print(f"esatrack receive: {message}", file=sys.stderr, flush=True)


async def _serve(settings: Settings) -> int:
    ports, tls = _ports(settings)
    context = None
    if tls:
        assert settings.receiver_tls_cert is not None and settings.receiver_tls_key is not None
        try:
            context = tls_context(settings.receiver_tls_cert, settings.receiver_tls_key,
                                  settings.receiver_tls_client_ca)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load the TLS certificate/key: {exc}; check "
                              "ESATRACK_RECEIVER_TLS_CERT and ESATRACK_RECEIVER_TLS_KEY") from None
    receiver = Receiver(settings, ports=ports, ssl_context=context)
    try:
        await receiver.start()
    except OSError as exc:
        raise ConfigError(f"cannot listen on {settings.receiver_bind} ({exc}); choose other ports "
                          "with ESATRACK_RECEIVER_*_PORT or stop what holds them") from None
    registry = CollectorRegistry()
    registry.register(IngestCollector(
        receiver.counters, delivered=receiver.delivered, failed=receiver.failed,
        queue_depth=receiver.depth,
        spool_bytes=lambda: receiver.spool.bytes_used))
    status = None
    if settings.metrics_port:
        status = await serve_status(settings.receiver_bind, settings.metrics_port, registry,
                                    receiver.health)
    bound = receiver.bound
    metrics = (f", metrics http://{settings.receiver_bind}:{settings.metrics_port}/metrics"
               if status else "")
    _say(f"listening udp={bound.udp} tcp={bound.tcp} tls={bound.tls}{metrics}; "
         f"publishing to {receiver.topic} at {settings.kafka_bootstrap}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=_PROGRESS_EVERY)
        except TimeoutError:
            health = receiver.health()[1]
            _say(f"{time.strftime('%H:%M:%S')} in {health['lines_in']} published "
                 f"{health['published']} queued {health['producer_queue']} spool "
                 f"{health['spool_bytes']} B dropped {sum(receiver.counters.dropped.values())} "
                 f"kafka {health['kafka']}")
    _say("stopping: flushing Kafka, spooling what is left")
    if status is not None:
        status.close()
    report = await receiver.stop()
    _say(f"stopped: {report.lines_in} lines in, {report.delivered} published, "
         f"{report.spooled_at_shutdown} spooled at shutdown, {report.spool_bytes} B in the spool, "
         f"dropped {report.dropped or 0}")
    return 0


def run(args: argparse.Namespace) -> int:
    settings = _effective(get_settings(), args)
    logging.basicConfig(level=settings.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return asyncio.run(_serve(settings))
