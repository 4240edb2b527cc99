"""The trained agents the results pages publish: each model file loads through its script's --eval-model, plays
episodes from the run's own seed, and their mean return goes at least half of the way from a random policy's return
(benchmark/normalization.csv; 0 on DeepMind Control) to the final evaluation its page states. An actor that does not
load, or loads wrongly, plays like a random policy, far below that.

Not one episode: the page's number reproduces exactly only on the CPU model that made it; elsewhere the episodes are
new draws of a spread. Ant-v5's agent (1734.0 ± 1174.6 over its 10 episodes) returned 73.6 to 2379.1 from 11 other
start states, and from 5 seeds 10-episode means of 879.1 to 2125.3. So the test plays as many episodes as make the
mean's standard error (the page's std over the square root of n) a quarter of the margin or less: 3 where the
episodes agree, 21 for Ant-v5. What this does not tell apart: an Ant that stands still returns about 987 (a freshly
initialised actor, measured), which is above the threshold; a uniform random policy's -29 (the mean of 10 episodes,
measured on Ant-v5) is far below it. (The threshold goes half way from D4RL's random return, -326 on Ant-v2.)

The bar means something only where a random policy falls short of it, and the test measures that too: a uniform random
policy plays 10 episodes from the same start states, and none of them may reach the bar.

A model whose models.csv row says `learned` = no is published to be watched, not to pass a bar that a random policy
passes too (humanoid walk at 500,000 steps: the median seed never stood up). Its test checks that it loads and plays,
and that its label is right: some random episode reaches half of its page's number."""

import csv
import importlib
import math
import re
from pathlib import Path

import numpy as np
import pytest
import report
from conftest import ROOT, run


def published_models() -> list[dict]:
    """Every row of every results page's models/models.csv, with the page's directory."""
    rows = []
    for index in sorted(ROOT.glob("docs/results/*/models/models.csv")):
        with open(index, newline="") as f:
            rows += [{**row, "page": index.parent.parent} for row in csv.DictReader(f)]
    return rows


def test_the_results_pages_publish_models():
    assert published_models(), "no docs/results/*/models/models.csv lists a model"


def episodes_to_play(model: dict, threshold: float) -> int:
    """Enough episodes that the mean's standard error is at most a quarter of the margin above the threshold."""
    name = Path(model["file"]).stem
    with open(model["page"] / "eval_curves" / f"{name}.csv", newline="") as f:
        std = float(list(csv.DictReader(f))[-1]["std_return"])  # the spread of the page's final evaluation
    margin = float(model["final_eval_return"]) - threshold
    return min(30, max(3, math.ceil((4 * std / margin) ** 2)))


def random_policy_returns(model: dict, episodes: int = 10) -> np.ndarray:
    """A uniform random policy's returns on the model's env (made as its script makes it), from the start states of
    the run's evaluations (the script's evaluate() seeds the first reset with seed + 10,000)."""
    script = importlib.import_module(model["script"])
    if model["env_id"].startswith("dm_control/"):
        script.register_dm_control()
    env = script.make_env(model["env_id"])
    env.action_space.seed(int(model["seed"]))
    returns = []
    for episode in range(episodes):
        env.reset(seed=int(model["seed"]) + 10_000 if episode == 0 else None)
        done, episode_return = False, 0.0
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            episode_return, done = episode_return + float(reward), terminated or truncated
        returns.append(episode_return)
    env.close()
    return np.array(returns)


def test_each_published_model_says_whether_it_learned():
    assert all(row["learned"] in ("yes", "no") for row in published_models())


def half_way_from_random(model: dict) -> float:
    """Half way from a random policy's return (normalization.csv; 0 where it has none) to the page's number."""
    bounds = report.normalizer(model["env_id"], report.read_normalization(report.NORMALIZATION))
    random_return = bounds[0] if bounds else 0.0
    return random_return + 0.5 * (float(model["final_eval_return"]) - random_return)


def play(model: dict, episodes: int, cwd: Path) -> float:
    """The page's checks (the file is small enough to keep; the page links it and states its number), then the mean
    return of `episodes` episodes through its script's --eval-model, from the run's own seed: they start where the
    run's own evaluations did."""
    path = model["page"] / "models" / model["file"]
    assert path.stat().st_size < 1_000_000
    readme = (model["page"] / "README.md").read_text()
    assert f"models/{model['file']}" in readme and model["final_eval_return"] in readme
    result = run(model["script"], "--eval-model", str(path), "--eval-episodes", str(episodes), "--seed", model["seed"],
                 cwd=cwd, timeout=900)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return float(re.search(rf"{re.escape(model['env_id'])}: (?:return|score) (-?[\d.]+)", result.stdout).group(1))


def models_that(learned: str) -> list:
    return [pytest.param(m, id=m["file"]) for m in published_models() if m["learned"] == learned]


@pytest.mark.parametrize("model", models_that(learned="yes"))
def test_a_published_model_plays_half_as_well_as_its_page_says_above_random(model, tmp_path):
    threshold = half_way_from_random(model)
    randomly = random_policy_returns(model)
    assert randomly.max() < threshold, (randomly, threshold)  # the bar tells this model from a random policy
    played = play(model, episodes_to_play(model, threshold), tmp_path)
    assert played >= threshold, (played, threshold, model)


@pytest.mark.parametrize("model", models_that(learned="no"))
def test_a_published_model_that_did_not_learn_loads_and_plays(model, tmp_path):
    threshold = half_way_from_random(model)
    randomly = random_policy_returns(model)
    assert randomly.max() >= threshold, (randomly, threshold)  # labelled right: a random policy does as well
    assert math.isfinite(play(model, 3, tmp_path))
