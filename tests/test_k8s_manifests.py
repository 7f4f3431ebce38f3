"""deploy/k8s: schema-valid, and shaped the way the fleet design relies on."""
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

MANIFEST = Path(__file__).resolve().parent.parent / "deploy" / "k8s" / "sandbox.yaml"


@pytest.fixture(scope="module")
def documents():
    return list(yaml.safe_load_all(MANIFEST.read_text()))


def test_schema_valid(documents):
    for document in documents:
        kubernetes_validate.validate(document, "1.30.0", strict=True)


def test_pod_holds_a_gateway_and_workers_sharing_sockets(documents):
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    workers = [c for name, c in containers.items() if name.startswith("worker")]
    assert "gateway" in containers and len(workers) >= 2
    sockets = next(v for v in pod["volumes"] if v["name"] == "sockets")
    assert "emptyDir" in sockets
    gateway_args = containers["gateway"]["args"]
    socket_dir = gateway_args[gateway_args.index("--workers-dir") + 1]
    for container in [containers["gateway"], *workers]:
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts["sockets"] == socket_dir
        assert container["resources"]["requests"]["cpu"]
        assert container["resources"]["requests"]["memory"]
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["readOnlyRootFilesystem"] is True
        assert security["capabilities"]["drop"] == ["ALL"]
        assert not security.get("privileged")
        assert not security["capabilities"].get("add")
    socket_paths = set()
    for worker in workers:
        address = worker["args"][worker["args"].index("--address") + 1]
        assert address.startswith(f"unix:{socket_dir}/")
        socket_paths.add(address)
        assert worker.get("ports") is None  # workers serve only the unix socket
    assert len(socket_paths) == len(workers)  # one socket per worker
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_service_targets_the_gateway_port(documents):
    service = next(d for d in documents if d["kind"] == "Service")
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    gateway = next(c for c in deployment["spec"]["template"]["spec"]["containers"]
                   if c["name"] == "gateway")
    port_names = {p["name"] for p in gateway["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
