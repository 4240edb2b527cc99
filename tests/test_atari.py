"""sac_discrete_atari.py on real ROMs: the Atari wrappers, the frame replay buffer, the input checks, a whole run."""

import re

import gymnasium as gym
import numpy as np
import pytest
import torch
from ale_py.env import AtariEnv
from conftest import final_state, read_scalars, run, run_dir, run_ok


class FrameRecorder(gym.Wrapper):
    """Sits right on the emulator (under every wrapper of the script) and records what it sees: each frame's
    action and raw reward, and the real resets. It changes nothing."""

    def __init__(self, env):
        super().__init__(env)
        self.actions, self.rewards, self.resets = [], [], 0

    def reset(self, **kwargs):
        self.resets += 1
        return self.env.reset(**kwargs)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.actions.append(int(action))
        self.rewards.append(float(reward))
        return obs, reward, terminated, truncated, info


def recorded_game(**kwargs):
    return FrameRecorder(AtariEnv(**kwargs))


# The real ROMs, watched by a FrameRecorder; BreakoutShort truncates at 600 frames (150 agent steps).
for game, name, extra in [("breakout", "Breakout", {}), ("freeway", "Freeway", {}), ("beam_rider", "BeamRider", {}),
                          ("breakout", "BreakoutShort", {"max_num_frames_per_episode": 600})]:  # fmt: skip
    gym.register(f"tests/{name}NoFrameskip-v4", entry_point=recorded_game,
                 kwargs={"game": game, "frameskip": 1, "repeat_action_probability": 0.0, **extra})  # fmt: skip


gym.register("tests/BreakoutRam-v5", entry_point="ale_py.env:AtariEnv", kwargs={"game": "breakout", "obs_type": "ram"})


def recorder_of(env: gym.Env) -> FrameRecorder:
    while not isinstance(env, FrameRecorder):
        env = env.env
    return env


# ------------------------------------------------------------------ the wrappers
def test_fire_is_pressed_after_reset_only_where_the_game_needs_it(atari):
    env = atari.make_env("tests/BreakoutNoFrameskip-v4")
    obs, _ = env.reset(seed=0)
    actions = recorder_of(env).actions
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    assert 1 <= len(actions) - 4 <= 30 and set(actions[:-4]) == {0}  # 1-30 no-op frames, then FIRE (4 frames)
    assert actions[-4:] == [1] * 4 and env.unwrapped.get_action_meanings()[1] == "FIRE"
    env = atari.make_env("tests/FreewayNoFrameskip-v4")  # Freeway has no FIRE: no-ops only
    env.reset(seed=0)
    assert set(recorder_of(env).actions) == {0}


def play_until_done(env, rng):
    """Random actions until the episode ends; returns (rewards, terminated, truncated, info)."""
    rewards = []
    while True:
        _, reward, terminated, truncated, info = env.step(int(rng.integers(env.action_space.n)))
        rewards.append(reward)
        if terminated or truncated:
            return rewards, terminated, truncated, info


def test_a_lost_life_ends_the_training_episode_but_not_the_game(atari):
    env, rng = atari.make_env("tests/BreakoutNoFrameskip-v4"), np.random.default_rng(0)
    env.reset(seed=0)
    ale, recorder = env.unwrapped.ale, recorder_of(env)
    for lives_left in [4, 3, 2, 1]:
        _, terminated, _, _ = play_until_done(env, rng)
        assert terminated and ale.lives() == lives_left and not ale.game_over()
        frames = ale.getEpisodeFrameNumber()
        env.reset()
        # The same game goes on: no real reset, the frame count continues, a no-op and FIRE were played.
        assert recorder.resets == 1 and ale.getEpisodeFrameNumber() == frames + 8
        assert recorder.actions[-8:] == [0] * 4 + [1] * 4 and ale.lives() == lives_left
    _, terminated, _, info = play_until_done(env, rng)
    assert terminated and ale.game_over() and "episode" in info  # the game's end: its score is reported
    env.reset()
    assert recorder.resets == 2 and ale.lives() == 5


def test_evaluation_plays_the_whole_game_and_fires_after_each_lost_life(atari):
    env, rng = atari.make_env("tests/BreakoutNoFrameskip-v4", train=False), np.random.default_rng(1)
    env.reset(seed=0)
    recorder, lives, fires_after_loss = recorder_of(env), 5, 0
    while True:
        _, _, terminated, truncated, _ = env.step(int(rng.integers(2, 4)))  # RIGHT or LEFT: never FIRE itself
        if terminated or truncated:
            break
        if env.unwrapped.ale.lives() < lives:
            lives = env.unwrapped.ale.lives()
            fires_after_loss += recorder.actions[-4:] == [1] * 4
    assert terminated and env.unwrapped.ale.game_over() and recorder.resets == 1
    assert lives == 1 and fires_after_loss == 4  # 5 lives: 4 losses played on, each followed by FIRE


