#!/usr/bin/env bash
# All set-up, then the main job on the embedded default stack:
#   1. a virtual environment in .venv with esatrack and its dev extras;
#   2. rsyslog + omkafka for the third-party-shipper test (as root with apt only);
#   3. `esatrack demo`: Kafka, OpenSearch, a worker, the indexer and the receiver, with the
#      bundled sample logs sent through syslog and indexed.
# The services stay up afterwards; `.venv/bin/esatrack stack down` stops them.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*" >&2; }

python="${PYTHON:-}"
if [[ -z "$python" ]]; then
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
           "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
            python="$candidate"; break
        fi
    done
fi
if [[ -z "$python" ]]; then
    echo "error: esatrack needs Python 3.11; install it or set PYTHON=/path/to/python3.11" >&2
    exit 1
fi

if [[ ! -x .venv/bin/python ]]; then
    say "creating .venv with $python"
    "$python" -m venv .venv
fi
say "installing esatrack and its dev extras into .venv"
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev]"

if ! command -v rsyslogd >/dev/null 2>&1 || ! dpkg -s rsyslog-kafka >/dev/null 2>&1; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "installing rsyslog and rsyslog-kafka (used by the rsyslog shipper test)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rsyslog rsyslog-kafka >/dev/null
    else
        say "note: rsyslog-kafka is not installed; its test will be skipped outside CI"
    fi
fi

say "running the whole chain on the sample logs (first run downloads Kafka and OpenSearch)"
exec .venv/bin/esatrack demo "$@"
