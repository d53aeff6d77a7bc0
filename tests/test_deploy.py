"""deploy/: what cannot run here (no Docker engine, no Kubernetes, no mongodump) is checked against
the code: every file parses, ports and setting names agree with gunicorn's config and
yishitang/config.py, probes hit the right endpoints, the scripts refuse bad arguments and drive
stand-ins for the MongoDB tools correctly. What can run here runs: gunicorn with the production
config serving the app, the container health checks, and the scheduler seen by its health check.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import multiprocessing
import os
import re
import runpy
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml
from pymongo.uri_parser import parse_uri

from yishitang.cli import DEMO_TEMPLATES
from yishitang.config import SETTINGS, ConfigError, Settings
from yishitang.devtools.embedded import free_port

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
PORT = 8000  # the one port of the API, everywhere
SETTING_VARS = {var for var, _kind, _doc in SETTINGS.values()}
TEMPLATE_VARS = {f"WECHAT_TEMPLATE_{name.upper()}" for name in DEMO_TEMPLATES}
SECRET_VARS = {"JWT_SECRET", "WECHAT_SECRET", "MONGODB_URI"}
# Environment variables that are not the app's settings, and the file that reads each one.
EXTRA_VARS = {
    "PORT": "deploy/gunicorn.conf.py",
    "WEB_CONCURRENCY": "deploy/gunicorn.conf.py",
    "GUNICORN_THREADS": "deploy/gunicorn.conf.py",
    "GUNICORN_TIMEOUT": "deploy/gunicorn.conf.py",
    "LOG_LEVEL": "yishitang/cli.py",
    "BACKUP_DIR": "deploy/backup.sh",
    "BACKUP_KEEP_DAYS": "deploy/backup.sh",
}
APP_VARS = SETTING_VARS | TEMPLATE_VARS | EXTRA_VARS.keys()
COMPOSE_VARIABLES = {"YISHITANG_IMAGE", "HTTP_PORT", "MONGO_CACHE_GB"}
REPLICA_SET_URI = "mongodb://mongo1:27017,mongo2:27017,mongo3:27017/yishitang?replicaSet=rs0"


# ---------------------------------------------------------------------------------------------
# Small parsers: Dockerfile, nginx.conf, env files, sizes.


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuations joined and comments dropped; ARGs resolved."""
    logical, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        if current.strip():
            logical.append(current.strip())
        current = ""
    assert not current, "a continued line runs off the end of the Dockerfile"
    args, result = {}, []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "ARG":
            name, _, default = rest.partition("=")
            args[name.strip()] = default.strip()
        rest = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), rest)
        result.append((keyword, rest.strip()))
    return result


def nginx_parse(text: str) -> list:
    """nginx.conf as nested [name, [args], children-or-None]; raises on unbalanced braces."""
    tokens = re.findall(r"""#[^\n]*|"(?:\\.|[^"])*"|'(?:\\.|[^'])*'|[{};]|[^\s{};"'#]+""", text)
    tokens = [t for t in tokens if not t.startswith("#")]
    position = 0

    def block(depth: int) -> list:
        nonlocal position
        items, words = [], []
        while position < len(tokens):
            token = tokens[position]
            position += 1
            if token == ";":
                assert words, f"empty directive near token {position}"
                items.append([words[0], words[1:], None])
                words = []
            elif token == "{":
                assert words, f"block without a name near token {position}"
                items.append([words[0], words[1:], block(depth + 1)])
                words = []
            elif token == "}":
                assert depth > 0 and not words, f"unbalanced '}}' near token {position}"
                return items
            else:
                words.append(token.strip("\"'") if token[0] in "\"'" else token)
        assert depth == 0 and not words, "nginx.conf ends inside a block or directive"
        return items

    return block(0)


def nginx_find(items: list, name: str) -> list:
    return [item for item in items if item[0] == name]


def nginx_one(items: list, name: str) -> list:
    found = nginx_find(items, name)
    assert len(found) == 1, (name, found)
    return found[0]


def env_file(path: Path) -> dict[str, str]:
    values = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", name), f"{path.name}:{number}: {line!r}"
        assert name not in values, f"{path.name}: {name} twice"
        values[name] = value
    return values


def size_bytes(value: str) -> int:
    match = re.fullmatch(r"(\d+)([kKmMgG]?)", value)
    assert match, value
    return int(match.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2).lower()]


def seconds(value) -> float:
    match = re.fullmatch(r"(\d+)(s|m)?", str(value))
    assert match, value
    return int(match.group(1)) * (60 if match.group(2) == "m" else 1)


def gunicorn_conf(env: dict | None = None, monkeypatch=None) -> dict:
    """Execute deploy/gunicorn.conf.py as gunicorn does, with these environment variables."""
    for name in ("PORT", "WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_TIMEOUT", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))


