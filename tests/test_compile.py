"""The compiled update (the default, --compile): each kind of step is one graph with no break, and it computes what
the eager update (--no-compile) does, in all three scripts. The only tests that compile (on the CPU: inductor's C++);
on a CUDA device also with Triton and as CUDA graphs (--cudagraphs), which benchmark/gpu_check.sh runs on a GPU."""

import copy
import dataclasses
import importlib

import pytest
import torch
import torch._dynamo.utils
import torch._inductor.config

CUDA_ONLY = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (benchmark/gpu_check.sh, on a GPU)")
# mode -> (device, the Args of the compiled run)
MODES = {"cpu": ("cpu", dict(compile=True)), "cuda": ("cuda", dict(compile=True)),
         "cuda+cudagraphs": ("cuda", dict(compile=True, cudagraphs=True))}  # fmt: skip


def on(device, batch):
    return type(batch)(*(t.to(device) for t in batch))


def continuous_batch(module, n=64):
    return module.Batch(obs=torch.randn(n, 5), actions=torch.rand(n, 2) * 2 - 1, rewards=torch.randn(n),
                        next_obs=torch.randn(n, 5), terminations=(torch.rand(n) < 0.2).float())  # fmt: skip


def atari_batch(module, n=8):
    frames = lambda: torch.randint(0, 256, (n, 4, 84, 84), dtype=torch.uint8)  # noqa: E731
    return module.Batch(frames(), torch.randint(0, 4, (n,)), torch.randn(n), frames(), (torch.rand(n) < 0.2).float())


# script -> (its Args, its agent, a minibatch, the kinds of step its loop makes: the flags of update())
CASES = {
    "sac_continuous_action": (
        dict(policy_frequency=2, target_network_frequency=1),
        lambda m, args, device: m.make_agent(args, 5, 2, device),
        continuous_batch,
        [dict(update_actor=False, update_targets=True), dict(update_actor=True, update_targets=True)],
    ),
    "sac_v1_value": (
        dict(autotune=True, policy_reg=1e-3),
        lambda m, args, device: m.make_agent(args, 5, 2, device),
        continuous_batch,
        [dict(update_targets=True)],
    ),
    "sac_discrete_atari": (
        dict(batch_size=8),
        lambda m, args, device: m.make_agent(args, 4, device),
        atari_batch,
        [{}],
    ),
}


@pytest.fixture(autouse=True)
def same_rounding_and_noise():
    """inductor draws its own random numbers unless told to use eager's generator: with it, the same noise eps. On
    CUDA, cuDNN's convolutions in plain fp32 (its TF32 default would round each run its own way), deterministic."""
    cudnn = torch.backends.cudnn.flags(enabled=True, deterministic=True, allow_tf32=False)
    with torch._inductor.config.patch(fallback_random=True), cudnn:
        yield


def train_a_little(module, args, agent, batches, kinds):
    """The update of compiled_update(args, agent), the kinds of step in turn, one per batch: the losses of each."""
    update = module.compiled_update(args, agent)
    losses = []
    for i, batch in enumerate(batches):
        torch.manual_seed(100 + i)  # the same noise in both runs
        losses.append(update(batch, **kinds[i % len(kinds)]))
    return losses


def adams(agent) -> list:
    parts = [getattr(agent, f.name) for f in dataclasses.fields(agent)]
    return [part for part in parts if type(part).__name__ == "Adam"]


def params(adam) -> list[torch.Tensor]:
    return [p for group, _ in adam.groups.values() for p in group]


def tensors(agent) -> list[torch.Tensor]:
    """Every tensor an update may change: the networks, log alpha, the Adams' moments and step counts."""
    networks = [getattr(agent, f.name) for f in dataclasses.fields(agent)]
    weights = [p for net in networks if isinstance(net, torch.nn.Module) for p in net.parameters()]
    return [*weights, agent.log_alpha, *(t for adam in adams(agent) for t in adam.tensors())]


