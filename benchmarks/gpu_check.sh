#!/usr/bin/env bash
# The checks that need a GPU, in one run of under 8 minutes: which GPU, the behaviour tests with
# device=cuda, benchmark (a) and benchmark (b) with 64 points on the GPU. Run by hand on a machine
# with a CUDA GPU and the project's dependencies installed (pip install -e '.[dev]'):
#   bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name())"
# The tests that train through the device path end to end (stacked and alone); tests whose expected
# values are computed on the CPU keep their CPU device.
SECONDS=0
DLCLI_TEST_DEVICE=cuda timeout 200 python3 -m pytest -q -p no:cacheprovider -x \
    tests/engine/test_vectorize.py tests/cli/test_cli.py tests/sweep/test_sweep.py -k "not ray" || echo "GPU tests failed"
echo "tests: ${SECONDS} s"
SECONDS=0
timeout 240 python3 benchmarks/train_vs_loop.py --device cuda --repeats 5 || echo "benchmark (a) on the GPU failed"
echo "benchmark (a): ${SECONDS} s"
SECONDS=0
timeout 200 python3 benchmarks/vectorized_vs_one_by_one.py --device cuda --points 64 --epochs 2 --repeats 3 \
    || echo "benchmark (b) on the GPU failed"
echo "benchmark (b): ${SECONDS} s"