def test_training_rewards_are_clipped_while_the_logged_game_score_is_raw(atari):
    envs = atari.make_vector_env(atari.Args(env_id="tests/BeamRiderNoFrameskip-v4", num_envs=1))
    envs.reset(seed=0)
    recorder, rng, clipped, games = recorder_of(envs.envs[0]), np.random.default_rng(0), [], []
    while not games:
        _, rewards, _, _, _, games = atari.step_envs(envs, rng.integers(envs.single_action_space.n, size=1))
        clipped.append(rewards[0])
    ((index, score, length),) = games
    raw = np.array(recorder.rewards)
    assert set(np.unique(clipped)) <= {-1.0, 0.0, 1.0} and raw.max() > 1  # BeamRider's points come in 44s
    assert score == raw.sum() and score > sum(clipped) > 0
    # The game's length counts the automatic steps too: FIRE at the start, then NOOP and FIRE after each of the
    # first 2 of BeamRider's 3 lives.
    assert index == 0 and length == len(clipped) + 1 + 2 * 2


def test_a_game_that_ends_inside_the_resets_noop_or_fire_keeps_its_score(atari):
    """After a lost life, AtariLives.reset plays a NOOP and FIRE; a game that ends there (here at a frame limit placed
    inside that step) is reported by step_envs with its score and length, not lost with the reset's info."""
    actions = np.random.default_rng(3).integers(4, size=1000)  # these score a point before the first life is lost
    probe = atari.make_env("tests/BreakoutNoFrameskip-v4")
    probe.reset(seed=0)
    steps = 1
    while not probe.step(int(actions[steps - 1]))[2]:
        steps += 1
    lost_at = probe.unwrapped.ale.getEpisodeFrameNumber()
    for where, frames_past in [("Noop", 2), ("Fire", 6)]:  # the NOOP plays 4 frames, then FIRE 4
        gym.register(f"tests/BreakoutEndsIn{where}NoFrameskip-v4", entry_point=recorded_game,
                     kwargs={"game": "breakout", "frameskip": 1, "repeat_action_probability": 0.0,
                             "max_num_frames_per_episode": lost_at + frames_past})  # fmt: skip
        envs = atari.make_vector_env(atari.Args(env_id=f"tests/BreakoutEndsIn{where}NoFrameskip-v4", num_envs=1))
        envs.reset(seed=0)
        recorder = recorder_of(envs.envs[0])
        for t in range(steps):
            _, _, terminations, _, _, games = atari.step_envs(envs, actions[t : t + 1])
            assert games == [] or t == steps - 1
        # The life was lost at the last step; the game ended inside the autoreset, which then began a new game.
        assert terminations[0] and recorder.resets == 2 and envs.envs[0].unwrapped.ale.lives() == 5
        automatic = {"Noop": 1, "Fire": 2}[where]  # the steps AtariLives played after the loss
        assert games == [(0, sum(recorder.rewards), 1 + steps + automatic)] and sum(recorder.rewards) > 0


def test_every_evaluation_with_the_same_seed_plays_the_same_games(atari):
    """A reset with a seed starts a new game, even where AtariLives would continue the last one: the second
    evaluation on the same env replays the first."""
    env = atari.make_env("BreakoutNoFrameskip-v4", train=False)
    torch.manual_seed(0)
    actor = atari.Actor(env.action_space.n)
    first, second = (atari.evaluate(actor, env, 2, seed=1) for _ in range(2))
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1]), (first, second)
    assert first[1].min() > 50  # whole games of 5 lives


