#!/usr/bin/env bash
# The checks that need a GPU: which GPU, the behaviour tests with device=cuda, benchmark (a) and
# benchmark (b) with 64 points on the GPU, the search benchmark (s3) on the GPU, the stacked CNN and
# the full-size ResNet-18 epoch benchmarks, and the reduced double-descent configs end to end. Each
# step has its own time limit; `bash benchmarks/gpu_check.sh images` runs only the image steps (about
# 10 minutes at most), `search` only (s3) (about 5 minutes at most). Run by hand on a machine with a
# CUDA GPU and the project's dependencies installed (pip install -e '.[dev]'):
#   bash benchmarks/gpu_check.sh [images|search]
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name())"
STEPS="${1:-all}"
if [ "$STEPS" = all ]; then
# The tests that train through the device path end to end (stacked and alone); tests whose expected
# values are computed on the CPU keep their CPU device.
SECONDS=0
DLCLI_TEST_DEVICE=cuda timeout 200 python3 -m pytest -q -p no:cacheprovider -x \
    tests/engine/test_vectorize.py tests/engine/test_dense.py tests/engine/test_stacked_convs.py tests/cli/test_cli.py \
    tests/sweep/test_sweep.py -k "not ray" || echo "GPU tests failed"
echo "tests: ${SECONDS} s"
SECONDS=0
timeout 240 python3 benchmarks/train_vs_loop.py --device cuda --repeats 5 || echo "benchmark (a) on the GPU failed"
echo "benchmark (a): ${SECONDS} s"
SECONDS=0
timeout 200 python3 benchmarks/vectorized_vs_one_by_one.py --device cuda --points 64 --epochs 2 --repeats 3 \
    || echo "benchmark (b) on the GPU failed"
echo "benchmark (b): ${SECONDS} s"
fi
if [ "$STEPS" = all ] || [ "$STEPS" = search ]; then
# Benchmark (s3): the halving search against Optuna driving a plain loop, both on the GPU (Ray Tune
# stays on the CPU: skipped), with search_mlp's widths and with quickstart-sized models.
SECONDS=0
timeout 150 python3 benchmarks/search_vs_optuna_ray.py --device cuda --skip-ray --repeats 3 \
    || echo "search benchmark on the GPU failed"
timeout 150 python3 benchmarks/search_vs_optuna_ray.py --device cuda --skip-ray --repeats 3 --small \
    || echo "search benchmark (small models) on the GPU failed"
echo "search benchmark: ${SECONDS} s"
fi
if [ "$STEPS" = all ] || [ "$STEPS" = images ]; then
# Stacked conv nets: 16 CNNs of width 16 as grouped convolutions against one by one (target ≥ 5×).
SECONDS=0
timeout 180 python3 benchmarks/stacked_cnn.py --device cuda --width 16 --n-train 10000 --n-test 2000 --epochs 2 \
    --repeats 3 || echo "stacked CNN benchmark on the GPU failed"
echo "stacked CNN benchmark: ${SECONDS} s"
# One ResNet-18 epoch at full size (k = 64, 50 000 CIFAR-shaped images): dlcli, the hand loop, the tutorial loop.
SECONDS=0
timeout 300 python3 benchmarks/resnet_epoch.py --device cuda --width 64 --n-train 50000 --n-test 10000 --repeats 2 \
    || echo "ResNet-18 epoch benchmark on the GPU failed"
echo "ResNet-18 epoch benchmark: ${SECONDS} s"
# The reduced double-descent configs end to end, on stand-ins of CIFAR-10's shape (no download).
SECONDS=0
timeout 150 python3 benchmarks/image_configs.py --device cuda --configs double_descent_cnn double_descent_resnet \
    || echo "reduced double-descent configs on the GPU failed"
echo "reduced double-descent configs: ${SECONDS} s"
fi
