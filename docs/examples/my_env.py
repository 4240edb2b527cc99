"""A small environment of your own, for sac_continuous_action.py and sac_v1_value.py.

    python sac_continuous_action.py --env-id my_env:Reach1D-v0 --total-timesteps 20000

The "my_env:" before the id makes the script import this module first (put its folder on PYTHONPATH, or run from it),
and importing it registers the id. What the scripts need of an environment:

- a bounded Box action space (every low and high finite): the scripts map [-1, 1] onto it;
- a vector observation (a 1-D Box; a Dict of them is flattened);
- a TimeLimit, given here by max_episode_steps: its episode ends are truncations, which bootstrap, while `terminated`
  means the task has truly ended (no future reward);
- a render_mode argument (the scripts pass one), and render() returning an RGB frame for --capture-video.

A discrete action space has no script here: sac_discrete_atari.py is for Atari's pixels.
"""

import gymnasium as gym
import numpy as np


class Reach1D(gym.Env):
    """A point on a line moves by the action (at most 0.1 a step) towards a target; the reward is minus the distance.
    The observation is (position, target). The episode terminates when the point is within 0.01 of the target."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, render_mode=None):
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(-2.0, 2.0, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-0.1, 0.1, shape=(1,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)  # seeds self.np_random: the same seed, the same episodes
        self.position, self.target = self.np_random.uniform(-1.0, 1.0, size=2)
        return self._observation(), {}

    def step(self, action):
        self.position = float(np.clip(self.position + action[0], -2.0, 2.0))
        distance = abs(self.position - self.target)
        return self._observation(), -distance, distance < 0.01, False, {}

    def render(self):
        """A 32 x 256 picture of the line: the target green, the point red."""
        frame = np.full((32, 256, 3), 255, dtype=np.uint8)
        for x, color in [(self.target, (0, 160, 0)), (self.position, (200, 0, 0))]:
            column = int((x + 2.0) / 4.0 * 255)
            frame[:, max(column - 2, 0) : column + 3] = color
        return frame

    def _observation(self):
        return np.array([self.position, self.target], dtype=np.float32)


gym.register(id="Reach1D-v0", entry_point=Reach1D, max_episode_steps=100)
