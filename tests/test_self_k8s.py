"""deploy/k8s/: the control plane in Kubernetes, checked with ``kubernetes-validate`` (the
official API schemas for one Kubernetes version, strict: an unknown key fails as the API
server would refuse it; no cluster here), against the restricted Pod Security Standard,
and against each other and shipbot: every volume names a manifest that exists, the Service
reaches the port serve listens on, the probes fit ``shipbot health``.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from bot.self_deploy import beat
from bot.settings import Settings
from core.config import ControlConfig

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
KUBERNETES = "1.37.0"  # the newest the pinned kubernetes-validate ships schemas for
# the volume kinds the restricted profile admits (besides ephemeral and CSI ones)
RESTRICTED_VOLUMES = {
    "configMap",
    "downwardAPI",
    "emptyDir",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def manifests() -> list[dict]:
    docs = []
    for path in sorted(K8S.glob("*.yml")):
        docs.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return docs


def by_kind() -> dict[tuple[str, str], dict]:
    return {(d["kind"], d["metadata"]["name"]): d for d in manifests()}


def validate_cli(*files: Path) -> subprocess.CompletedProcess[str]:
    """``kubernetes-validate --strict`` as CI and a user run it (its own entry point)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "kubernetes_validate",
            "--strict",
            "-k",
            KUBERNETES,
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("doc", manifests(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_each_manifest_passes_the_official_schema_strictly(doc):
    assert kubernetes_validate.validate(doc, KUBERNETES, strict=True) == "1.37"


def test_a_misspelt_key_fails_where_the_api_server_would_refuse_it():
    deployment = by_kind()[("Deployment", "shipbot")]
    top = copy.deepcopy(deployment)
    top["spec"]["replica"] = top["spec"].pop("replicas")
    with pytest.raises(kubernetes_validate.ValidationError) as refused:
        kubernetes_validate.validate(top, KUBERNETES, strict=True)
    assert (
        refused.value.message == "Additional properties are not allowed ('replica' was unexpected)"
    )
    assert list(refused.value.path) == ["spec"]
    deep = copy.deepcopy(deployment)
    probe = deep["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
    probe["periodSecond"] = probe.pop("periodSeconds")
    with pytest.raises(kubernetes_validate.ValidationError) as refused:
        kubernetes_validate.validate(deep, KUBERNETES, strict=True)
    assert list(refused.value.path) == [
        "spec",
        "template",
        "spec",
        "containers",
        0,
        "livenessProbe",
    ]


def test_the_validator_passes_the_folder_and_fails_a_misspelt_copy(tmp_path):
    files = sorted(K8S.glob("*.yml"))
    passed = validate_cli(*files)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert passed.stdout.count(" passed for resource ") == len(manifests())
    bad = tmp_path / "deployment.yml"
    text = (K8S / "deployment.yml").read_text()
    assert text.count("\n  replicas: 1\n") == 1
    bad.write_text(text.replace("\n  replicas: 1\n", "\n  replica: 1\n"))
    failed = validate_cli(bad)
    assert failed.returncode == 1
    assert failed.stdout.strip() == (
        f"ERROR {bad} did not validate for resource deployment/shipbot against version 1.37: "
        "spec: Additional properties are not allowed ('replica' was unexpected)"
    )


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """What the restricted Pod Security Standard refuses in a pod spec (the checks that
    concern a pod like this one), each as the field at fault."""
    found = []
    pod_context = pod.get("securityContext", {})
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            found.append(f"spec.{flag}")
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            found.append(f"volumes.{volume['name']}: {', '.join(sorted(kinds))}")
    if pod_context.get("runAsUser") == 0:
        found.append("spec.securityContext.runAsUser: 0")
    for container in pod.get("initContainers", []) + pod["containers"]:
        at = f"containers.{container['name']}"
        context = container.get("securityContext", {})
        if context.get("privileged"):
            found.append(f"{at}.securityContext.privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(f"{at}.securityContext.allowPrivilegeEscalation must be false")
        if context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is not True:
            found.append(f"{at}: runAsNonRoot must be true")
        if context.get("runAsUser") == 0:
            found.append(f"{at}.securityContext.runAsUser: 0")
        seccomp = context.get("seccompProfile", pod_context.get("seccompProfile", {}))
        if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
            found.append(f"{at}: seccompProfile.type must be RuntimeDefault or Localhost")
        capabilities = context.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            found.append(f"{at}.securityContext.capabilities.drop must hold ALL")
        if not set(capabilities.get("add", [])) <= {"NET_BIND_SERVICE"}:
            found.append(f"{at}.securityContext.capabilities.add")
        if any("hostPort" in port for port in container.get("ports", [])):
            found.append(f"{at}.ports: hostPort")
    return found


def test_the_pod_meets_the_restricted_pod_security_standard():
    pod = by_kind()[("Deployment", "shipbot")]["spec"]["template"]["spec"]
    assert restricted_violations(pod) == []
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    lax = copy.deepcopy(pod)
    del lax["securityContext"]["seccompProfile"]
    del lax["securityContext"]["runAsNonRoot"]
    (container,) = lax["containers"]
    container["securityContext"] = {"capabilities": {"add": ["SYS_ADMIN"]}}
    container["ports"][0]["hostPort"] = 3000
    lax["volumes"].append({"name": "sock", "hostPath": {"path": "/var/run/docker.sock"}})
    assert restricted_violations(lax) == [
        "volumes.sock: hostPath",
        "containers.shipbot.securityContext.allowPrivilegeEscalation must be false",
        "containers.shipbot: runAsNonRoot must be true",
        "containers.shipbot: seccompProfile.type must be RuntimeDefault or Localhost",
        "containers.shipbot.securityContext.capabilities.drop must hold ALL",
        "containers.shipbot.securityContext.capabilities.add",
        "containers.shipbot.ports: hostPort",
    ]


def test_one_replica_on_its_claim_with_its_config_and_tokens_and_no_engine():
    kinds = by_kind()
    spec = kinds[("Deployment", "shipbot")]["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 10001  # the image's user `shipbot`
    volumes = {v["name"]: v for v in pod["volumes"]}
    source = {"persistentVolumeClaim": ("PersistentVolumeClaim", "claimName")}
    source |= {"secret": ("Secret", "secretName"), "configMap": ("ConfigMap", "name")}
    for volume in volumes.values():  # every volume names a manifest shipped beside it
        ((key, ref),) = ((k, v) for k, v in volume.items() if k != "name")
        kind, field = source[key]
        assert (kind, ref[field]) in kinds, volume
    (container,) = pod["containers"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert {m["name"] for m in mounts.values()} == set(volumes)
    env = {e["name"]: e["value"] for e in container["env"]}
    assert "DOCKER_HOST" not in env  # no engine here: servers are added over SSH
    assert mounts[env["SHIPBOT_HOME"]]["name"] == "data"  # the SQLite file on the claim
    assert mounts[env["SHIPBOT_SECRETS_DIR"]]["name"] == "tokens"
    config = mounts[f"{env['SHIPBOT_HOME']}/shipbot.yml"]
    assert (config["name"], config["subPath"], config["readOnly"]) == (
        "config",
        "shipbot.yml",
        True,
    )
    config_map = kinds[("ConfigMap", volumes["config"]["configMap"]["name"])]
    shipbot_yml = ControlConfig.model_validate(yaml.safe_load(config_map["data"]["shipbot.yml"]))
    assert shipbot_yml.local is False
    assert "console:ops" in shipbot_yml.admins  # who adds the servers with `kubectl exec`
    aliases = {field.validation_alias for field in Settings.model_fields.values()}
    tokens = kinds[("Secret", volumes["tokens"]["secret"]["secretName"])]["stringData"]
    assert set(tokens) <= aliases  # files named as the variables Settings reads


def test_the_service_reaches_the_port_serve_listens_on():
    kinds = by_kind()
    pod = kinds[("Deployment", "shipbot")]["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["SHIPBOT_WEBHOOKS"] == env["SHIPBOT_CI_ENDPOINT"] == "1"  # /hooks/*, /ci/deploy
    listens = Settings.model_validate(env).http_port
    assert listens == Settings.model_fields["http_port"].default == 3000
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    service = kinds[("Service", "shipbot")]["spec"]
    assert service["selector"].items() <= pod["metadata"]["labels"].items()
    (port,) = service["ports"]
    assert ports[port["targetPort"]] == listens


def test_the_probes_run_shipbot_health_within_their_time_out(tmp_path):
    pod = by_kind()[("Deployment", "shipbot")]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    probes = [container[k] for k in ("startupProbe", "livenessProbe", "readinessProbe")]
    assert {tuple(p["exec"]["command"]) for p in probes} == {("shipbot", "health")}
    beat(tmp_path)
    took = []
    for _ in range(3):  # the script's own entry point, as the kubelet runs it
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-c", "import sys; from bot.cli import main; main()", "health"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={"SHIPBOT_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
            timeout=30,
        )
        took.append(time.monotonic() - started)
        assert done.returncode == 0, done.stderr
    assert sorted(took)[1] < min(p["timeoutSeconds"] for p in probes)
    # a startup that reads back what it missed gets minutes before its first beat
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300
