#!/usr/bin/env bash
# The GPU checks of the throughput work, prepared for a lent CUDA machine (about 5 minutes): the Pong
# trainer and the STPN step on --device cuda, JSON into ${OUT:-benchmarks/results}. Needs torch with
# CUDA and the project installed there (pip install -e . --no-deps, plus this project's other
# dependencies from pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-benchmarks/results}
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA here'; print(torch.cuda.get_device_name())"
python benchmarks/pong_throughput.py --device cuda --out "$out/pong_throughput_cuda.json"
python benchmarks/stpn_step.py --device cuda --threads 2 --out "$out/stpn_step_cuda.json"
