#!/usr/bin/env bash
# The GPU check: on a machine with an NVIDIA GPU, one call of under 8 minutes that runs the CUDA tests (the compiled
# update and its CUDA graphs against the eager one, short real runs of the three scripts, the Atari buffer's copies)
# and benchmark/speed.py on CUDA, then prints one table (benchmark/gpu_check.py). Where torch sees no CUDA device it
# stops at once with one line (exit 2).
#
#   benchmark/gpu_check.sh --wheels   on a machine with a network: put in .whl/ the wheels, for Python 3.12 on x86-64
#                                     Linux, of what the scripts need beyond a PyTorch image (gymnasium, MuJoCo, ALE, tyro)
#   benchmark/gpu_check.sh            on the GPU machine (with .whl/ beside it, if made): install them, then check
#
# It uses the torch already there (a GPU machine's own CUDA build): torch is never among the wheels.
set -uo pipefail
cd "$(dirname "$0")/.."
WHEELS=(gymnasium==1.4.0 farama-notifications==0.0.6 mujoco==3.17.0 glfw==2.11.0 pyopengl==3.1.10 websockets==17.4
        ale-py==0.12.1 tyro==1.0.17 docstring-parser==0.18.0 typeguard==4.6.1)
if [ "${1:-}" = "--wheels" ]; then
    exec python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${WHEELS[@]}"
fi
python3 -c "import torch, sys; torch.cuda.is_available() or sys.exit(f'gpu_check.sh: error: no CUDA device: torch \
{torch.__version__} sees none here; run the check on a machine with an NVIDIA GPU')" || exit 2
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/gpu-check-site \
        .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/gpu-check-site${PYTHONPATH:+:$PYTHONPATH}
fi
exec python3 benchmark/gpu_check.py "$@"
