"""`make bench`: Yishitang's hot routes against a bare Flask + pymongo baseline, at growing sizes.

Starts the embedded database, the local fake WeChat, the app and the baseline under gunicorn,
loads issues with `yishitang seed-load`, and prints, side by side:
- wall time and the API process's own CPU time per request, app vs bare (the ratio);
- how both grow from the smallest to the largest size;
- throughput, p50/p99 latency at N concurrent clients, and the workers' resident memory.
CPU time is read from /proc for the worker's request thread, so it does not depend on the database's speed.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import jwt
import pymongo
import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from yishitang.devtools.embedded import EmbeddedDatabase, free_port  # noqa: E402
from yishitang.devtools.fakewechat import FakeWeChat  # noqa: E402
from yishitang.stats.rollups import LAG  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
DB_NAME = "bench"


def cpu_seconds(pid: int) -> float:
    """CPU time of the worker's main thread, which serves the requests (a sync worker's); the
    pymongo monitor threads tick on the clock, not per request, so slow answers would charge
    their ticks to the request."""
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


class Server:
    """A gunicorn serving `app_path` with `workers` sync workers on a free port."""

    def __init__(self, app_path, env, workers=1, cwd=ROOT):
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{self.port}", "--timeout", "120",
             "--log-level", "warning", app_path], env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if len(children(self.process.pid)) >= workers:
                try:
                    requests.get(self.base + "/", timeout=2)
                    return
                except requests.RequestException:
                    pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn {app_path} did not start: {self.process.stderr.read()}")

    @property
    def workers(self):
        return children(self.process.pid)

    def stop(self):
        self.process.terminate()
        self.process.wait(30)


def token(secret, user) -> str:
    now = dt.datetime.now(dt.timezone.utc)
    return jwt.encode({"sub": str(user["_id"]), "type": "access", "roles": user["roles"], "tv": user.get("token_version", 0),
                       "fam": "bench", "iat": now, "exp": now + dt.timedelta(hours=6)}, secret, "HS256")


def load(env, issues):
    """Add `issues` issues with `yishitang seed-load`; returns the seconds it took."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "yishitang.cli", "seed-load", "--issues", str(issues)], env=env, check=True,
                   cwd=ROOT)
    return time.monotonic() - started


