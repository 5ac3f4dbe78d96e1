"""deploy/k8s/: the control plane in Kubernetes, checked against a schema of the fields it
uses (no cluster here, and `kubectl apply --dry-run=client` still asks one for its API
discovery) and against each other: every volume names a manifest that exists.

The schema is the Kubernetes API's shape for these kinds, closed (``additionalProperties:
false``) where shipbot writes the object, so a misspelt key fails as the API server would.
"""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

K8S = Path(__file__).resolve().parent.parent / "deploy" / "k8s"
NAME = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63}
LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
METADATA = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {"name": NAME, "labels": LABELS},
}
QUANTITY = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti)?$"}
RESOURCES = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "requests": {"type": "object", "additionalProperties": QUANTITY},
        "limits": {"type": "object", "additionalProperties": QUANTITY},
    },
}


def closed(required: list[str], **properties: object) -> dict:
    return {
        "type": "object",
        "required": required,
        "additionalProperties": False,
        "properties": properties,
    }


PVC = closed(
    ["apiVersion", "kind", "metadata", "spec"],
    apiVersion={"const": "v1"},
    kind={"const": "PersistentVolumeClaim"},
    metadata=METADATA,
    spec=closed(
        ["accessModes", "resources"],
        accessModes={
            "type": "array",
            "items": {"enum": ["ReadWriteOnce", "ReadWriteOncePod"]},
            "minItems": 1,
        },
        resources=RESOURCES,
        storageClassName={"type": "string"},
    ),
)
SECRET = closed(
    ["apiVersion", "kind", "metadata", "type"],
    apiVersion={"const": "v1"},
    kind={"const": "Secret"},
    metadata=METADATA,
    type={"const": "Opaque"},
    stringData={
        "type": "object",
        "propertyNames": {"pattern": r"^[-._a-zA-Z0-9]+$"},
        "additionalProperties": {"type": "string"},
    },
)
ENV_VAR = closed(["name", "value"], name={"type": "string"}, value={"type": "string"})
MOUNT = closed(
    ["name", "mountPath"],
    name=NAME,
    mountPath={"type": "string", "pattern": "^/"},
    readOnly={"type": "boolean"},
)
PROBE = closed(
    ["exec"],
    exec=closed(["command"], command={"type": "array", "items": {"type": "string"}}),
    initialDelaySeconds={"type": "integer", "minimum": 0},
    periodSeconds={"type": "integer", "minimum": 1},
    timeoutSeconds={"type": "integer", "minimum": 1},
    failureThreshold={"type": "integer", "minimum": 1},
)
CONTAINER = closed(
    ["name", "image"],
    name=NAME,
    image={"type": "string", "minLength": 1},
    args={"type": "array", "items": {"type": "string"}},
    env={"type": "array", "items": ENV_VAR},
    volumeMounts={"type": "array", "items": MOUNT},
    livenessProbe=PROBE,
    resources=RESOURCES,
    securityContext=closed(
        [],
        allowPrivilegeEscalation={"type": "boolean"},
        capabilities=closed([], drop={"type": "array", "items": {"type": "string"}}),
    ),
)
VOLUME = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": NAME,
        "persistentVolumeClaim": closed(["claimName"], claimName=NAME),
        "secret": closed(
            ["secretName"],
            secretName=NAME,
            defaultMode={"type": "integer", "minimum": 0, "maximum": 0o777},
        ),
    },
    "oneOf": [{"required": ["persistentVolumeClaim"]}, {"required": ["secret"]}],
}
DEPLOYMENT = closed(
    ["apiVersion", "kind", "metadata", "spec"],
    apiVersion={"const": "apps/v1"},
    kind={"const": "Deployment"},
    metadata=METADATA,
    spec=closed(
        ["replicas", "selector", "template"],
        replicas={"type": "integer", "minimum": 0},
        strategy=closed(["type"], type={"enum": ["Recreate", "RollingUpdate"]}),
        selector=closed(["matchLabels"], matchLabels=LABELS),
        template=closed(
            ["metadata", "spec"],
            metadata=closed(["labels"], labels=LABELS),
            spec=closed(
                ["containers"],
                securityContext=closed(
                    [],
                    runAsNonRoot={"type": "boolean"},
                    runAsUser={"type": "integer"},
                    runAsGroup={"type": "integer"},
                    fsGroup={"type": "integer"},
                ),
                containers={"type": "array", "items": CONTAINER, "minItems": 1},
                volumes={"type": "array", "items": VOLUME},
            ),
        ),
    ),
)
SCHEMAS = {"PersistentVolumeClaim": PVC, "Secret": SECRET, "Deployment": DEPLOYMENT}


def manifests() -> list[dict]:
    docs = []
    for path in sorted(K8S.glob("*.yml")):
        docs.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return docs


@pytest.mark.parametrize("doc", manifests(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_each_manifest_matches_its_kind(doc):
    jsonschema.validate(doc, SCHEMAS[doc["kind"]])


def test_one_replica_on_its_claim_with_its_secrets_never_root():
    docs = manifests()
    by_kind = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    deployment = by_kind[("Deployment", "shipbot")]
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] != 0
    volumes = {v["name"]: v for v in pod["volumes"]}
    for volume in volumes.values():  # every volume names a manifest shipped beside it
        if "persistentVolumeClaim" in volume:
            assert (
                "PersistentVolumeClaim",
                volume["persistentVolumeClaim"]["claimName"],
            ) in by_kind
        else:
            assert ("Secret", volume["secret"]["secretName"]) in by_kind
    (container,) = pod["containers"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert set(mounts.values()) <= set(volumes)
    env = {e["name"]: e["value"] for e in container["env"]}
    assert mounts[env["SHIPBOT_HOME"]] == "data"  # the SQLite file lives on the claim
    assert mounts[env["SHIPBOT_SECRETS_DIR"]] == "tokens"
    assert env["DOCKER_HOST"].startswith("ssh://")  # remote swarms, no socket in the pod
    tokens = by_kind[("Secret", "shipbot-tokens")]["stringData"]
    assert set(tokens) == {"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"}  # names Settings reads
    assert container["livenessProbe"]["exec"]["command"] == ["shipbot", "health"]


def test_a_misspelt_key_fails_as_the_api_server_would():
    deployment = next(d for d in manifests() if d["kind"] == "Deployment")
    spec = {**deployment["spec"], "replica": 1}
    with pytest.raises(jsonschema.ValidationError, match="'replica' was unexpected"):
        jsonschema.validate({**deployment, "spec": spec}, DEPLOYMENT)
