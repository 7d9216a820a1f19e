#!/usr/bin/env bash
# Load benchmark of `w2s serve` (issue 10): tokens/s, p50/p99 latency and time to first streamed token at
# concurrency 1, 8 and 32, for plain sampling (64 tokens) and CBS (4,4,5) (50 tokens), streamed completions.
# Default: an in-process server over a GPT-2-124M-shaped large model and a 4-layer x 256 small pair with random
# weights (CPU). Extra arguments go to the driver, e.g. --url http://127.0.0.1:8000 --model NAME for a running
# server, or --concurrency 1,8 --modes sample.
set -euo pipefail
cd "$(dirname "$0")/.."
exec dotnet run -c Release --project benchmarks/WeakToStrong.LoadTest -- "$@"
