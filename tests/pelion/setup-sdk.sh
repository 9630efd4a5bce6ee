#!/usr/bin/env bash
# Installs the real Pelion Python SDK (PyPI mbed-cloud-sdk 2.2.0) into a virtual environment
# the Pelion tests use: target/pelion-sdk (or the directory given). Needs python3 with venv.
# The same environment holds the official Prometheus client (PyPI prometheus-client), whose
# parser reads /metrics in the metrics test.
set -euo pipefail
dir="${1:-$(cd "$(dirname "$0")/../.." && pwd)/target/pelion-sdk}"
if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c 'import mbed_cloud, prometheus_client' 2>/dev/null; then
    echo "Pelion SDK already in $dir"
    exit 0
fi
python3 -m venv "$dir"
"$dir/bin/pip" install --quiet --disable-pip-version-check 'mbed-cloud-sdk==2.2.0' \
    'prometheus-client==0.26.0'
"$dir/bin/python" -c 'import mbed_cloud; print("Pelion SDK", mbed_cloud.__version__, "in", "'"$dir"'")'
