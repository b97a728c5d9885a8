"""deploy/kubernetes/, without a cluster: every manifest valid against the Kubernetes schemas
that `kubernetes-validate` ships (strict: unknown fields are errors), the pieces wired to each
other, and the pods' settings and probes run by a real `distcache`."""

from __future__ import annotations

import copy
import json
import tomllib
import urllib.request

import kubernetes_validate
import pytest
from kubernetes_validate.utils import latest_version

from tests.conftest import free_port, run_cli
from tests.deploy.deployfiles import Dockerfile, copied_files, load_manifests, runnable

#: The oldest Kubernetes release still commonly run, and the newest the package knows.
VERSIONS = ["1.27.0", latest_version()]


def by_kind() -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for doc in load_manifests():
        out.setdefault(doc["kind"], []).append(doc)
    return out


def statefulset() -> dict:
    [sts] = by_kind()["StatefulSet"]
    return sts


def container() -> dict:
    [main] = statefulset()["spec"]["template"]["spec"]["containers"]
    return main


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_is_valid(version):
    docs = load_manifests()
    assert {d["kind"] for d in docs} == {"StatefulSet", "Service", "PodDisruptionBudget"}
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("break_it", [
    lambda sts: sts["spec"].update(replica=3),
    lambda sts: sts["spec"]["template"]["spec"]["containers"][0].update(readinessProbe={
        "httpGet": {"path": "/health"}}),  # no port
    lambda sts: sts["spec"]["template"]["spec"]["containers"][0]["ports"][0].update(
        containerPort="6379"),
])
def test_strict_validation_catches_mistakes(break_it):
    sts = copy.deepcopy(statefulset())
    break_it(sts)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(sts, VERSIONS[-1], strict=True)


def test_peers_find_each_other_by_stable_dns_names():
    sts = statefulset()
    name, replicas = sts["metadata"]["name"], sts["spec"]["replicas"]
    assert replicas == 3
    headless = next(s for s in by_kind()["Service"] if s["metadata"]["name"] ==
                    sts["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    env = {e["name"]: e for e in container()["env"]}
    assert env["NODE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    peers = env["CLUSTER_NODES"]["value"].split(",")
    assert peers == [f"{name}-{i}@{name}-{i}.{headless['metadata']['name']}:6379"
                     for i in range(replicas)]
    for secret_var in ("DISTCACHE_PASSWORD", "DISTCACHE_CLUSTER_SECRET"):
        assert env[secret_var]["valueFrom"]["secretKeyRef"]["optional"] is True


def test_selectors_ports_and_volumes_line_up():
    sts = statefulset()
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert sts["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for service in by_kind()["Service"]:
        assert service["spec"]["selector"].items() <= labels.items()
        named_ports = {p["name"] for p in container()["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= named_ports
    [pdb] = by_kind()["PodDisruptionBudget"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1
    [claim] = sts["spec"]["volumeClaimTemplates"]
    [mount] = container()["volumeMounts"]
    assert mount["name"] == claim["metadata"]["name"]
    # The volume is where the image's config keeps the data.
    dockerfile = Dockerfile()
    config_path = copied_files(dockerfile)[dockerfile.cmd[-1]]
    assert tomllib.loads(config_path.read_text())["node"]["data_dir"] == mount["mountPath"]


def test_pod_settings_are_accepted_by_distcache():
    dockerfile = Dockerfile()
    main = container()
    command = runnable(main.get("command", dockerfile.cmd), dockerfile) + main.get("args", [])
    env = {e["name"]: e["value"] for e in main["env"] if "value" in e}
    result = run_cli("check-config", *command[1:],
                     env={**dockerfile.env, **env, "NODE_ID": "distcache-0"})
    assert result.returncode == 0, result.stderr
    assert "config OK: node distcache-0 on 0.0.0.0:6379" in result.stdout


def test_probes_run_against_a_real_node(node_process):
    main = container()
    probes = [main[kind] for kind in ("startupProbe", "readinessProbe", "livenessProbe")]
    ports = {port["name"]: port["containerPort"] for port in main["ports"]}
    dashboard = free_port()
    proc = node_process("--port", "0", "--set", 'node.metrics=["dashboard"]',
                        "--set", f"plugins.dashboard.port={dashboard}")
    for probe in probes:
        # /health of the dashboard, on the container port the image's config gives it.
        assert probe["httpGet"]["path"] == "/health"
        assert ports[probe["httpGet"]["port"]] == 8080
        # A probe must give its answer inside the time Kubernetes waits for it.
        assert probe["timeoutSeconds"] >= 2
        with urllib.request.urlopen(f"http://127.0.0.1:{dashboard}/health", timeout=2) as got:
            assert got.status == 200
            assert json.load(got) == {"status": "serving", "node": "node-1"}
    proc.stop()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{dashboard}/health", timeout=2)