# ---------------------------------------------------------------------------------------------
# Fixtures: the parsed files.


@pytest.fixture(scope="module")
def dockerfile():
    return dockerfile_instructions((DEPLOY / "Dockerfile").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def nginx():
    return nginx_parse((DEPLOY / "nginx.conf").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def manifests():
    """Every document of every file in deploy/k8s, as (file name, document)."""
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            assert isinstance(document, dict) and document.get("kind"), (path.name, document)
            found.append((path.name, document))
    return found


def kind(manifests, kind_name: str, name: str | None = None) -> dict:
    found = [doc for _file, doc in manifests
             if doc["kind"] == kind_name and (name is None or doc.get("metadata", {}).get("name") == name)]
    assert len(found) == 1, (kind_name, name, len(found))
    return found[0]


def deployment_container(deployment: dict) -> dict:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def app_services(compose) -> dict:
    """The compose services that run the Yishitang image."""
    image = compose["services"]["api1"]["image"]
    return {name: svc for name, svc in compose["services"].items() if svc.get("image") == image}


# ---------------------------------------------------------------------------------------------
# Settings and environment variable names.


def test_extra_variables_are_read_where_they_are_claimed():
    for var, reader in EXTRA_VARS.items():
        source = (ROOT / reader).read_text(encoding="utf-8")
        assert var in source, (var, reader)
        assert var not in SETTING_VARS, f"{var} is a setting now: drop it from EXTRA_VARS"


def test_sample_env_names_every_setting_and_nothing_unknown():
    sample = env_file(DEPLOY / "yishitang.env.example")
    missing = (SETTING_VARS | TEMPLATE_VARS) - sample.keys()
    assert not missing, f"add to deploy/yishitang.env.example: {sorted(missing)}"
    unknown = sample.keys() - APP_VARS
    assert not unknown, f"not settings of yishitang/config.py: {sorted(unknown)}"
    # The commented process settings name the gunicorn variables too.
    text = (DEPLOY / "yishitang.env.example").read_text(encoding="utf-8")
    for var in ("WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_TIMEOUT"):
        assert f"# {var}=" in text, var


def test_sample_env_values_are_valid_and_are_the_defaults():
    """The sample's values parse, and equal the defaults in config.py (but the example URI)."""
    sample = env_file(DEPLOY / "yishitang.env.example")
    key = "k" * 32
    from_sample = Settings.from_env(env={**sample, "JWT_SECRET": key})
    defaults = Settings.from_env(env={"JWT_SECRET": key})
    for name, (var, _kind, _doc) in SETTINGS.items():
        if var == "MONGODB_URI":
            assert parse_uri(sample[var])["options"]["replicaSet"] == "rs0"
            continue
        assert getattr(from_sample, name) == getattr(defaults, name), (var, sample[var])


def test_the_sample_env_refuses_to_start_until_the_secret_is_set():
    sample = env_file(DEPLOY / "yishitang.env.example")
    assert sample["JWT_SECRET"] == "" and sample["YISHITANG_DEMO"] == "0"
    with pytest.raises(ConfigError):
        Settings.from_env(env=sample)


# ---------------------------------------------------------------------------------------------
# gunicorn.conf.py


def test_gunicorn_conf_defaults(monkeypatch):
    conf = gunicorn_conf(monkeypatch=monkeypatch)
    assert conf["bind"] == f"0.0.0.0:{PORT}"
    assert conf["workers"] == conf["cpu_count"]() * 2 + 1
    assert 1 <= conf["cpu_count"]() <= multiprocessing.cpu_count()
    assert conf["preload_app"] is False  # one MongoDB client per worker, opened after the fork
    assert conf["accesslog"] == "-" and conf["errorlog"] == "-"
    assert conf["loglevel"] == "info"
    assert 0 < conf["graceful_timeout"] <= conf["timeout"]
    assert "x-forwarded-for" in conf["access_log_format"]
    assert conf["control_socket_disable"] is True


def test_gunicorn_conf_reads_its_environment(monkeypatch):
    conf = gunicorn_conf({"PORT": "9123", "WEB_CONCURRENCY": "5", "GUNICORN_THREADS": "4",
                          "GUNICORN_TIMEOUT": "90", "LOG_LEVEL": "WARNING"}, monkeypatch=monkeypatch)
    assert (conf["bind"], conf["workers"], conf["threads"], conf["timeout"], conf["loglevel"]) == \
        ("0.0.0.0:9123", 5, 4, 90, "warning")


def test_gunicorn_worker_count_follows_the_cgroup_cpu_limit(monkeypatch, tmp_path):
    conf = gunicorn_conf(monkeypatch=monkeypatch)
    cpu_count, host = conf["cpu_count"], conf["cpu_count"](str(tmp_path / "none"))
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("50000 100000\n")  # half a CPU: one
    assert cpu_count(str(v2)) == 1
    (v2 / "cpu.max").write_text("max 100000\n")  # unlimited
    assert cpu_count(str(v2)) == host
    (v2 / "cpu.max").write_text(f"{(host + 7) * 100000} 100000\n")  # more than there is
    assert cpu_count(str(v2)) == host
    v1 = tmp_path / "v1" / "cpu,cpuacct"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("100000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert cpu_count(str(tmp_path / "v1")) == 1
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")
    assert cpu_count(str(tmp_path / "v1")) == host


# ---------------------------------------------------------------------------------------------
# Dockerfile and .dockerignore


def test_dockerfile(dockerfile):
    keywords = [keyword for keyword, _ in dockerfile]
    stages = [rest for keyword, rest in dockerfile if keyword == "FROM"]
    assert stages and all(stage.split()[0] == "python:3.11-slim" for stage in stages), stages
    final = len(keywords) - 1 - keywords[::-1].index("FROM")
    runtime = dockerfile[final:]
    assert [rest for keyword, rest in runtime if keyword == "EXPOSE"] == [str(PORT)]
    env = " ".join(rest for keyword, rest in runtime if keyword == "ENV")
    assert f"PORT={PORT}" in env.split()

    users = [rest for keyword, rest in runtime if keyword == "USER"]
    assert len(users) == 1 and users[0].split(":")[0] not in ("root", "0"), users
    user_at = next(i for i, (keyword, _) in enumerate(runtime) if keyword == "USER")
    assert all(keyword not in ("RUN", "COPY", "ADD") for keyword, _ in runtime[user_at + 1:]), \
        "everything installed before dropping root"

    (cmd,) = [json.loads(rest) for keyword, rest in runtime if keyword == "CMD"]
    assert cmd[0] == "gunicorn" and cmd[-1] == "wsgi:app"
    config = cmd[cmd.index("--config") + 1]
    assert config == "/app/gunicorn.conf.py"

    (healthcheck,) = [rest for keyword, rest in runtime if keyword == "HEALTHCHECK"]
    check = json.loads(healthcheck[healthcheck.index("CMD") + 3:].strip())
    assert check == ["python", "/app/healthcheck.py", "/healthz"]

    # The runtime dependencies only: no embedded database, no test tools.
    installs = [rest for keyword, rest in dockerfile if keyword == "RUN" and "pip install" in rest]
    assert any(re.search(r"pip install \.(\s|$)", rest) for rest in installs), installs
    assert not any("embedded" in rest or "[dev]" in rest for rest in installs)


def test_dockerfile_copies_what_exists_and_what_dockerignore_lets_through(dockerfile):
    ignore = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
              if line.strip() and not line.startswith("#")]

    def ignored(path: str) -> bool:
        result = False
        for pattern in ignore:
            negate = pattern.startswith("!")
            pattern = pattern.lstrip("!").rstrip("/")
            parts = path.split("/")
            prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
            if any(fnmatch.fnmatch(prefix, pattern) or fnmatch.fnmatch(prefix, pattern.replace("**/", ""))
                   for prefix in prefixes):
                result = not negate
        return result

    copied = {}
    for keyword, rest in dockerfile:
        if keyword == "COPY" and not rest.startswith("--from"):
            *sources, target = rest.split()
            for source in sources:
                assert (ROOT / source).exists(), source
                assert not ignored(source), f".dockerignore hides {source}"
                copied[source] = target
    for needed in ("pyproject.toml", "README.md", "yishitang", "wsgi.py",
                   "deploy/gunicorn.conf.py", "deploy/healthcheck.py"):
        assert needed in copied, needed
    for secret in ("deploy/yishitang.env", "deploy/backups/x.archive.gz", ".git/config", ".venv/bin/python"):
        assert ignored(secret), f".dockerignore lets {secret} into the build context"


# ---------------------------------------------------------------------------------------------
# docker-compose.yml


def test_compose_services_and_health_checks(compose):
    services = compose["services"]
    assert set(services) == {"mongo1", "mongo2", "mongo3", "mongo-init", "api1", "api2", "scheduler",
                             "nginx", "backup"}
    for name in ("mongo1", "mongo2", "mongo3", "api1", "api2", "scheduler", "nginx"):
        health = services[name]["healthcheck"]
        assert health["test"][0] == "CMD" and not health.get("disable"), name
        assert services[name]["restart"] == "unless-stopped", name
    assert services["mongo-init"]["restart"] == "no" and "healthcheck" not in services["mongo-init"]
    assert services["backup"]["profiles"] == ["backup"]  # not started by `up`
    assert set(compose["volumes"]) == {"mongo1-data", "mongo2-data", "mongo3-data"}
    assert compose["networks"]["db"]["internal"] is True


def test_compose_replica_set(compose):
    services = compose["services"]
    nodes = []
    for name in ("mongo1", "mongo2", "mongo3"):
        svc = services[name]
        assert svc["image"] == "mongo:7"
        command = svc["command"]
        assert command[0] == "mongod" and command[command.index("--replSet") + 1] == "rs0"
        assert "--bind_ip_all" in command
        assert svc["volumes"] == [f"{name}-data:/data/db"]
        assert "ports" not in svc  # only the app reaches the database
        nodes.append((name, 27017))

    init = services["mongo-init"]
    assert init["image"] == "mongo:7"
    assert init["depends_on"] == {name: {"condition": "service_healthy"} for name, _ in nodes}
    host_path, container_path = init["volumes"][0].split(":")[:2]
    assert container_path in init["command"]
    script = (DEPLOY / host_path).read_text(encoding="utf-8")
    assert script.count("{") == script.count("}") and script.count("(") == script.count(")")
    assert 'codeName !== "NotYetInitialized"' in script and "rs.initiate(config)" in script
    assert '_id: "rs0"' in script and 'stateStr === "PRIMARY"' in script and "quit(1)" in script
    assert re.findall(r'host: "([\w-]+):(\d+)"', script) == [(name, str(port)) for name, port in nodes]

    parsed = parse_uri(REPLICA_SET_URI)
    assert parsed["nodelist"] == nodes
    assert parsed["options"]["replicaSet"] == "rs0" and parsed["database"] == "yishitang"


def test_compose_app_containers(compose):
    services = compose["services"]
    apps = app_services(compose)
    assert set(apps) == {"api1", "api2", "scheduler"}
    for name, svc in apps.items():
        assert svc["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert (DEPLOY / svc["build"]["context"] / svc["build"]["dockerfile"]).is_file()
        assert svc["env_file"] == "yishitang.env"
        assert svc["environment"]["MONGODB_URI"] == REPLICA_SET_URI
        # Behind exactly one proxy (nginx): the API believes one X-Forwarded-For hop.
        assert svc["environment"].get("PROXY_COUNT") == ("1" if name.startswith("api") else None)
        assert svc["depends_on"] == {"mongo-init": {"condition": "service_completed_successfully"}}
        assert svc["read_only"] is True and "/tmp" in svc["tmpfs"]
        assert set(svc["networks"]) == {"db", "edge"}
    for name in ("api1", "api2"):
        assert services[name]["healthcheck"]["test"] == ["CMD", "python", "/app/healthcheck.py", "/readyz"]
        assert services[name]["expose"] == [str(PORT)]
        assert "command" not in services[name]  # the image's CMD: gunicorn
    scheduler = services["scheduler"]
    assert scheduler["command"] == ["yishitang", "scheduler"]
    assert scheduler["healthcheck"]["test"][:4] == ["CMD", "python", "/app/healthcheck.py", "scheduler"]
    # gunicorn's graceful shutdown fits in the time compose waits before SIGKILL.
    graceful = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))["graceful_timeout"]
    assert all(seconds(services[name]["stop_grace_period"]) > graceful for name in ("api1", "api2"))


def test_compose_environment_names_are_settings(compose):
    for name, svc in compose["services"].items():
        environment = svc.get("environment", {})
        assert isinstance(environment, dict), name
        unknown = set(environment) - APP_VARS
        assert not unknown, (name, sorted(unknown))
    backup = compose["services"]["backup"]["environment"]
    assert backup["MONGODB_URI"] == REPLICA_SET_URI
    assert set(backup) == {"MONGODB_URI", "BACKUP_DIR", "BACKUP_KEEP_DAYS"}


def test_compose_files_and_variables_exist(compose):
    text = (DEPLOY / "docker-compose.yml").read_text(encoding="utf-8")
    variables = set(re.findall(r"\$\{(\w+)", text))
    assert variables == COMPOSE_VARIABLES, variables
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for variable in variables:
        assert f"`{variable}`" in readme, variable
    for name, svc in compose["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./") and source != "./backups":
                assert (DEPLOY / source).is_file(), (name, source)
    assert (DEPLOY / "yishitang.env.example").is_file()
    assert "yishitang.env" in (DEPLOY / ".gitignore").read_text().split()


# ---------------------------------------------------------------------------------------------
# nginx.conf


def test_nginx_conf(nginx, compose, app):
    (http,) = [children for name, _args, children in nginx if name == "http"]
    upstreams = nginx_find(http, "upstream")
    assert len(upstreams) == 1
    upstream_name, upstream = upstreams[0][1][0], upstreams[0][2]
    servers = [args[0] for name, args, _ in upstream if name == "server"]
    assert servers == [f"{name}:{PORT}" for name in ("api1", "api2")]
    assert {server.split(":")[0] for server in servers} <= set(compose["services"])

    server = nginx_one(http, "server")[2]
    listen = nginx_one(server, "listen")[1]
    assert listen == ["80"]
    nginx_ports = compose["services"]["nginx"]["ports"]
    assert [port.split(":")[-1] for port in nginx_ports] == ["80"]
    assert compose["services"]["nginx"]["volumes"] == ["./nginx.conf:/etc/nginx/nginx.conf:ro"]
    assert compose["services"]["nginx"]["depends_on"] == {
        "api1": {"condition": "service_healthy"}, "api2": {"condition": "service_healthy"}}

    # Uploads: nginx lets through whatever the app accepts, so the app answers 413 itself.
    body = size_bytes(nginx_one(server, "client_max_body_size")[1][0])
    assert body == 11 * 1024**2 and body >= app.config["MAX_CONTENT_LENGTH"]

    headers = {args[0].lower(): args[1] for name, args, _ in server if name == "proxy_set_header"}
    assert headers["host"] == "$host"
    assert headers["x-forwarded-for"] == "$proxy_add_x_forwarded_for"
    assert headers["x-forwarded-proto"] == "$scheme"
    assert headers["x-real-ip"] == "$remote_addr"
    added = {args[0].lower() for name, args, _ in server if name == "add_header"}
    assert {"x-content-type-options", "x-frame-options", "referrer-policy",
            "strict-transport-security"} <= added
    assert nginx_one(http, "gzip")[1] == ["on"]
    assert "application/json" in nginx_one(http, "gzip_types")[1]
    read_timeout = seconds(nginx_one(server, "proxy_read_timeout")[1][0])
    assert read_timeout >= runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))["timeout"]

    locations = {tuple(args): children for name, args, children in server if name == "location"}
    for path in ("/healthz", "/readyz"):
        passthrough = locations[("=", path)]
        assert nginx_one(passthrough, "proxy_pass")[1] == [f"http://{upstream_name}"]
    assert nginx_one(locations[("/",)], "proxy_pass")[1] == [f"http://{upstream_name}"]