class ActionsPerGame(gym.Wrapper):
    """The actions the agent played in each game (a reset starts the next one); the automatic ones are not here."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.games = []

    def reset(self, **kwargs):
        self.games.append([])
        return self.env.reset(**kwargs)

    def step(self, action):
        self.games[-1].append(int(action))
        return self.env.step(action)


def frame_blind_actor(atari, logits: list[float]):
    """An Actor whose pi(.|s) is softmax(logits) whatever the frames (its last layer's weights zeroed): the same
    actions from any stack of frames, on any CPU."""
    actor = atari.Actor(len(logits))
    with torch.no_grad():
        actor.net[1].weight.zero_()
        actor.net[1].bias.copy_(torch.tensor(logits))
    return actor


def test_an_evaluation_game_has_the_score_and_length_training_gives_it(atari):
    """One game of Breakout played by the same actions through evaluate and through the training wrappers (where a
    lost life ends the episode and the next reset plays on): the same score and length, RecordEpisodeStatistics'.
    The length counts every step of the game: the agent's own actions, FIRE at the start and NOOP and FIRE after each
    of the 4 lives lost before the last."""
    actor = frame_blind_actor(atari, [0.0, 0.0, 0.0, 0.0])  # uniform a ~ pi: the same draws from the same seed
    env = atari.make_env("BreakoutNoFrameskip-v4", train=True)
    torch.manual_seed(0)
    obs, info = env.reset(seed=1 + 10_000)  # evaluate's seed for --seed 1
    game = None
    while game is None:
        action = int(actor.sample(torch.as_tensor(obs).unsqueeze(0))[0])
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:  # a lost life, or the game's end
            game = info.get("episode")
            if game is None:
                obs, info = env.reset()
                game = info.get("episode")  # (a game that ended inside the reset's automatic steps)
    evaluation = ActionsPerGame(atari.make_env("BreakoutNoFrameskip-v4", train=False))
    torch.manual_seed(0)
    scores, lengths = atari.evaluate(actor, evaluation, 1, seed=1, greedy=False)
    assert (scores[0], lengths[0]) == (float(game["r"]), int(game["l"])) and scores[0] > 0
    assert lengths[0] == len(evaluation.games[0]) + 1 + 2 * 4


def test_an_evaluation_plays_distinct_games_and_the_same_ones_for_the_same_seed(atari):
    """A greedy policy that ignores the frames, on Pong (no sticky actions): the only chance in a game was the number
    of no-ops at its start, and 10 games held 5 distinct ones. With --eval-epsilon's 1% of random actions, from a
    generator of the evaluation's seed, all 10 differ (score, length, actions), and the same seed plays them again."""
    actor = frame_blind_actor(atari, [0.0, 0.0, 1.0, 0.5, 0.0, 0.0])

    def games(epsilon: float) -> list[tuple]:
        env = ActionsPerGame(atari.make_env("PongNoFrameskip-v4", train=False))
        scores, lengths = atari.evaluate(actor, env, 10, seed=1, epsilon=epsilon)
        return list(zip(scores.tolist(), lengths.tolist(), map(tuple, env.games), strict=True))

    assert len(set(games(0.0))) == 5
    distinct = games(0.01)
    assert len(set(distinct)) == 10 and games(0.01) == distinct
    assert atari.Args().eval_epsilon == 0.01


# ------------------------------------------------------------------ the replay buffer
def test_every_stored_transition_rebuilds_the_stacks_the_environment_produced(atari):
    """A real rollout of 2 sub-envs with lost lives (terminations) and time limits (truncations), through a buffer
    that wraps around: every transition the buffer can sample equals, bit for bit, the recorded one."""
    num_envs, steps = 2, 700
    envs = atari.make_vector_env(atari.Args(env_id="tests/BreakoutShortNoFrameskip-v4", num_envs=num_envs))
    rb = atari.FrameReplayBuffer(2 * 400, num_envs, torch.device("cpu"))
    rng = np.random.default_rng(0)
    obs, _ = envs.reset(seed=0)
    rb.reset(obs)
    stored, first = {}, np.ones(num_envs, bool)  # first: obs is the first observation of an episode
    for _ in range(steps):
        actions = rng.integers(4, size=num_envs)
        next_obs, rewards, terminations, truncations, real_next_obs, _ = atari.step_envs(envs, actions)
        for e in range(num_envs):  # the transition each sub-env stores at its current slot
            kind = "terminated" if terminations[e] else "truncated" if truncations[e] else "first" if first[e] else ""
            stored[e, int(rb.head[e])] = (obs[e], actions[e], rewards[e], real_next_obs[e], terminations[e], kind)
        rb.add(actions, rewards, terminations, real_next_obs, next_obs, terminations | truncations)
        obs, first = next_obs, terminations | truncations
    assert rb.written == rb.slots  # the rings have wrapped around

    envs_idx, slots = torch.nonzero(rb.starts, as_tuple=True)
    assert len(slots) >= 0.9 * num_envs * rb.slots  # only episodes' last frames and the 3 oldest slots are lost
    batch = rb.gather(envs_idx, slots)
    kinds = []
    for i, (e, j) in enumerate(zip(envs_idx.tolist(), slots.tolist(), strict=True)):
        s, a, r, s_next, d, kind = stored[e, j]
        assert np.array_equal(batch.obs[i].numpy(), s) and np.array_equal(batch.next_obs[i].numpy(), s_next), (e, j)
        assert batch.actions[i] == a and batch.rewards[i] == r and batch.terminations[i] == d
        kinds.append(kind)
    # Checked among them: episodes' first steps (stacks that repeat frame 1), lost lives, time limits.
    assert kinds.count("first") >= 10 and kinds.count("terminated") >= 10 and kinds.count("truncated") >= 2

    envs_idx, slots = rb.sample_slots(10_000)  # sampling draws only slots that start a transition, all of them
    assert rb.starts[envs_idx, slots].all()
    assert len(set(zip(envs_idx.tolist(), slots.tolist(), strict=True))) > 0.9 * rb.starts.sum()


def test_the_buffer_needs_one_frame_per_transition(atari):
    rb = atari.FrameReplayBuffer(1000, 1, torch.device("cpu"))
    per_transition = sum(t.nbytes for t in (rb.frames, rb.actions, rb.rewards, rb.terminations, rb.age, rb.starts))
    assert per_transition / 1000 == 84 * 84 + 11 == rb.BYTES_PER_SLOT  # 7,067 bytes: 7.07 GB for 1,000,000


# ------------------------------------------------------------------ input checks
@pytest.mark.parametrize("overrides, message", [
    ({"env_id": "Pendulum-v1"}, "a continuous action space (Box(-2.0, 2.0, (1,), float32)); use sac_continuous_action"),
    ({"env_id": "NoSuchGame-v4"}, "--env-id 'NoSuchGame-v4' is not a registered gymnasium environment; Atari ids"),
    ({"env_id": "CartPole-v1"}, "--env-id CartPole-v1 is not an Atari game (ALE)"),
    ({"env_id": "tests/BreakoutRam-v5"}, "observes 'ram'; this script needs the screen"),
    ({"target_entropy_scale": 1.0}, "--target-entropy-scale must be in (0, 1), got 1.0"),
    ({"update_frequency": 0}, "--update-frequency must be positive"),
    ({"adam_eps": 0.0}, "--adam-eps must be a positive number"),
    ({"learning_starts": 10}, "--learning-starts (10) must be at least --batch-size (64)"),
    ({"buffer_size": 10**12}, "--buffer-size 1000000000000 needs 7067000.0 GB of memory"),
])  # fmt: skip
def test_bad_input_is_refused_with_one_line(atari, overrides, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        atari.check_inputs(atari.Args(**{"buffer_size": 10_000, **overrides}))  # small: fits any machine
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and err.count("\n") == 1, err


def test_both_atari_id_families_pass_the_checks(atari):
    assert atari.check_inputs(atari.Args(env_id="BreakoutNoFrameskip-v4", buffer_size=10_000)) == 4
    assert atari.check_inputs(atari.Args(env_id="ALE/Breakout-v5", buffer_size=10_000)) == 4
    env = atari.make_env("ALE/Breakout-v5")  # made with frameskip 1 (AtariPreprocessing skips), sticky actions kept
    assert env.unwrapped._frameskip == 1 and env.unwrapped.ale.getFloat("repeat_action_probability") == 0.25


def test_bad_input_from_the_command_line_exits_2_before_training(tmp_path):
    result = run("sac_discrete_atari", "--env-id", "Hopper-v5", cwd=tmp_path)
    assert result.returncode == 2 and "use sac_continuous_action.py" in result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "runs").exists()


# ------------------------------------------------------------------ end to end
TAGS = {
    "charts/episodic_return", "charts/episodic_length", "charts/SPS", "eval/episodic_return", "eval/episodic_length",
    "eval/episodic_return_std", "losses/qf1_values", "losses/qf2_values", "losses/qf1_loss", "losses/qf2_loss",
    "losses/qf_loss", "losses/actor_loss", "losses/alpha", "losses/alpha_loss", "losses/entropy",
}  # fmt: skip
FLAGS = ["--env-id", "BreakoutNoFrameskip-v4", "--total-timesteps", "900", "--learning-starts", "600",
         "--buffer-size", "2000", "--target-network-frequency", "200", "--eval-frequency", "900",
         "--eval-episodes", "1", "--save-model", "--no-cuda", "--batch-size", "16"]  # fmt: skip
# (--batch-size 16: a fourth of the default's compute, where a test asks what an update does, not what it learns)


@pytest.fixture(scope="module")
def breakout_runs(tmp_path_factory):
    """Three Breakout runs of 900 steps (300 past learning_starts): seed 1 twice (with a video), and seed 2."""
    cwds = {name: tmp_path_factory.mktemp(f"breakout_{name}") for name in "abc"}
    results = {name: run_ok("sac_discrete_atari", *FLAGS, "--seed", "2" if name == "c" else "1",
                            *(["--capture-video"] * (name == "a")), cwd=cwd) for name, cwd in cwds.items()}  # fmt: skip
    return cwds, results


def test_breakout_logs_every_metric_and_real_game_scores(breakout_runs):
    cwds, _ = breakout_runs
    scalars = read_scalars(run_dir(cwds["a"]))
    assert set(scalars) == TAGS
    assert [step for step, _ in scalars["losses/qf1_loss"]] == [700, 800, 900]
    assert [step for step, _ in scalars["eval/episodic_return"]] == [900]
    games = [value for _, value in scalars["charts/episodic_return"]]
    lengths = [value for _, value in scalars["charts/episodic_length"]]
    # Whole games of random Breakout (5 lives, about 150-300 steps), their real scores
    assert len(games) >= 2 and all(v >= 0 and v == int(v) for v in games) and all(100 < v < 900 for v in lengths)
    assert all(0 < value for _, value in scalars["losses/alpha"]) and scalars["losses/alpha"][-1][1] != 1.0
    entropy = [value for _, value in scalars["losses/entropy"]]
    assert all(0 < h <= np.log(4) + 1e-6 for h in entropy)


def test_breakout_video_and_saved_model(breakout_runs):
    from moviepy import VideoFileClip

    cwds, results = breakout_runs
    path = run_dir(cwds["a"])
    (video,) = (cwds["a"] / "videos" / path.name).glob("*.mp4")
    final_length = read_scalars(path)["eval/episodic_length"][-1][1]
    # One frame per action of the agent's, the whole evaluation game: its length less the automatic steps (FIRE at the
    # start, NOOP and FIRE after each of the 4 lives lost before the last), at the game's speed (60 frames a second,
    # one in 4 seen).
    with VideoFileClip(str(video)) as clip:
        assert clip.size == [160, 210] and clip.fps == 15
        assert abs(clip.duration * clip.fps - (final_length - 9)) <= 2
    model = path / "sac_discrete_atari.pt"
    saved = torch.load(model, weights_only=True)
    assert set(saved) == {"actor", "qf1", "qf2", "qf1_target", "qf2_target", "log_alpha", "args", "script"}
    # The targets were last copied at step 800, 25 updates before the end.
    assert not torch.equal(saved["qf1_target"]["net.1.weight"], saved["qf1"]["net.1.weight"])
    evaluation = run_ok("sac_discrete_atari", "--eval-model", str(model), "--eval-episodes", "1", cwd=cwds["a"])
    printed = float(re.search(r"BreakoutNoFrameskip-v4: score ([\d.]+)", evaluation.stdout).group(1))
    assert printed == read_scalars(path)["eval/episodic_return"][-1][1]  # same actor, same seed: the same game


def test_an_atari_actor_is_too_large_to_publish_and_gif_only_makes_its_gif(breakout_runs, tmp_path):
    """An Atari actor (the Nature CNN, about 6.7 MB) is over the 1 MB a results page keeps: benchmark/publish_model.py
    refuses it in one line and leaves no file; --gif-only writes the GIF alone, 5 s of the game at its speed."""
    from PIL import Image, ImageSequence

    cwds, _ = breakout_runs
    refused = run("benchmark/publish_model.py", str(run_dir(cwds["a"])), "--out", str(tmp_path), timeout=300)
    assert refused.returncode == 2 and "over 1,000,000" in refused.stderr and "--gif-only" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and not list(tmp_path.iterdir())
    made = run("benchmark/publish_model.py", str(run_dir(cwds["a"])), "--out", str(tmp_path), "--gif-only", timeout=300)
    assert made.returncode == 0, made.stderr
    (gif,) = tmp_path.iterdir()
    assert gif.name == "BreakoutNoFrameskip-v4__sac_discrete_atari__1.gif"
    with Image.open(gif) as image:  # 15 frames a second (10 * round(100 / 15) ms each), all of them kept
        durations = [image.info["duration"] for _ in ImageSequence.Iterator(image)]
    # Pillow writes a run of identical frames (a pause of the game) as one frame shown for all of their time.
    assert image.size == (160, 210) and sum(durations) == 75 * 70 and all(d % 70 == 0 for d in durations)


def test_atari_policy_replays_the_evaluation_and_samples_the_games_eval_model_plays(breakout_runs, tmp_path):
    """benchmark/atari_policy.py plays a run's evaluation games through the script's evaluate(): greedy, they are the
    run's last evaluation; sampled from pi, they are the games --eval-model --no-eval-greedy plays with the same seed,
    the same games each time. What it says of pi fits Breakout's 4 actions; a RUN_DIR with no model gets one line."""
    cwds, _ = breakout_runs
    path = run_dir(cwds["a"])
    result = run("benchmark/atari_policy.py", str(path), "--episodes", "1", timeout=300)
    assert result.returncode == 0, result.stderr
    line = re.compile(r"score ([\d.]+) ± [\d.]+ \[\d+, \d+\], length (\d+) over 1 games; entropy of pi ([\d.]+) nats "
                      r"\(uniform ([\d.]+)\), largest probability ([\d.]+); actions chosen: (.*)")  # fmt: skip
    greedy, sampled = (line.search(text).groups() for text in result.stdout.strip().splitlines())
    scalars = read_scalars(path)
    assert float(greedy[0]) == scalars["eval/episodic_return"][-1][1]
    assert int(greedy[1]) == scalars["eval/episodic_length"][-1][1]
    model = path / "sac_discrete_atari.pt"
    plays = [run_ok("sac_discrete_atari", "--eval-model", str(model), "--eval-episodes", "1", "--no-eval-greedy",
                    cwd=cwds["a"]) for _ in range(2)]  # fmt: skip
    printed = [re.search(r"score ([\d.]+) \+- [\d.]+, length (\d+)", play.stdout).groups() for play in plays]
    assert printed[0] == printed[1] == sampled[:2]
    for score, length, entropy, uniform, largest, actions in (greedy, sampled):
        assert 0 < float(entropy) <= float(uniform) == round(np.log(4), 3) and 0.25 <= float(largest) <= 1
        shares = dict(re.findall(r"(\w+) (\d+)%", actions))
        assert set(shares) == {"NOOP", "FIRE", "RIGHT", "LEFT"} and abs(sum(map(int, shares.values())) - 100) <= 2
    empty = run("benchmark/atari_policy.py", str(tmp_path), timeout=120)
    assert empty.returncode == 2 and "expected one model saved by --save-model" in empty.stderr
    assert len(empty.stderr.strip().splitlines()) == 1


def test_same_seed_gives_identical_results_on_cpu(breakout_runs):
    cwds, _ = breakout_runs
    states, logs = {}, {}
    for name, cwd in cwds.items():
        states[name], logs[name] = final_state(cwd, "sac_discrete_atari")
    for net in ["actor", "qf1", "qf2", "qf1_target", "qf2_target"]:
        assert all(torch.equal(states["a"][net][k], states["b"][net][k]) for k in states["a"][net]), net
    assert logs["a"] == logs["b"]
    assert not torch.equal(states["a"]["actor"]["net.1.weight"], states["c"]["actor"]["net.1.weight"])


def test_every_multiple_of_the_update_frequency_makes_an_update_with_many_sub_envs(atari, tmp_path):
    """8 sub-envs, an update every 4 env steps: two updates per step of all of them. 800 env steps past
    learning_starts make 200 updates (Adam counts its steps), not one per vector step (100)."""
    run_ok("sac_discrete_atari", "--env-id", "BreakoutNoFrameskip-v4", "--num-envs", "8", "--update-frequency", "4",
           "--total-timesteps", "1200", "--learning-starts", "400", "--batch-size", "16", "--buffer-size", "2000",
           "--eval-frequency", "1200", "--eval-episodes", "1", "--checkpoint-frequency", "1200", "--no-cuda",
           cwd=tmp_path)  # fmt: skip
    agent = torch.load(run_dir(tmp_path) / "checkpoint.pt", weights_only=True)["state"]["agent"]
    assert int(agent["q_optimizer"]["t"]) == int(agent["policy_optimizer"]["t"]) == 200  # each Adam's steps
    assert [atari.crossings(step, 8, 4) for step in (8, 16, 404)] == [2, 2, 2]
    assert [atari.crossings(step, 8, 100) for step in (96, 104, 200, 208)] == [0, 1, 1, 0]
