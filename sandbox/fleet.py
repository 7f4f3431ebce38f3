"""Fleet tooling on the Docker SDK: which gateway / worker containers run, and their load."""
from __future__ import annotations

from pathlib import Path

SERVICES = ("gateway", "worker")


def _docker():
    try:
        import docker
        client = docker.from_env()
        client.ping()
        return client
    except Exception as exc:  # noqa: BLE001 - any failure means "no daemon to talk to"
        raise RuntimeError(f"cannot reach the Docker daemon: {exc}") from None


def fleet_containers(client, project: str | None = None) -> list:
    filters = {"label": ["com.docker.compose.service"]}
    if project:
        filters["label"].append(f"com.docker.compose.project={project}")
    return [c for c in client.containers.list(all=True, filters=filters)
            if c.labels.get("com.docker.compose.service") in SERVICES]


def _worker_load(socket_path: Path) -> tuple[int, int] | None:
    from sandbox.client import SandboxClient
    try:
        with SandboxClient(f"unix:{socket_path}", timeout=2, tls=False) as client:
            info = client.info()
            return info.in_flight, info.capacity
    except Exception:  # noqa: BLE001 - an unreachable worker shows as such
        return None


def fleet_status(project: str | None = None, workers_dir: str | None = None) -> list[dict]:
    client = _docker()
    rows = []
    for container in sorted(fleet_containers(client, project), key=lambda c: c.name):
        service = container.labels.get("com.docker.compose.service")
        health = (container.attrs.get("State", {}).get("Health") or {}).get("Status", "-")
        row = {"name": container.name, "service": service, "state": container.status,
               "health": health, "in_flight": 0, "capacity": 0, "socket": ""}
        if service == "worker" and workers_dir:
            socket_path = Path(workers_dir) / (container.attrs["Config"]["Hostname"] + ".sock")
            if socket_path.exists():
                row["socket"] = str(socket_path)
                load = _worker_load(socket_path)
                if load:
                    row["in_flight"], row["capacity"] = load
                else:
                    row["health"] = "unreachable"
        rows.append(row)
    return rows