def refresh_rollups(env):
    """What the scheduler does every few minutes: bring the stats cells up to date (a full build first)."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import datetime as dt; from yishitang import create_app; from yishitang.stats.jobs "
                    "import refresh_rollups; app = create_app();\nwith app.app_context(): print(refresh_rollups("
                    "dt.datetime.now(dt.timezone.utc)))"], env=env, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


REUSE_FROM = 100_000  # smaller sizes load in seconds: always fresh


class Dataset:
    """One embedded database per size under `storage/<size>`; `--reuse` keeps a loaded one of at
    least REUSE_FROM issues (a million take most of an hour to load here), marked by `loaded.json`.
    A reused one also holds the issues and comments earlier runs wrote (a few hundred)."""

    def __init__(self, storage: Path, size: int, reuse: bool):
        self.path, self.size = storage / str(size), size
        marker = self.path / "loaded.json"
        self.reused = (reuse and size >= REUSE_FROM and marker.exists()
                       and json.loads(marker.read_text())["issues"] == size)
        if not self.reused:
            shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True, exist_ok=True)
        self.database = EmbeddedDatabase(str(self.path / "db"), log_path=str(self.path / "secantus.log")).start()

    def prepare(self, env) -> dict:
        seconds = {}
        if not self.reused:
            seconds["load"] = load(env, self.size)
            (self.path / "loaded.json").write_text(json.dumps({"issues": self.size, "seconds": seconds["load"]}))
            # The job's watermark trails its clock by the commit lag: a job run straight after the
            # load would leave the load's last writes for every request to recompute.
            time.sleep(LAG.total_seconds())
        seconds["rollups"] = refresh_rollups(env)
        return seconds


def measure(server, method, path, headers, n, body=None):
    """Median wall ms and mean worker CPU ms per request, over n sequential requests."""
    session = requests.Session()
    worker = server.workers[0]
    for _ in range(max(5, n // 10)):  # warm up: imports, caches, connection pool
        session.request(method, server.base + path(), headers=headers, json=body() if body else None, timeout=60)
    walls, cpu_before = [], cpu_seconds(worker)
    for _ in range(n):
        started = time.perf_counter()
        response = session.request(method, server.base + path(), headers=headers, json=body() if body else None, timeout=60)
        walls.append(time.perf_counter() - started)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path()} -> {response.status_code} {response.text[:300]}")
    cpu = (cpu_seconds(worker) - cpu_before) / n
    return {"wall_ms": statistics.median(walls) * 1000, "cpu_ms": cpu * 1000}


def hot_routes(db, year):
    # A member of a busy studio: the studio of an issue still in progress at the grassroots tier.
    sample = db.issues.find_one({"status": "in_progress", "level": "grassroots"}, {"studio_id": 1})
    member = db.users.find_one({"studio_ids": sample["studio_id"], "roles": "member"})
    resident = db.users.find_one({"openid": "demo-resident-1"})
    admin = db.users.find_one({"username": "admin"})
    studio_id = str(sample["studio_id"])
    issue_ids = [str(i["_id"]) for i in db.issues.find({"studio_id": sample["studio_id"], "status": "in_progress",
                                                          "level": "grassroots"}, {"_id": 1}).limit(100)]
    counter = iter(range(10**9))
    # Details read one half, comments go to the other: a detail's timeline stays as loaded, and
    # the comments of repeated runs spread thin.
    detail_ids = iter(issue_ids[:len(issue_ids) // 2] * 1000)
    action_ids = iter(issue_ids[len(issue_ids) // 2:] * 1000)
    create = {"title": "老旧小区充电车棚", "description": "幸福小区三号楼前电动车无处充电，居民飞线充电有火灾隐患。",
              "category": "community_facilities", "studio_id": studio_id}
    period = {"region": "211104", "from": f"{year}-01-01", "to": f"{year}-12-31"}
    query = "&".join(f"{k}={v}" for k, v in period.items())
    return member, resident, admin, [
        # name, who, method, app path, bare path, body. Stats last: the writes before it leave cells
        # written since the last rollup, which it recomputes, as between two runs of the scheduler.
        ("member queue page", "member", "GET", lambda: "/api/v1/issues?page=1&page_size=20",
         lambda: "/bare/issues?page=1&page_size=20", None),
        ("issue detail", "member", "GET", lambda: f"/api/v1/issues/{next(detail_ids)}",
         lambda: f"/bare/issues/{next(detail_ids)}", None),
        ("create issue", "resident", "POST", lambda: "/api/v1/issues", lambda: "/bare/issues",
         lambda: {**create, "title": f"充电车棚问题{next(counter)}"}),
        ("action (comment)", "member", "POST", lambda: f"/api/v1/issues/{next(action_ids)}/actions",
         lambda: f"/bare/issues/{next(action_ids)}/actions", lambda: {"action": "comment", "note": "已联系物业"}),
        ("stats overview", "admin", "GET", lambda: f"/api/v1/stats/overview?{query}", lambda: f"/bare/stats?{query}", None),
    ]


def concurrency(server, paths, headers, clients, seconds):
    latencies, errors, stop = [], {}, time.monotonic() + seconds
    peak = {}

    def client(n):
        session = requests.Session()
        while time.monotonic() < stop:
            path = paths[n % len(paths)]()
            started = time.perf_counter()
            try:
                status = session.get(server.base + path, headers=headers, timeout=60).status_code
            except requests.RequestException as exc:
                status = type(exc).__name__
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors[status] = errors.get(status, 0) + 1

    def sample():
        while time.monotonic() < stop:
            for pid in server.workers:
                peak[pid] = max(peak.get(pid, 0), rss_mb(pid))
            time.sleep(0.5)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)] + [threading.Thread(target=sample)]
    started = time.monotonic()
    [t.start() for t in threads]
    [t.join() for t in threads]
    elapsed = time.monotonic() - started
    latencies.sort()
    return {"requests": len(latencies), "errors": errors, "rps": len(latencies) / elapsed, "clients": clients,
            "p50_ms": latencies[len(latencies) // 2] * 1000, "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
            "max_worker_rss_mb": max(peak.values()) if peak else 0, "workers": len(peak)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="issue counts to measure at, ascending")
    parser.add_argument("--requests", type=int, default=200, help="sequential requests per route and size")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=20, help="length of the concurrency run")
    parser.add_argument("--storage", default=str(ROOT / "var" / "bench"))
    parser.add_argument("--reuse", action="store_true",
                        help=f"keep a loaded database of at least {REUSE_FROM} issues from an earlier run")
    parser.add_argument("--load-only", action="store_true", help="load the sizes' databases and stop (with --reuse later)")
    parser.add_argument("--output", default=str(ROOT / "var" / "bench" / "results.json"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    storage = Path(args.storage)
    storage.mkdir(parents=True, exist_ok=True)
    fake = FakeWeChat(demo=True).start()
    secret = secrets.token_urlsafe(48)
    base_env = {**os.environ, "MONGODB_DB": DB_NAME, "JWT_SECRET": secret,
                "WECHAT_API_BASE": fake.url, "WECHAT_APPID": fake.appid, "WECHAT_SECRET": fake.secret,
                "RATE_LIMIT_ISSUES": "1000000/3600", "RATE_LIMIT_LOGIN": "1000000/60", "LOG_LEVEL": "WARNING",
                "PYTHONPATH": str(ROOT), "YISHITANG_DEMO": "", "YISHITANG_TESTING": ""}
    results = {"machine": machine(), "sizes": {}, "prepare_seconds": {}}
    try:
        for size in sizes:
            dataset = Dataset(storage, size, args.reuse)
            try:
                env = {**base_env, "MONGODB_URI": dataset.database.uri}
                if args.load_only:
                    if not dataset.reused:
                        print(f"{size}: loaded in {load(env, size):.0f} s", flush=True)
                        (dataset.path / "loaded.json").write_text(json.dumps({"issues": size}))
                    continue
                results["prepare_seconds"][size] = dataset.prepare(env)
                print(f"{size:>8} prepared: {results['prepare_seconds'][size]}", flush=True)
                db = pymongo.MongoClient(dataset.database.uri, tz_aware=True)[DB_NAME]
                results["sizes"][size] = routes_once(env, db, secret, args.requests)
                results.setdefault("metrics_hooks_us", metrics_hooks_us(env))
                results.setdefault("concurrency", {})[size] = under_load(env, db, secret, args.clients, args.seconds)
            finally:
                dataset.database.stop()
    finally:
        fake.stop()
    if args.load_only:
        return
    Path(args.output).write_text(json.dumps(results, indent=2, ensure_ascii=False))
    report(results)


ROUNDS = 3  # each figure measured this many times, app and baseline in turn; the report gives the spread


def routes_once(env, db, secret, requests_per_route) -> dict:
    """Each hot route n times in a row, on the app and then on the bare baseline (one worker each),
    route after route, the whole round ROUNDS times; each figure is the median of its rounds."""
    app = Server("wsgi:app", env)
    bare = Server("tests.benchmarks.bare_app:app", env)
    try:
        member, resident, admin, routes = hot_routes(db, dt.date.today().year)
        headers = {role: {"Authorization": f"Bearer {token(secret, user)}"}
                   for role, user in (("member", member), ("resident", resident), ("admin", admin))}
        routes.insert(2, queue_by_cursor(app, headers["member"]))
        runs: dict = {name: {"app": [], "bare": []} for name, *_ in routes}
        for round_ in range(ROUNDS):
            for name, who, method, app_path, bare_path, body in routes:
                runs[name]["app"].append(measure(app, method, app_path, headers[who], requests_per_route, body))
                runs[name]["bare"].append(measure(bare, method, bare_path, headers[who], requests_per_route, body))
                a, b = runs[name]["app"][-1], runs[name]["bare"][-1]
                print(f"{db.issues.estimated_document_count():>8} round {round_ + 1} {name:<18} app {a['wall_ms']:7.2f} ms "
                      f"{a['cpu_ms']:6.2f} cpu-ms | bare {b['wall_ms']:7.2f} ms {b['cpu_ms']:6.2f} cpu-ms", flush=True)
        return {name: {side: summarise(measured) for side, measured in sides.items()} for name, sides in runs.items()}
    finally:
        app.stop()
        bare.stop()


def queue_by_cursor(server, headers, depth=10):
    """The member's queue as infinite scroll, `depth` pages down: the same cost as the first page,
    whatever the size (the cursor continues on the index; nothing is counted)."""
    cursor = ""
    for _ in range(depth):
        response = requests.get(f"{server.base}/api/v1/issues", params={"cursor": cursor, "page_size": 20},
                                headers=headers, timeout=60)
        cursor = response.headers.get("X-Next-Cursor") or cursor
    text = cursor.partition(".")[0]
    body = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    after = f"{body['k'][0]['t']},{body['k'][1]['o']}"
    return ("member queue cursor", "member", "GET", lambda: f"/api/v1/issues?cursor={cursor}&page_size=20",
            lambda: f"/bare/issues?after={after}&page_size=20", None)
def summarise(rounds: list[dict]) -> dict:
    """The median of the rounds, their spread (min, max) and the rounds themselves."""
    return {**{key: statistics.median(r[key] for r in rounds) for key in ("wall_ms", "cpu_ms")},
            **{f"{key}_spread": [min(r[key] for r in rounds), max(r[key] for r in rounds)] for key in ("wall_ms", "cpu_ms")},
            "rounds": rounds}


HOOKS = """
import time
from flask import Response
from yishitang import create_app, metrics
app, response, best = create_app(), Response(status=200), float("inf")
with app.test_request_context("/api/v1/issues/0123456789abcdef01234567"):
    for _ in range(5):
        started = time.process_time()
        for _ in range(2000):
            metrics._start_timer()
            metrics._record(response)
        best = min(best, (time.process_time() - started) / 2000)
