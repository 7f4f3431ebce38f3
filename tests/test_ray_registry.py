"""The fleet registry's and the clients' bookkeeping, without a cluster (the classes are plain
Python; tests/test_ray_fleet.py and test_ray_load.py run them as Ray actors and clients)."""
from __future__ import annotations

import pytest

from sandbox.ray_fleet import RayFleetError, fleet_name, is_ray_address
from sandbox.ray_fleet import registry as registry_module
from sandbox.ray_fleet.balance import Balancer, Endpoint
from sandbox.ray_fleet.directory import client_credentials
from sandbox.ray_fleet.registry import FleetRegistry, FleetSettings, WorkerEntry


def entry(worker_id: str, address: str, *, capacity: int = 1, in_flight: int = 0,
          node_ip: str = "127.0.0.1", bind: str = "loopback") -> dict:
    return WorkerEntry(worker_id=worker_id, address=address, node_id=f"node-{node_ip}",
                       node_ip=node_ip, capacity=capacity, bind=bind, in_flight=in_flight).to_dict()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(registry_module.time, "monotonic", clock)
    return clock


def test_addresses():
    assert is_ray_address("ray://sandbox") and not is_ray_address("127.0.0.1:50051")
    assert not is_ray_address(["ray://a"])
    assert fleet_name("ray://sandbox") == fleet_name("ray://sandbox/") == "sandbox"
    for bad in ("ray://", "ray://a/b", "ray://a,b"):
        with pytest.raises(ValueError, match="is not ray://NAME"):
            fleet_name(bad)


def test_registry_drops_silent_workers_and_follows_restarts(clock):
    registry = FleetRegistry(FleetSettings(cpus_per_worker=2).to_dict())
    registry.heartbeat(entry("w1", "127.0.0.1:1001", capacity=2))
    registry.heartbeat(entry("w2", "127.0.0.1:1002", capacity=2))
    assert [w["address"] for w in registry.snapshot()["workers"]] == ["127.0.0.1:1001", "127.0.0.1:1002"]
    assert registry.snapshot()["settings"]["cpus_per_worker"] == 2

    # w1 restarted under a new port: its old address goes at once
    registry.heartbeat(entry("w1", "127.0.0.1:2001", capacity=2))
    assert sorted(w["address"] for w in registry.snapshot()["workers"]) == ["127.0.0.1:1002",
                                                                            "127.0.0.1:2001"]
    # w2 stops beating: still listed within STALE_AFTER_S, dropped after
    clock.now += registry_module.STALE_AFTER_S - 1
    registry.heartbeat(entry("w1", "127.0.0.1:2001", capacity=2))
    assert len(registry.snapshot()["workers"]) == 2
    clock.now += 2
    [alive] = registry.snapshot()["workers"]
    assert alive["worker_id"] == "w1" and alive["age_s"] == 2.0
    registry.leave("127.0.0.1:2001")
    assert registry.snapshot()["workers"] == []


def test_settings_are_checked():
    with pytest.raises(ValueError, match="need a token"):
        FleetSettings(bind="node").check()
    with pytest.raises(ValueError, match="both --tls-cert and --tls-key"):
        FleetSettings(tls_cert="c.pem").check()
    with pytest.raises(ValueError, match="bind must be one of"):
        FleetSettings(bind="everywhere").check()
    FleetSettings(bind="node", token_file="/t").check()
    assert FleetSettings(cpus_per_worker=0.5).capacity == 1
    assert FleetSettings(cpus_per_worker=3).capacity == 3


def balancer(node_ip: str = "127.0.0.1") -> Balancer:
    return Balancer(lambda w: w.bind == "node" or w.node_ip == node_ip,
                    lambda w: Endpoint(w, channel=None, stub=None))


def entries(*dicts: dict) -> list[WorkerEntry]:
    return [WorkerEntry.from_dict(d) for d in dicts]


def test_least_loaded_first_by_capacity_then_the_workers_own_count():
    pool = balancer()
    pool.update(entries(entry("a", "h:1", capacity=1), entry("b", "h:2", capacity=4)))
    picks = [pool.acquire(set()).address for _ in range(5)]
    # b holds four at once per unit of capacity of a's one
    assert picks.count("h:2") == 4 and picks.count("h:1") == 1
    for endpoint in list(pool.endpoints.values()):
        for _ in range(endpoint.in_flight):
            pool.release(endpoint, served=True)
    # equal local load: the one the registry says is less busy (other clients' work)
    pool.update(entries(entry("a", "h:1", in_flight=0), entry("b", "h:2", in_flight=3)))
    assert pool.acquire(set()).address == "h:1"


def test_failed_workers_wait_and_departed_ones_close_when_idle():
    pool = balancer()
    pool.update(entries(entry("a", "h:1"), entry("b", "h:2")))
    first = pool.acquire(set())
    pool.mark_down(first)
    assert pool.stale()  # a failure makes the next call look at the registry
    other = pool.acquire({first})
    assert other is not first
    assert pool.acquire(set()) is other  # the failed one stays out while down
    # `other` leaves the registry with two calls in flight: closed only once they are done
    staying = entries(entry(first.entry.worker_id, first.address))
    assert pool.update(staying) == []
    assert set(pool.endpoints) == {first.address}
    pool.release(other, served=True)
    assert pool.update(staying) == []
    pool.release(other, served=True)
    assert pool.update(staying) == [other]


def test_loopback_workers_of_other_machines_are_not_used():
    pool = balancer(node_ip="10.0.0.5")
    pool.update(entries(entry("here", "127.0.0.1:1", node_ip="10.0.0.5"),
                        entry("there", "127.0.0.1:2", node_ip="10.0.0.6"),
                        entry("open", "10.0.0.7:3", node_ip="10.0.0.7", bind="node")))
    assert set(pool.endpoints) == {"127.0.0.1:1", "10.0.0.7:3"} and pool.known == 3


def test_client_credentials_prefer_the_clients_own(tmp_path, monkeypatch):
    monkeypatch.delenv("SANDBOX_TOKEN", raising=False)
    monkeypatch.delenv("SANDBOX_TOKEN_FILE", raising=False)
    monkeypatch.delenv("SANDBOX_TLS_CA", raising=False)
    token_file = tmp_path / "token"
    token_file.write_text("t0ken\n")
    fleet = FleetSettings(bind="node", token_file=str(token_file), tls_cert="c", tls_key="k",
                          tls_ca="/ca.pem")
    assert client_credentials(fleet) == {"token": None, "token_file": str(token_file),
                                         "tls_ca": "/ca.pem", "tls_cert": None, "tls_key": None,
                                         "tls": True}
    assert client_credentials(fleet, token="mine")["token_file"] is None
    monkeypatch.setenv("SANDBOX_TOKEN", "from-env")
    assert client_credentials(fleet)["token_file"] is None  # the environment's wins
    monkeypatch.delenv("SANDBOX_TOKEN")
    unreadable = FleetSettings(bind="node", token_file=str(tmp_path / "missing"))
    with pytest.raises(RayFleetError, match="not readable here"):
        client_credentials(unreadable)
    assert client_credentials(FleetSettings())["tls"] is False
