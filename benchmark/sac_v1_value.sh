#!/usr/bin/env bash
# SAC v1 (sac_v1_value.py, arXiv 1801.01290) on the same MuJoCo v5 tasks: 3 seeds of 1,000,000 steps each, with
# the paper's settings: each task at its reward scale of Appendix D (and haarnoja/sac's examples/variants.py), 20 for
# Humanoid and 5 for the others, given per environment (--env-flags), so that EXTRA_ARGS stays for all of them.
#   ENVS="Hopper-v5" SEEDS="1 2" STEPS=100000 benchmark/sac_v1_value.sh
# The arguments go to benchmark/launch.py (--dry-run, --out DIR, ...).
exec python "$(dirname "$0")/launch.py" sac_v1_value.py \
    --envs Hopper-v5 Walker2d-v5 HalfCheetah-v5 Ant-v5 Humanoid-v5 InvertedPendulum-v5 \
    --env-flags Hopper-v5="--reward-scale 5" Walker2d-v5="--reward-scale 5" HalfCheetah-v5="--reward-scale 5" \
                Ant-v5="--reward-scale 5" Humanoid-v5="--reward-scale 20" InvertedPendulum-v5="--reward-scale 5" \
    --seeds 1 2 3 --steps 1000000 "$@"
