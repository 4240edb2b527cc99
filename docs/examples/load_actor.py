"""Load an actor that sac_continuous_action.py saved (--save-model) and act with it in your own code.

    python docs/examples/load_actor.py runs/Hopper-v5__sac_continuous_action__1__1700000000/sac_continuous_action.pt

It imports the script's Actor and make_env (from the repository's root, two folders up; in your own code, from
wherever sac_continuous_action.py is on your path). The actor acts in [-1, 1]^|A|: build the environment with the
script's make_env, which maps that cube onto the environment's own action bounds.
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository's root
from sac_continuous_action import Actor, make_env  # noqa: E402


def play(model_path: str, seed: int = 0) -> tuple[float, int]:
    """One episode of the saved actor's deterministic action tanh(mean); its return and length."""
    saved = torch.load(model_path, map_location="cpu", weights_only=True)  # a dict: the actor's weights, the args
    env = make_env(saved["args"]["env_id"])
    actor = Actor(env.observation_space.shape[0], env.action_space.shape[0])
    actor.load_state_dict(saved["actor"])
    obs, _ = env.reset(seed=seed)
    total, steps, done = 0.0, 0, False
    while not done:
        with torch.no_grad():
            action = actor.act_deterministic(torch.as_tensor(obs, dtype=torch.float32)[None])[0].numpy()
        obs, reward, terminated, truncated, _ = env.step(action)
        total, steps, done = total + float(reward), steps + 1, terminated or truncated
    env.close()
    return total, steps


if __name__ == "__main__":
    episode_return, length = play(sys.argv[1], seed=int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    print(f"return {episode_return:.2f} over {length} steps")
