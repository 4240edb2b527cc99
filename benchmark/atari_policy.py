"""What a trained SAC-Discrete agent's policy does in its evaluation games, played greedily and sampled.

    python benchmark/atari_policy.py RUN_DIR [RUN_DIR ...] [--seed SEED] [--episodes 10] [--epsilon 0.01]

RUN_DIR is a sac_discrete_atari.py run's directory with the model its --save-model wrote. Its actor plays the games
of the run's evaluation twice, through the script's own evaluate(), from --seed (the run's seed unless given):

  greedy   as the script evaluates: a = argmax_a pi(a|s), or a uniformly random action with probability --epsilon.
           With the run's seed and epsilon these are the games of each of its evaluations: the score is its last one.
  sampled  a ~ pi(.|s), as --eval-model --no-eval-greedy plays (torch seeded with the seed, as it seeds it).

For each: the score (mean ± std over the games, [min, max]), the mean game length, the mean entropy of pi(.|s) over
the states played beside log|A| (the uniform policy's), pi's mean largest probability, and how often the policy chose
each action (epsilon's random actions left out). A pi close to uniform whose argmax is the same action everywhere
plays far worse greedily than sampled: docs/results/atari-100k/README.md shows it on MsPacman.
"""

import argparse
import importlib
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from publish_model import actor_only, fail  # noqa: E402  (the same checks of RUN_DIR's model)


def watched_actor(atari, n_actions: int):
    """The script's Actor, noting log pi(.|s) in each state it acts in and the action it chose there."""

    class WatchedActor(atari.Actor):
        def __init__(self):
            super().__init__(n_actions)
            self.log_pis, self.chosen = [], []

        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            log_pi = super().forward(obs)
            self.log_pis.append(log_pi[0])
            return log_pi

        def act_greedy(self, obs: torch.Tensor) -> torch.Tensor:
            self.chosen.append(int(action := super().act_greedy(obs)))
            return action

        def sample(self, obs: torch.Tensor) -> torch.Tensor:
            self.chosen.append(int(action := super().sample(obs)))
            return action

    return WatchedActor()


def play(atari, saved: dict, seed: int, episodes: int, greedy: bool, epsilon: float) -> str:
    """One line: the games' scores and lengths, and what pi was in the states played."""
    env_id = saved["args"]["env_id"]
    env = atari.make_env(env_id, train=False)
    actor = watched_actor(atari, env.action_space.n)
    actor.load_state_dict(saved["actor"])
    torch.manual_seed(seed)  # the sampled games' draws, as --eval-model seeds them
    returns, lengths = atari.evaluate(actor, env, episodes, seed, greedy, epsilon)
    names = env.unwrapped.get_action_meanings()
    env.close()
    log_pi = torch.stack(actor.log_pis)
    entropy = -(log_pi.exp() * log_pi).sum(1).mean()
    shares = np.bincount(actor.chosen, minlength=len(names)) / len(actor.chosen)
    how = f"greedy (epsilon {epsilon})" if greedy else "sampled from pi"
    return (f"{env_id} seed {saved['args']['seed']}, {how}: score {returns.mean():.1f} ± {returns.std():.1f} "
            f"[{returns.min():.0f}, {returns.max():.0f}], length {lengths.mean():.0f} over {episodes} games; entropy "
            f"of pi {entropy:.3f} nats (uniform {np.log(len(names)):.3f}), largest probability "
            f"{log_pi.exp().max(1).values.mean():.3f}; actions chosen: "
            + ", ".join(f"{name} {share:.0%}" for name, share in zip(names, shares)))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    parser.add_argument("--seed", type=int, help="the games' seed (default: the run's)")
    parser.add_argument("--episodes", type=int, default=10, help="games per way of playing (the script's default)")
    parser.add_argument("--epsilon", type=float, default=0.01, help="the greedy games' epsilon (the script's default)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.episodes <= 0:
        fail(f"--episodes must be positive, got {args.episodes}")
    if not 0 <= args.epsilon <= 1:
        fail(f"--epsilon must be in [0, 1], got {args.epsilon}")
    models = [actor_only(run_dir)[0] for run_dir in args.run_dirs]  # every RUN_DIR checked before any game
    for run_dir, saved in zip(args.run_dirs, models):
        if saved["script"] != "sac_discrete_atari":
            fail(f"RUN_DIR '{run_dir}': a {saved['script']}.py run; this looks at sac_discrete_atari.py's policies")
    torch.set_num_threads(args.threads)
    atari = importlib.import_module("sac_discrete_atari")
    for saved in models:
        seed = saved["args"]["seed"] if args.seed is None else args.seed
        for greedy in (True, False):
            print(play(atari, saved, seed, args.episodes, greedy, args.epsilon), flush=True)


if __name__ == "__main__":
    main()