def test_nginx_parser_catches_broken_files():
    with pytest.raises(AssertionError):
        nginx_parse("http { server { listen 80; }")
    with pytest.raises(AssertionError):
        nginx_parse("http { listen 80 }")
    assert nginx_parse("a 'b c'; d { e; }") == [["a", ["b c"], None], ["d", [], [["e", [], None]]]]


# ---------------------------------------------------------------------------------------------
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

    user = next(rest for keyword, rest in dockerfile if keyword == "USER").split(":")[0]
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


# ---------------------------------------------------------------------------------------------
# backup.sh and restore.sh, without the MongoDB tools: bad arguments, then stand-ins.

SCRIPTS = ("backup.sh", "restore.sh")
SYSTEM_PATH = "/usr/bin:/bin"
BASH = shutil.which("bash") or "/bin/bash"


def run_script(script, *args, env=None, path=SYSTEM_PATH):
    base = {"PATH": path, "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}
    return subprocess.run([BASH, str(DEPLOY / script), *args], capture_output=True, text=True,
                          timeout=30, env={**base, **(env or {})})


def fake_tool(bin_dir: Path, name: str, body: str) -> Path:
    """A stand-in for a MongoDB tool: records its arguments, one per line, then runs `body`."""
    bin_dir.mkdir(exist_ok=True)
    record = bin_dir / f"{name}.args"
    tool = bin_dir / name
    tool.write_text(f"#!/bin/bash\nprintf '%s\\n' \"$@\" > {shlex.quote(str(record))}\n{body}\n")
    tool.chmod(0o755)
    return record


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_are_valid_bash_in_strict_mode(script):
    text = (DEPLOY / script).read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert os.access(DEPLOY / script, os.X_OK)
    result = subprocess.run([BASH, "-n", str(DEPLOY / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("script, args, env, message", [
    ("backup.sh", ["--bogus"], {"MONGODB_URI": "mongodb://x/"}, "unknown argument"),
    ("backup.sh", ["extra"], {"MONGODB_URI": "mongodb://x/"}, "unknown argument"),
    ("backup.sh", ["-k", "0"], {"MONGODB_URI": "mongodb://x/"}, "at least 1"),
    ("backup.sh", ["-k", "two"], {"MONGODB_URI": "mongodb://x/"}, "whole number"),
    ("backup.sh", ["-d"], {"MONGODB_URI": "mongodb://x/"}, "needs a value"),
    ("backup.sh", [], {}, "MONGODB_URI is not set"),
    ("restore.sh", [], {"MONGODB_URI": "mongodb://x/"}, "no ARCHIVE"),
    ("restore.sh", ["{archive}"], {"MONGODB_URI": "mongodb://x/"}, "refusing to restore"),
    ("restore.sh", ["--yes-drop-existing"], {"MONGODB_URI": "mongodb://x/"}, "no ARCHIVE"),
    ("restore.sh", ["--yes-drop-existing", "{archive}"], {}, "no target"),
    ("restore.sh", ["--yes-drop-existing", "/nonexistent.gz"], {"MONGODB_URI": "mongodb://x/"}, "cannot read"),
    ("restore.sh", ["--yes-drop-existing", "{archive}", "{archive}"], {"MONGODB_URI": "mongodb://x/"}, "one archive"),
    ("restore.sh", ["--force", "{archive}"], {"MONGODB_URI": "mongodb://x/"}, "unknown option"),
])
def test_scripts_print_usage_and_fail_on_bad_arguments(tmp_path, script, args, env, message):
    archive = tmp_path / "yishitang-20260101T000000Z.archive.gz"
    archive.write_bytes(b"archive")
    bin_dir = tmp_path / "bin"
    record = fake_tool(bin_dir, "mongorestore" if script == "restore.sh" else "mongodump", "exit 0")
    args = [arg.replace("{archive}", str(archive)) for arg in args]
    result = run_script(script, *args, env={"BACKUP_DIR": str(tmp_path / "out"), **env},
                        path=f"{bin_dir}:{SYSTEM_PATH}")
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert message in result.stderr
    assert f"usage: {script}" in result.stderr
    assert not record.exists(), "the tool ran despite bad arguments"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_help(script):
    result = run_script(script, "--help")
    assert result.returncode == 0 and f"usage: {script}" in result.stderr


def test_scripts_say_when_the_tool_is_missing(tmp_path):
    archive = tmp_path / "a.archive.gz"
    archive.write_bytes(b"archive")
    empty = tmp_path / "empty"
    empty.mkdir()
    backup = run_script("backup.sh", "-d", str(tmp_path / "out"), env={"MONGODB_URI": "mongodb://x/"},
                        path=str(empty))
    assert backup.returncode == 127 and "mongodump not found" in backup.stderr
    restore = run_script("restore.sh", "--yes-drop-existing", str(archive), env={"MONGODB_URI": "mongodb://x/"},
                         path=str(empty))
    assert restore.returncode == 127 and "mongorestore not found" in restore.stderr


def test_backup_writes_a_timestamped_archive_and_keeps_n_days(tmp_path):
    bin_dir, out = tmp_path / "bin", tmp_path / "backups"
    # The stand-in writes what --archive=FILE names, as mongodump does.
    record = fake_tool(bin_dir, "mongodump", 'for a; do case "$a" in --archive=*) echo dump > "${a#--archive=}";; esac; done')
    out.mkdir()
    now = time.time()
    ages = {"yishitang-20250101T000000Z.archive.gz": 8, "yishitang-20250105T000000Z.archive.gz": 6.5,
            "notes.txt": 30, "other-20250101T000000Z.archive.gz": 30}
    for name, days in ages.items():
        (out / name).write_text("old")
        os.utime(out / name, (now - days * 86400, now - days * 86400))

    uri = "mongodb://mongo1:27017,mongo2:27017/yishitang?replicaSet=rs0"
    result = run_script("backup.sh", "-d", str(out), "-k", "7", "--", "--readPreference=secondaryPreferred",
                        env={"MONGODB_URI": uri}, path=f"{bin_dir}:{SYSTEM_PATH}")
    assert result.returncode == 0, result.stderr
    written = Path(result.stdout.strip().splitlines()[-1])
    assert re.fullmatch(r"yishitang-\d{8}T\d{6}Z\.archive\.gz", written.name), written
    assert written.read_text() == "dump\n"
    args = record.read_text().splitlines()
    assert args == ["--uri", uri, f"--archive={written}.partial", "--gzip", "--readPreference=secondaryPreferred"]
    remaining = {path.name for path in out.iterdir()}
    assert remaining == {written.name, "yishitang-20250105T000000Z.archive.gz", "notes.txt",
                         "other-20250101T000000Z.archive.gz"}
    assert "deleted old" in result.stderr and "yishitang-20250101T000000Z" in result.stderr

    # BACKUP_DIR and BACKUP_KEEP_DAYS from the environment, as the compose service sets them.
    again = run_script("backup.sh", env={"MONGODB_URI": uri, "BACKUP_DIR": str(out), "BACKUP_KEEP_DAYS": "1"},
                       path=f"{bin_dir}:{SYSTEM_PATH}")
    assert again.returncode == 0, again.stderr
    assert "yishitang-20250105T000000Z.archive.gz" not in {path.name for path in out.iterdir()}


def test_a_failed_backup_leaves_nothing_and_deletes_nothing(tmp_path):
    bin_dir, out = tmp_path / "bin", tmp_path / "backups"
    fake_tool(bin_dir, "mongodump", 'for a; do case "$a" in --archive=*) echo half > "${a#--archive=}";; esac; done; exit 1')
    out.mkdir()
    old = out / "yishitang-20240101T000000Z.archive.gz"
    old.write_text("old")
    os.utime(old, (time.time() - 100 * 86400,) * 2)
    result = run_script("backup.sh", "-d", str(out), "-k", "1", env={"MONGODB_URI": "mongodb://x/yishitang"},
                        path=f"{bin_dir}:{SYSTEM_PATH}")
    assert result.returncode != 0
    assert [path.name for path in out.iterdir()] == [old.name], "no partial archive, the old one kept"


def test_restore_runs_mongorestore_with_drop(tmp_path):
    bin_dir = tmp_path / "bin"
    record = fake_tool(bin_dir, "mongorestore", "exit 0")
    archive = tmp_path / "yishitang-20260101T000000Z.archive.gz"
    archive.write_bytes(b"archive")
    result = run_script("restore.sh", "--yes-drop-existing", str(archive),
                        env={"MONGODB_URI": "mongodb://db/yishitang?replicaSet=rs0"},
                        path=f"{bin_dir}:{SYSTEM_PATH}")
    assert result.returncode == 0, result.stderr
    assert record.read_text().splitlines() == ["--uri", "mongodb://db/yishitang?replicaSet=rs0", "--drop",
                                               f"--archive={archive}", "--gzip"]

    # The drill: another target, renamed namespaces.
    drill = run_script("restore.sh", "--uri", "mongodb://scratch/?replicaSet=rs0", "--yes-drop-existing",
                       str(archive), "--", "--nsInclude", "yishitang.*", "--nsFrom", "yishitang.*",
                       "--nsTo", "yishitang_drill.*", env={}, path=f"{bin_dir}:{SYSTEM_PATH}")
    assert drill.returncode == 0, drill.stderr
    assert record.read_text().splitlines() == [
        "--uri", "mongodb://scratch/?replicaSet=rs0", "--drop", f"--archive={archive}", "--gzip",
        "--nsInclude", "yishitang.*", "--nsFrom", "yishitang.*", "--nsTo", "yishitang_drill.*"]

    failing = fake_tool(bin_dir, "mongorestore", "exit 3")
    broken = run_script("restore.sh", "--yes-drop-existing", str(archive), env={"MONGODB_URI": "mongodb://db/"},
                        path=f"{bin_dir}:{SYSTEM_PATH}")
    assert broken.returncode == 3 and failing.exists()


def test_readme_has_the_restore_drill():
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    drill = readme[readme.index("## Backup and restore"):]
    for step in ("Take a backup", "scratch database", "--nsFrom", "--nsTo", "mongosh", "countDocuments",
                 "Switch over", "--yes-drop-existing"):
        assert step in drill, step
    top = (ROOT / "README.md").read_text(encoding="utf-8")
    sections = re.findall(r"^## (.+)$", top, flags=re.M)
    at = sections.index("Running against a real MongoDB")
    assert sections[at + 1] == "Deploying to production"
    assert "deploy/README.md" in top[top.index("## Deploying to production"):]


# ---------------------------------------------------------------------------------------------
# What runs here: the production entrypoint, the health checks, the scheduler's check.


@pytest.fixture
def production_env(settings, fake_wechat):
    """The environment of a production container: no test or demo mode, a real secret."""
    env = {key: value for key, value in os.environ.items()
           if key not in APP_VARS and not key.startswith("WECHAT_TEMPLATE_")}
    env.update({
        "MONGODB_URI": settings.mongodb_uri,
        "MONGODB_DB": f"{settings.mongodb_db}_deploy",
        "JWT_SECRET": secrets.token_urlsafe(48),
        "WECHAT_APPID": fake_wechat.appid,
        "WECHAT_SECRET": fake_wechat.secret,
        "WECHAT_API_BASE": fake_wechat.url,
        "YISHITANG_DEMO": "0",
        "YISHITANG_TESTING": "0",
        "LOG_LEVEL": "INFO",
        # deploy/healthcheck.py imports yishitang as the image has it installed.
        "PYTHONPATH": str(ROOT),
    })
    yield env
    from pymongo import MongoClient

    with MongoClient(settings.mongodb_uri) as client:
        client.drop_database(env["MONGODB_DB"])


def start(command, env, log_path):
    log = open(log_path, "w")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    process.log_file = log
    return process


def stop(process, timeout=30) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    process.log_file.close()
    return process.returncode


def healthcheck(*args, env):
    return subprocess.run([sys.executable, str(DEPLOY / "healthcheck.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def wait_until(condition, process, log_path, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"exited early ({process.returncode}):\n{Path(log_path).read_text()}")
        if condition():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out:\n{Path(log_path).read_text()}")


def answers(url) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_gunicorn_serves_the_app_with_the_production_config(production_env, tmp_path):
    port = free_port()
    # As the compose API containers run: one proxy in front (PROXY_COUNT=1).
    env = {**production_env, "PORT": str(port), "WEB_CONCURRENCY": "1", "PROXY_COUNT": "1",
           "RATE_LIMIT_LOGIN": "2/86400"}
    log_path = tmp_path / "gunicorn.log"
    command = [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "wsgi:app"]
    process = start(command, env, log_path)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(f"{base}/healthz"), process, log_path)
        assert requests.get(f"{base}/healthz", timeout=5).json() == {"status": "ok"}
        ready = requests.get(f"{base}/readyz", timeout=5, headers={"X-Forwarded-For": "203.0.113.7"})
        assert ready.status_code == 200 and ready.json() == {"status": "ok", "database": True}
        # The container health checks, as compose and the image run them.
        assert healthcheck("/readyz", env=env).returncode == 0
        assert healthcheck(env=env).returncode == 0
        missing = healthcheck("/no-such-page", env=env)
        assert missing.returncode == 1 and "404" in missing.stderr
        assert healthcheck("readyz", env=env).returncode == 2  # usage
        # The app is the production one: a password login reaches the database and says no; the
        # login rate limit counts the client that nginx names in X-Forwarded-For, not nginx.
        def login(client_ip):
            return requests.post(f"{base}/api/v1/auth/password-login", timeout=5,
                                 headers={"X-Forwarded-For": f"198.51.100.99, {client_ip}"},
                                 json={"username": "nobody", "password": "x" * 12}).status_code

        assert [login("203.0.113.7") for _ in range(3)] == [401, 401, 429]
        assert login("203.0.113.8") == 401
    finally:
        code = stop(process)
    log = log_path.read_text()
    assert code == 0, log  # graceful shutdown on SIGTERM
    assert f"Listening at: http://0.0.0.0:{port}" in log
    assert log.count("Booting worker with pid") == 1, log  # WEB_CONCURRENCY=1
    # The access log: the forwarded-for header, then the client address the app settled on.
    assert re.search(r'^203\.0\.113\.7 203\.0\.113\.7 "GET /readyz HTTP/1\.1" 200 ', log, flags=re.M), log
    assert "Control socket" not in log
    assert "Shutting down: Master" in log
    assert healthcheck(env=env).returncode == 1  # nothing listens any more


def test_gunicorn_refuses_to_start_with_the_placeholder_secret(production_env, manifests, tmp_path):
    placeholder = kind(manifests, "Secret")["stringData"]["JWT_SECRET"]
    env = {**production_env, "PORT": str(free_port()), "WEB_CONCURRENCY": "1", "JWT_SECRET": placeholder}
    log_path = tmp_path / "gunicorn.log"
    process = start([sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "wsgi:app"], env, log_path)
    try:
        process.wait(60)
    finally:
        stop(process)
    assert process.returncode != 0
    assert "JWT_SECRET must be at least 32 characters" in log_path.read_text()


def test_scheduler_health_check(production_env, tmp_path):
    from pymongo import MongoClient

    env = production_env
    with MongoClient(env["MONGODB_URI"]) as client:
        runs = client[env["MONGODB_DB"]]["job_runs"]
        runs.delete_many({})
        def unhealthy(result):
            return result.returncode == 1 and "no job run by" in result.stderr

        assert unhealthy(healthcheck("scheduler", "60", env=env))  # nothing ran
        now = dt.datetime.now(dt.timezone.utc)
        runs.insert_one({"_id": "send_outbox:1", "holder": "another-host:1", "started_at": now})
        assert unhealthy(healthcheck("scheduler", "60", env=env))  # another pod's run
        runs.insert_one({"_id": "send_outbox:2", "holder": f"{socket.gethostname()}:1",
                         "started_at": now - dt.timedelta(minutes=5)})
        assert unhealthy(healthcheck("scheduler", "60", env=env))  # too long ago
        runs.update_one({"_id": "send_outbox:1"}, {"$push": {"skipped_by": f"{socket.gethostname()}:7"}})
        assert healthcheck("scheduler", "60", env=env).returncode == 0  # found the slot taken: alive
        runs.delete_many({})
        assert healthcheck("scheduler", "x", env=env).returncode == 2  # usage
        down = healthcheck("scheduler", env={**env, "MONGODB_URI": f"mongodb://127.0.0.1:{free_port()}/",
                                             "MONGODB_TIMEOUT_MS": "300"})
        assert down.returncode == 1 and "job_runs:" in down.stderr, down.stderr  # database unreachable

        # The real thing: `yishitang scheduler`, as the scheduler container runs it.
        log_path = tmp_path / "scheduler.log"
        process = start([sys.executable, "-m", "yishitang.cli", "scheduler"], env, log_path)
        try:
            wait_until(lambda: healthcheck("scheduler", "60", env=env).returncode == 0, process, log_path,
                       timeout=60)
        finally:
            code = stop(process)
        assert code == 0, log_path.read_text()
        assert runs.count_documents({"holder": re.compile("^" + re.escape(socket.gethostname()) + ":")}) >= 1