@pytest.mark.parametrize("mode", ["cpu", pytest.param("cuda", marks=CUDA_ONLY),
                                  pytest.param("cuda+cudagraphs", marks=CUDA_ONLY)])  # fmt: skip
def test_the_compiled_update_is_one_graph_per_kind_of_step_and_computes_the_eager_updates_numbers(
    any_script, mode, capsys
):
    module = importlib.import_module(any_script)
    overrides, make_agent, make_batch, kinds = CASES[any_script]
    device, compiled_args = MODES[mode]
    args = module.Args(**overrides)
    torch.manual_seed(0)
    agent = make_agent(module, args, torch.device(device))
    batches = [on(device, make_batch(module)) for _ in range(12)]
    eager_agent, compiled_agent = copy.deepcopy(agent), copy.deepcopy(agent)
    stepped = {id(adam): [p.clone() for p in params(adam)] for adam in adams(eager_agent)}
    eager = train_a_little(module, dataclasses.replace(args, compile=False), eager_agent, batches, kinds)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    compiled = train_a_little(module, dataclasses.replace(args, **compiled_args), compiled_agent, batches, kinds)

    # One graph for each kind of step, no break, no recompilation after the first call of each kind.
    assert dict(torch._dynamo.utils.counters["graph_break"]) == {}
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == len(kinds)
    printed = capsys.readouterr().out
    assert printed.count("torch.compile: the update") == len(kinds) and " compiled in " in printed
    wait = "torch.compile: compiling the update; the first updates wait for the compiler"  # said once, before
    assert printed.count(wait) == 1 and printed.index(wait) < printed.index(" compiled in ")

    # The same numbers, 12 updates on.
    for step, (c, e) in enumerate(zip(compiled, eager, strict=True)):
        assert set(c) == set(e)
        for name in e:
            torch.testing.assert_close(c[name], e[name], rtol=1e-4, atol=1e-5, msg=f"{name} at update {step}")
    for c, e in zip(tensors(compiled_agent), tensors(eager_agent), strict=True):
        torch.testing.assert_close(c, e, rtol=1e-4, atol=1e-5)
    for adam in adams(eager_agent):  # every parameter an Adam steps learnt: the runs compared did something
        assert all(not torch.equal(p, before) for p, before in zip(params(adam), stepped[id(adam)], strict=True))


def test_an_update_that_does_not_come_out_as_one_graph_runs_eagerly_after_one_notice(monkeypatch, capsys):
    """A torch that cannot trace some op of the update into the graph: fullgraph=True raises while tracing, before
    anything runs; the run goes on with the eager update, which takes that same step."""
    module = importlib.import_module("sac_continuous_action")
    update = module.update

    def update_with_a_graph_break(*args, **kwargs):
        torch._dynamo.graph_break()
        return update(*args, **kwargs)

    monkeypatch.setattr(module, "update", update_with_a_graph_break)
    overrides, make_agent, make_batch, kinds = CASES["sac_continuous_action"]
    args = module.Args(**overrides, compile=True)
    torch.manual_seed(0)
    agent, batches = make_agent(module, args, torch.device("cpu")), [make_batch(module) for _ in range(2)]
    eager_agent = copy.deepcopy(agent)
    torch._dynamo.reset()
    compiled = module.compiled_update(args, agent)
    for i, (batch, kind) in enumerate(zip(batches, kinds, strict=True)):
        torch.manual_seed(100 + i)
        losses = compiled(batch, **kind)
        torch.manual_seed(100 + i)
        expected = update(batch, eager_agent, args, **kind)
        assert set(losses) == set(expected) and all(torch.equal(losses[name], expected[name]) for name in expected)
    for c, e in zip(tensors(agent), tensors(eager_agent), strict=True):
        assert torch.equal(c, e)
    printed = capsys.readouterr().out
    assert printed.count(f"torch.compile: the update is not one graph on torch {torch.__version__} (") == 1
    assert printed.count("): it runs eagerly (--no-compile)") == 1 and " compiled in " not in printed
