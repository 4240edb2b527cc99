#!/usr/bin/env bash
# SAC v1 (sac_v1_value.py, arXiv 1801.01290) on the same MuJoCo v5 tasks: 3 seeds of 1,000,000 steps each, with
# the paper's settings (reward scale 5; the paper used 20 for Humanoid: EXTRA_ARGS="--reward-scale 20").
#   ENVS="Hopper-v5" SEEDS="1 2" STEPS=100000 benchmark/sac_v1_value.sh
# The arguments go to benchmark/launch.py (--dry-run, --out DIR, ...).
exec python "$(dirname "$0")/launch.py" sac_v1_value.py \
    --envs Hopper-v5 Walker2d-v5 HalfCheetah-v5 Ant-v5 Humanoid-v5 InvertedPendulum-v5 \
    --seeds 1 2 3 --steps 1000000 "$@"
