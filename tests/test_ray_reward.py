"""The verl reward with `addresses: ray://NAME`: it grades on the fleet's live workers (each a
server of its pool), follows a worker that Ray restarts under a new address, and stops the
step (never a 0 score) when the fleet is gone or was never there."""
from __future__ import annotations

import asyncio

import pytest

ray = pytest.importorskip("ray")

from ray_helpers import local_cluster, node_args, wait_for  # noqa: E402
from sandbox.ray_fleet import NAMESPACE, control  # noqa: E402
from test_verl_reward import FUNCTIONAL, STDIN, ground_truth_of, response  # noqa: E402
from verl_plugin.reward import SandboxRewardError, Settings, close_pools, compute_score, get_pool  # noqa: E402

FLEET = "rfleet"
URL = f"ray://{FLEET}"


@pytest.fixture(scope="module")
def fleet():
    with local_cluster(head_cpus=1, nodes=[node_args(2), node_args(2)]):
        control.up(FLEET, workers=2, wait_s=120)
        yield
        if FLEET in {a["name"] for a in ray.util.list_named_actors(all_namespaces=True)}:
            control.down(FLEET)


def samples() -> list[tuple[str, str, float]]:
    stdin, functional = ground_truth_of(STDIN), ground_truth_of(FUNCTIONAL)
    return [(response(STDIN["solutions"]["correct"][0]["code"]), stdin, 1.0),
            (response(STDIN["solutions"]["incorrect"][0]["code"]), stdin, 0.0),
            (response(FUNCTIONAL["solutions"]["correct"][0]["code"]), functional, 1.0),
            (response("print(", "python"), stdin, 0.0)] * 2


async def grade_group(**kwargs) -> tuple[list[dict], set[str]]:
    """A GRPO group's scores and the addresses the pool grades on."""
    kwargs = {"addresses": URL, **kwargs}
    results = await asyncio.gather(*(compute_score("livecodebench", text, truth, {"index": i}, **kwargs)
                                      for i, (text, truth, _) in enumerate(samples())))
    pool = get_pool(Settings.from_kwargs(kwargs))
    return list(results), {s.address for s in pool.servers}


def live_addresses() -> set[str]:
    return {w.address for w in control.status(FLEET).live}


def test_reward_grades_on_the_fleet_and_follows_a_restart(fleet):
    expected = [score for _, _, score in samples()]

    async def main() -> None:
        try:
            results, used = await grade_group()
            assert [r["score"] for r in results] == expected, [r["verdict"] for r in results]
            assert used == live_addresses() and len(used) == 2
            assert {r["verdict"] for r in results} == {"AC", "WA", "CE"}

            victim = sorted(used)[0]
            worker = next(w for w in control.status(FLEET).live if w.address == victim)
            ray.kill(ray.get_actor(worker.worker_id, namespace=NAMESPACE), no_restart=False)
            wait_for(lambda: len(live_addresses()) == 2 and victim not in live_addresses(), 60,
                     "the killed worker back under a new address")
            results, used = await grade_group()
            assert [r["score"] for r in results] == expected
            assert victim not in used and used == live_addresses()
        finally:
            await close_pools()
    asyncio.run(main())


def test_a_fleet_that_does_not_exist_stops_the_step(fleet):
    async def main() -> None:
        try:
            with pytest.raises(SandboxRewardError, match="no sandbox fleet named 'nosuch'"):
                await compute_score("livecodebench", samples()[0][0], samples()[0][1],
                                    addresses="ray://nosuch")
        finally:
            await close_pools()
    asyncio.run(main())
    with pytest.raises(SandboxRewardError, match="is not ray://NAME"):
        Settings.from_kwargs({"addresses": "ray://a/b"})


def test_the_fleet_going_away_stops_the_step_instead_of_scoring_zero(fleet):
    text, truth, _ = samples()[0]

    async def main() -> None:
        try:
            first = await compute_score("livecodebench", text, truth, addresses=URL, retries=2,
                                        backoff_s=0.1)
            assert first["score"] == 1.0
            control.down(FLEET)
            with pytest.raises(SandboxRewardError) as stopped:
                await compute_score("livecodebench", text, truth, addresses=URL, retries=2,
                                    backoff_s=0.1)
            assert "sandbox unreachable" in str(stopped.value), stopped.value
            assert "sandbox ray up" in str(stopped.value)
        finally:
            await close_pools()
    asyncio.run(main())
