#!/usr/bin/env bash
# SAC-Discrete (sac_discrete_atari.py, arXiv 1910.07207) at the paper's budget: 100,000 env steps (400,000 frames) on
# five of the paper's games, no sticky actions (*NoFrameskip-v4, its setting), 3 seeds, at the script's defaults, with
# an evaluation of 10 games every 10,000 steps (EXTRA_ARGS adds flags after that one). As many runs at a time as
# cores, one thread each (launch.py's share). benchmark/sac_discrete_atari.sh is the 5M sweep.
#   SEEDS="1" benchmark/sac_atari100k.sh --out sweeps/atari-100k
# The arguments go to benchmark/launch.py (--dry-run, --out DIR, ...).
EXTRA_ARGS="--eval-frequency 10000 ${EXTRA_ARGS:-}" exec python "$(dirname "$0")/launch.py" sac_discrete_atari.py \
    --envs BeamRiderNoFrameskip-v4 AssaultNoFrameskip-v4 MsPacmanNoFrameskip-v4 SeaquestNoFrameskip-v4 \
           RoadRunnerNoFrameskip-v4 \
    --seeds 1 2 3 --steps 100000 "$@"
