#!/usr/bin/env bash
# Spark GPU discovery script: prints the GPUs of this host as Spark's resource JSON,
# e.g. {"name": "gpu", "addresses": ["0", "1"]}. Point spark.worker/executor.resource.gpu.
# discoveryScript at it on hosts with NVIDIA drivers.
set -euo pipefail
addresses=$(nvidia-smi --query-gpu=index --format=csv,noheader | sed 's/.*/"&"/' | paste -sd, -)
echo "{\"name\": \"gpu\", \"addresses\": [${addresses}]}"
