"""deploy/: the Dockerfile, .dockerignore, docker-compose.yml and nginx.conf agree with the app."""

from __future__ import annotations

import fnmatch
import json
import re
import runpy

import pytest
from pymongo.uri_parser import parse_uri

from tests.deploy.files import (APP_VARS, COMPOSE_VARIABLES, DEPLOY, PORT, REPLICA_SET_URI, ROOT, app_services,
                                directive, directives, nginx_conf, seconds, size_bytes)


# Dockerfile and .dockerignore


def test_dockerfile(dockerfile):
    instructions = dockerfile.instructions
    keywords = [keyword for keyword, _ in instructions]
    assert dockerfile.images and all(image == "python:3.11-slim" for image in dockerfile.images), dockerfile.images
    final = len(keywords) - 1 - keywords[::-1].index("FROM")
    runtime = instructions[final:]
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
    installs = [rest for keyword, rest in instructions if keyword == "RUN" and "pip install" in rest]
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
    for keyword, rest in dockerfile.instructions:
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


# nginx.conf


def test_nginx_conf(nginx, compose, app):
    http = directive(nginx, "http")["block"]
    (upstream,) = directives(http, "upstream")
    upstream_name = upstream["args"][0]
    servers = [item["args"][0] for item in directives(upstream["block"], "server")]
    assert servers == [f"{name}:{PORT}" for name in ("api1", "api2")]
    assert {server.split(":")[0] for server in servers} <= set(compose["services"])

    server = directive(http, "server")["block"]
    assert directive(server, "listen")["args"] == ["80"]
    nginx_ports = compose["services"]["nginx"]["ports"]
    assert [port.split(":")[-1] for port in nginx_ports] == ["80"]
    assert compose["services"]["nginx"]["volumes"] == ["./nginx.conf:/etc/nginx/nginx.conf:ro"]
    assert compose["services"]["nginx"]["depends_on"] == {
        "api1": {"condition": "service_healthy"}, "api2": {"condition": "service_healthy"}}

    # Uploads: nginx lets through whatever the app accepts, so the app answers 413 itself.
    body = size_bytes(directive(server, "client_max_body_size")["args"][0])
    assert body == 11 * 1024**2 and body >= app.config["MAX_CONTENT_LENGTH"]

    headers = {item["args"][0].lower(): item["args"][1] for item in directives(server, "proxy_set_header")}
    assert headers["host"] == "$host"
    assert headers["x-forwarded-for"] == "$proxy_add_x_forwarded_for"
    assert headers["x-forwarded-proto"] == "$scheme"
    assert headers["x-real-ip"] == "$remote_addr"
    added = {item["args"][0].lower() for item in directives(server, "add_header")}
    assert {"x-content-type-options", "x-frame-options", "referrer-policy",
            "strict-transport-security"} <= added
    assert directive(http, "gzip")["args"] == ["on"]
    assert "application/json" in directive(http, "gzip_types")["args"]
    read_timeout = seconds(directive(server, "proxy_read_timeout")["args"][0])
    assert read_timeout >= runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))["timeout"]

    locations = {tuple(item["args"]): item["block"] for item in directives(server, "location")}
    for path in ("/healthz", "/readyz"):
        assert directive(locations[("=", path)], "proxy_pass")["args"] == [f"http://{upstream_name}"]
    assert directive(locations[("/",)], "proxy_pass")["args"] == [f"http://{upstream_name}"]


@pytest.mark.parametrize("broken", ["http { server { listen 80; }", "http { listen 80 }", "http { listen 80; }"])
def test_a_broken_nginx_conf_is_refused(tmp_path, broken):
    path = tmp_path / "nginx.conf"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(AssertionError):
        nginx_conf(path)
