"""deploy/k8s: every manifest parses, and ports, probes, names and secrets agree with the app."""

from __future__ import annotations

import runpy

import pytest

from tests.deploy.files import (APP_VARS, DEPLOY, K8S, PORT, SECRET_VARS, TEMPLATE_VARS, deployment_container, kind,
                                size_bytes)
from yishitang.config import ConfigError, Settings


# Kubernetes


def test_k8s_every_document_parses_and_every_kind_is_there(manifests):
    kinds = sorted(doc["kind"] for _file, doc in manifests)
    assert kinds == sorted(["Namespace", "ConfigMap", "Secret", "Deployment", "Deployment", "Service",
                            "Ingress", "PodDisruptionBudget", "Kustomization"])
    namespace = kind(manifests, "Namespace")["metadata"]["name"]
    assert namespace == "yishitang"
    for file, doc in manifests:
        if doc["kind"] not in ("Namespace", "Kustomization"):
            assert doc["metadata"]["namespace"] == namespace, file
            assert doc["apiVersion"], file
    kustomization = kind(manifests, "Kustomization")
    assert kustomization["namespace"] == namespace
    files = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    # The example Secret is left out, so `kubectl apply -k` never overwrites the real one.
    assert set(kustomization["resources"]) == files - {"secret.example.yaml"}
    assert len(kustomization["resources"]) == len(set(kustomization["resources"]))


def test_k8s_api_deployment(manifests, dockerfile):
    api = kind(manifests, "Deployment", "yishitang-api")
    spec, pod = api["spec"], api["spec"]["template"]["spec"]
    assert spec["replicas"] == 2
    assert spec["selector"]["matchLabels"].items() <= api["spec"]["template"]["metadata"]["labels"].items()
    container = deployment_container(api)
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": PORT}

    def probe_port(probe):
        port = probe["httpGet"]["port"]
        return ports[port] if isinstance(port, str) else port

    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert probe_port(container[probe]) == PORT, probe
    assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
    assert {"cpu", "memory"} <= container["resources"]["limits"].keys()

    user = next(rest for keyword, rest in dockerfile.instructions if keyword == "USER").split(":")[0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert str(pod["securityContext"]["runAsUser"]) == user
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]

    env = {item["name"]: item for item in container["env"]}
    assert env["PORT"]["value"] == str(PORT)
    # gunicorn's graceful shutdown fits in the pod's grace period, after the preStop pause.
    graceful = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))["graceful_timeout"]
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > graceful + pause


def test_k8s_scheduler_deployment(manifests, dockerfile):
    scheduler = kind(manifests, "Deployment", "yishitang-scheduler")
    container = deployment_container(scheduler)
    assert container["command"] == ["yishitang", "scheduler"]
    assert scheduler["spec"]["replicas"] >= 1
    assert "ports" not in container
    assert container["livenessProbe"]["exec"]["command"][:3] == ["python", "/app/healthcheck.py", "scheduler"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert scheduler["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    text = " ".join(line.lstrip("# ") for line in (K8S / "scheduler-deployment.yaml").read_text().splitlines())
    assert "Two are safe" in text and "once across all processes" in text
    api = deployment_container(kind(manifests, "Deployment", "yishitang-api"))
    assert container["image"] == api["image"]
    images = kind(manifests, "Kustomization")["images"]
    assert [image["name"] for image in images] == [api["image"].rsplit(":", 1)[0]]


def test_k8s_config_secret_and_env_names(manifests):
    config = kind(manifests, "ConfigMap")
    secret = kind(manifests, "Secret")
    config_keys, secret_keys = set(config["data"]), set(secret["stringData"])
    assert secret_keys == SECRET_VARS
    assert not config_keys & SECRET_VARS, "secrets belong in the Secret"
    assert not config_keys - APP_VARS, sorted(config_keys - APP_VARS)
    assert TEMPLATE_VARS <= config_keys
    assert config["data"]["PROXY_COUNT"] == "1"  # the ingress controller
    Settings.from_env(env={**config["data"], "JWT_SECRET": "k" * 32})  # every value is valid
    assert all(isinstance(value, str) for value in config["data"].values())

    for name in ("yishitang-api", "yishitang-scheduler"):
        container = deployment_container(kind(manifests, "Deployment", name))
        refs = [source["configMapRef"]["name"] for source in container["envFrom"]]
        assert refs == [config["metadata"]["name"]]
        from_secret = set()
        for item in container["env"]:
            assert item["name"] in APP_VARS, (name, item["name"])
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == secret["metadata"]["name"], name
                assert ref["key"] in secret_keys, (name, ref["key"])
                from_secret.add(item["name"])
        assert from_secret == SECRET_VARS, name


def test_k8s_placeholder_secret_cannot_start_the_app(manifests):
    secret = kind(manifests, "Secret")["stringData"]
    with pytest.raises(ConfigError, match="32"):
        Settings.from_env(env=dict(secret))


def test_k8s_service_ingress_and_pdb(manifests, app):
    api = kind(manifests, "Deployment", "yishitang-api")
    pod_labels = api["spec"]["template"]["metadata"]["labels"]
    scheduler_labels = kind(manifests, "Deployment", "yishitang-scheduler")["spec"]["template"]["metadata"]["labels"]
    ports = {port["name"]: port["containerPort"] for port in deployment_container(api)["ports"]}

    service = kind(manifests, "Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert not service["spec"]["selector"].items() <= scheduler_labels.items()
    (service_port,) = service["spec"]["ports"]
    target = service_port["targetPort"]
    assert (ports[target] if isinstance(target, str) else target) == PORT

    ingress = kind(manifests, "Ingress")
    body = size_bytes(ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"])
    assert body >= app.config["MAX_CONTENT_LENGTH"]
    backends = [path["backend"]["service"] for rule in ingress["spec"]["rules"]
                for path in rule["http"]["paths"]]
    assert backends == [{"name": service["metadata"]["name"], "port": {"name": service_port["name"]}}]

    pdb = kind(manifests, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1 < api["spec"]["replicas"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
