#!/usr/bin/env bash
# The checks that need a GPU, in one run of under 8 minutes: which GPU, the behaviour tests with
# device=cuda, and benchmark (a) on the GPU. Run by hand on a machine with a CUDA GPU:
#   bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet -e '.[dev]'
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
# Tests whose expected values are computed on the CPU to float precision keep their CPU device;
# these exercise the device path end to end.
DLCLI_TEST_DEVICE=cuda timeout 300 python -m pytest -q -p no:cacheprovider \
    tests/test_cli.py tests/test_sweep.py tests/test_compare.py tests/test_what_if.py || echo "GPU tests failed"
timeout 150 python benchmarks/train_vs_loop.py --device cuda --repeats 5 || echo "benchmark (a) on the GPU failed"
