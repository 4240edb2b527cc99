"""DeepMind Control tasks through Shimmy, in both continuous scripts: the flattened observation and its order, seeded
episodes, what a time limit and a termination store, and a run end to end."""

import os
import subprocess
import sys

os.environ.setdefault("MUJOCO_GL", "egl")  # as the scripts do without a display: dm_control's import would warn

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import shimmy  # noqa: E402  (importing it registers the dm_control/... ids)
from conftest import ROOT, collect, read_scalars, run_dir, run_ok  # noqa: E402
from dm_control import mujoco  # noqa: E402
from dm_control.rl import control  # noqa: E402
from dm_control.suite import base  # noqa: E402
from dm_env import specs  # noqa: E402


class CounterTask(base.Task):
    """A dm_control task like conftest's CounterEnv: its observation is {"t": [t], "episode": [episode]}, its reward
    the action (in [-2, 3]). Its episodes end at the environment's time limit, 5 steps (dm_control's last step with
    discount 1, which Shimmy turns into a truncation) or, with terminate_at, at t == terminate_at with discount 0 (a
    termination)."""

    def __init__(self, terminate_at=None):
        super().__init__()
        self.terminate_at, self.t, self.episode = terminate_at, 0, -1

    def initialize_episode(self, physics):
        self.t, self.episode = 0, self.episode + 1

    def before_step(self, action, physics):
        self.t, self.action = self.t + 1, float(action[0])

    def action_spec(self, physics):
        return specs.BoundedArray((1,), np.float64, -2.0, 3.0, "action")

    def get_observation(self, physics):
        return {"t": np.array([self.t], np.float64), "episode": np.array([self.episode], np.float64)}

    def get_reward(self, physics):
        return self.action

    def get_termination(self, physics):
        return 0.0 if self.t == self.terminate_at else None


def make_counter(terminate_at=None, render_mode=None):
    # A physics step of 0.25 s and a limit of 1.25 s: 5 steps, exactly in binary floating point.
    physics = mujoco.Physics.from_xml_string('<mujoco><option timestep="0.25"/><worldbody/></mujoco>')
    env = control.Environment(physics, CounterTask(terminate_at), time_limit=1.25)
    return shimmy.DmControlCompatibilityV0(env, render_mode=render_mode)


gym.register("tests/DmCounter-v0", entry_point=make_counter)
gym.register("tests/DmCounterTerminating-v0", entry_point=make_counter, kwargs={"terminate_at": 3})


def test_a_dict_observation_is_one_vector_of_its_arrays_in_alphabetical_key_order(each_sac):
    env = each_sac.make_env("dm_control/walker-walk-v0")
    raw = gym.make("dm_control/walker-walk-v0")
    assert list(raw.observation_space) == ["height", "orientations", "velocity"]  # dm_control's own order differs
    obs, _ = env.reset(seed=3)
    parts, _ = raw.reset(seed=3)
    assert obs.shape == env.observation_space.shape == (24,)  # 1 + 14 + 9
    np.testing.assert_array_equal(
        obs, np.concatenate([parts["height"].ravel(), parts["orientations"], parts["velocity"]])
    )
    action = np.full(6, 0.5)
    np.testing.assert_array_equal(env.step(action)[0][1:15], raw.step(action)[0]["orientations"])


def test_the_same_seed_gives_the_same_episodes(each_sac):
    first, second = (
        each_sac.make_env("dm_control/cartpole-swingup-v0"),
        each_sac.make_env("dm_control/cartpole-swingup-v0"),
    )
    for env in (first, second):
        env.reset(seed=7)
    starts = [[first.reset()[0], second.reset()[0]] for _ in range(3)]  # the episodes after a seeded one, too
    assert all(np.array_equal(a, b) for a, b in starts)
    assert not np.array_equal(first.reset(seed=8)[0], second.reset(seed=7)[0])


def test_the_time_limit_of_a_task_ends_its_episode_in_a_truncation(each_sac):
    env = each_sac.make_env("dm_control/cartpole-swingup-v0")
    env.reset(seed=0)
    ends = [env.step(np.zeros(1))[2:4] for _ in range(1000)]
    assert ends[-1] == (False, True) and set(ends[:-1]) == {(False, False)}  # step 1,000: truncated, not terminated


def test_videos_play_in_real_time_one_frame_per_control_step(each_sac):
    """Shimmy's render_fps is not the task's control rate (cheetah: 10 against 100 steps per second of simulated
    time); the scripts' videos take the control rate."""
    for env_id, control_fps in [("dm_control/cheetah-run-v0", 100), ("dm_control/humanoid-walk-v0", 40)]:
        assert gym.make(env_id).metadata["render_fps"] != control_fps
        assert each_sac.make_env(env_id).metadata["render_fps"] == control_fps