print(best * 1e6)
"""


def metrics_hooks_us(env) -> list[float]:
    """CPU microseconds the two metrics hooks add to every request (best of 5 x 2000), ROUNDS times."""
    return [float(subprocess.run([sys.executable, "-c", HOOKS], env=env, cwd=ROOT, check=True, capture_output=True,
                                 text=True).stdout.split()[-1]) for _ in range(ROUNDS)]


def under_load(env, db, secret, clients, seconds) -> dict:
    """The member's reads from `clients` concurrent clients against gunicorn's production worker count."""
    app = Server("wsgi:app", env, workers=(os.cpu_count() or 1) * 2 + 1)
    try:
        member, _, _, routes = hot_routes(db, dt.date.today().year)
        reads = [route[3] for route in routes if route[0] in ("member queue page", "issue detail")]
        return concurrency(app, reads, {"Authorization": f"Bearer {token(secret, member)}"}, clients, seconds)
    finally:
        app.stop()


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown")
    memory = next(int(line.split()[1]) // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    return {"cpu": model, "cores": os.cpu_count(), "memory_mb": memory, "python": sys.version.split()[0],
            "database": "SecantusDB 0.7.0b3 (embedded, WiredTiger)", "date": dt.date.today().isoformat()}


def report(results):
    sizes = sorted(results["sizes"], key=int)
    small, large = sizes[0], sizes[-1]
    print(f"\nmachine: {results['machine']}")
    print(f"load and rollup time (seconds): {results['prepare_seconds']}")
    print(f"medians of {ROUNDS} rounds, spread (min-max) after them")
    header = (f"{'route':<18} {'size':>8} {'app ms':>17} {'bare ms':>17} {'wall x':>7} {'app cpu':>17} {'bare cpu':>17}"
              f" {'cpu x':>6}")
    print(header)

    def cell(side, key):
        low, high = side.get(f"{key}_spread", [side[key], side[key]])
        return f"{side[key]:7.2f} ({low:.2f}-{high:.2f})"

    for size in sizes:
        for name, row in results["sizes"][size].items():
            a, b = row["app"], row["bare"]
            print(f"{name:<18} {size:>8} {cell(a, 'wall_ms'):>17} {cell(b, 'wall_ms'):>17} {a['wall_ms'] / b['wall_ms']:7.2f} "
                  f"{cell(a, 'cpu_ms'):>17} {cell(b, 'cpu_ms'):>17} {a['cpu_ms'] / max(b['cpu_ms'], 0.01):6.2f}")
    if results.get("metrics_hooks_us"):
        print(f"metrics hooks: {', '.join(f'{us:.1f}' for us in results['metrics_hooks_us'])} µs CPU per request")
    if small != large:
        print(f"\ngrowth {small} -> {large} issues (app wall / app cpu):")
        for name in results["sizes"][large]:
            a0, a1 = results["sizes"][small][name]["app"], results["sizes"][large][name]["app"]
            print(f"  {name:<18} {a1['wall_ms'] / a0['wall_ms']:5.2f}x wall  {a1['cpu_ms'] / max(a0['cpu_ms'], 0.01):5.2f}x cpu")
    for size, c in sorted(results.get("concurrency", {}).items()):
        print(f"\n{size} issues, {c['workers']} workers, {c['clients']} clients: {c['rps']:.1f} req/s, "
              f"p50 {c['p50_ms']:.1f} ms, p99 {c['p99_ms']:.1f} ms, errors {c['errors']}, "
              f"max worker RSS {c['max_worker_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
