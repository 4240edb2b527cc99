"""Environments that misbehave on purpose, importable by a script run as a subprocess:
--env-id tests.faulty_envs:NaNRewardPendulum-v0 (gymnasium imports the module named before the colon)."""

import gymnasium as gym


class NaNRewardPendulum(gym.Wrapper):
    """Pendulum-v1 whose reward at the 50th step of the first episode is NaN."""

    def __init__(self, render_mode=None):
        super().__init__(gym.make("Pendulum-v1", render_mode=render_mode))
        self.t = 0

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.t += 1
        return obs, float("nan") if self.t == 50 else reward, terminated, truncated, info


gym.register("NaNRewardPendulum-v0", entry_point=NaNRewardPendulum, max_episode_steps=200)