def test_videos_of_a_running_task_follow_the_robot(each_sac):
    """Shimmy renders from a free camera that stands still: 10 m down the track, the cheetah is out of its picture. The
    scripts' videos take the model's camera 0 (cheetah's "side", which follows the body); without a video, nothing
    changes."""

    def robot_pixels(env):  # the bodies' orange: red, well above blue (the floor and the sky are blue-grey)
        frame = env.render().astype(int)
        return int(((frame[..., 0] > 150) & (frame[..., 0] - frame[..., 2] > 60)).sum())

    scripts = each_sac.make_env("dm_control/cheetah-run-v0", render=True)
    shimmys = gym.make("dm_control/cheetah-run-v0", render_mode="rgb_array")
    for env, followed in [(scripts, True), (shimmys, False)]:
        env.reset(seed=0)
        before, physics = robot_pixels(env), env.unwrapped._env.physics
        with physics.reset_context():
            physics.data.qpos[0] += 10.0  # the root's x: 10 m forward
        after = robot_pixels(env)
        assert before > 1000 and (after > before / 2) == followed, (before, after, followed)
    assert each_sac.make_env("dm_control/cheetah-run-v0").unwrapped.render_kwargs == {}


def test_a_dm_env_time_limit_is_stored_bootstrapped_with_its_real_last_observation(each_sac):
    obs, _, _, next_obs, terminations = collect(each_sac, "tests/DmCounter-v0", num_envs=2, steps=12)
    # The flattened observation is [episode, t]: alphabetical order.
    np.testing.assert_array_equal(next_obs[:, 1], obs[:, 1] + 1)
    np.testing.assert_array_equal(next_obs[:, 0], obs[:, 0])
    assert (next_obs[:, 1] == 5).sum() == 4 and np.all(terminations == 0)  # 2 sub-envs x 2 truncated episodes


def test_a_dm_env_termination_is_stored_as_terminal(each_sac):
    obs, _, _, next_obs, terminations = collect(each_sac, "tests/DmCounterTerminating-v0", num_envs=1, steps=9)
    np.testing.assert_array_equal(next_obs[:, 1], obs[:, 1] + 1)
    np.testing.assert_array_equal(terminations, (next_obs[:, 1] == 3).astype(np.float32))
    assert terminations.sum() == 3


def test_a_dm_control_run_trains_evaluates_and_logs(tmp_path, script):
    flags = ["--env-id", "dm_control/cartpole-swingup-v0", "--total-timesteps", "1500", "--learning-starts", "1000",
             "--batch-size", "64", "--eval-episodes", "1", "--save-model"]  # fmt: skip
    result = run_ok(script, *flags, cwd=tmp_path)
    assert "final evaluation at step 1500" in result.stdout and result.stderr == ""
    path = run_dir(tmp_path)
    assert path.name.startswith(f"dm_control-cartpole-swingup-v0__{script}__1__")
    scalars = read_scalars(path)
    assert scalars["charts/episodic_length"] == [(1000, 1000.0)]  # one whole episode: the time limit
    assert scalars["eval/episodic_length"] == [(1500, 1000.0)]
    losses = ["losses/qf_loss", "losses/actor_loss", "losses/alpha"] + (["losses/vf_loss"] if "v1" in script else [])
    for tag in losses:
        assert [step for step, _ in scalars[tag]] == list(range(1100, 1501, 100)), tag  # learning from step 1,001
        assert all(np.isfinite(value) for _, value in scalars[tag])
    assert (path / f"{script}.pt").exists()


def test_registering_the_dm_control_ids_leaves_the_warning_filters_as_they_were(script):
    """Importing dm_control.composer sets every DeprecationWarning of the process to print: a compiled run's log
    would show 14 of torch.compile's own. In a fresh process, as a run registers the ids."""
    code = (f"import warnings, {script}; before = list(warnings.filters); {script}.register_dm_control(); "
            "import dm_control.composer, gymnasium; gymnasium.spec('dm_control/cheetah-run-v0'); "
            "print(warnings.filters == before)")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout == "True\n", result.stderr


def test_a_composer_task_is_not_restored_but_does_not_break_a_checkpoint(each_sac):
    """dm_control's locomotion tasks are composer environments, whose state the scripts do not save: a resumed run
    starts them on a new episode (set_env_state says False, and the script says so)."""
    env = each_sac.make_env("dm_control/RodentRunGaps-v0")
    env.reset(seed=0)
    assert not each_sac.is_dm_control(env)
    state = each_sac.env_state(env)
    assert set(state) == {"elapsed_steps", "action_space"}
    assert each_sac.set_env_state(env, state) is False
