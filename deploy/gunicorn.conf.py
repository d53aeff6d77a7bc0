"""Gunicorn settings for production: `gunicorn -c deploy/gunicorn.conf.py wsgi:app`.

The image copies this file to /app/gunicorn.conf.py. Besides the app's own settings
(yishitang/config.py), it reads:

  PORT                port to listen on, on all interfaces (default 8000)
  WEB_CONCURRENCY     worker processes (default 2 x CPUs + 1, CPUs capped by the container's limit)
  GUNICORN_THREADS    threads per worker (default 1: sync workers; more switches to gthread)
  GUNICORN_TIMEOUT    seconds a request may take before its worker is restarted (default 60)
  LOG_LEVEL           gunicorn's log level, as for the `yishitang` command (default INFO)
  PROMETHEUS_MULTIPROC_DIR
                      where the workers keep their Prometheus counts, emptied at start
                      (default: a new folder in the temporary directory, removed at exit)

The X-Forwarded-* headers of the proxy in front are the app's business (PROXY_COUNT); gunicorn
keeps its default of trusting none but 127.0.0.1.

Sync workers suit this app behind nginx or an ingress: the proxy buffers slow clients and
uploads, so a worker is only busy while the request is handled. Do not set `preload_app`: each
worker must open its own MongoDB client after the fork (pymongo clients are not fork-safe).
"""

import math
import multiprocessing
import os
import shutil
import tempfile


def cpu_count(cgroup_root: str = "/sys/fs/cgroup") -> int:
    """CPUs this process may use: the machine's, capped by CPU affinity and a cgroup CPU quota.

    In a container `multiprocessing.cpu_count()` is the host's count; a pod limited to one CPU on
    a 64-core node would otherwise start 129 workers.
    """
    count = multiprocessing.cpu_count()
    if hasattr(os, "sched_getaffinity"):
        count = min(count, len(os.sched_getaffinity(0)))
    quota = _cgroup_cpu_quota(cgroup_root)
    if quota is not None:
        count = min(count, max(1, math.ceil(quota)))
    return max(1, count)


def _cgroup_cpu_quota(root: str) -> float | None:
    """CPUs allowed by the cgroup's CFS quota (v2 `cpu.max`, else v1), None when unlimited."""
    try:
        with open(os.path.join(root, "cpu.max")) as fh:
            quota, _, period = fh.read().strip().partition(" ")
        if quota != "max":
            return int(quota) / int(period or 100000)
        return None
    except (OSError, ValueError):
        pass
    for folder in ("cpu", "cpu,cpuacct"):
        try:
            with open(os.path.join(root, folder, "cpu.cfs_quota_us")) as fh:
                quota = int(fh.read())
            with open(os.path.join(root, folder, "cpu.cfs_period_us")) as fh:
                period = int(fh.read())
        except (OSError, ValueError):
            continue
        return quota / period if quota > 0 and period > 0 else None
    return None


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


# Where and how many.
bind = f"0.0.0.0:{_int_env('PORT', 8000)}"
workers = _int_env("WEB_CONCURRENCY", cpu_count() * 2 + 1)
threads = _int_env("GUNICORN_THREADS", 1)
preload_app = False

# Time limits. A stats export over a city's issues may take a while; nginx waits 65 s.
timeout = _int_env("GUNICORN_TIMEOUT", 60)
# On SIGTERM (docker stop, a rolling update) workers finish their requests for up to 30 s;
# compose's stop_grace_period and the pod's terminationGracePeriodSeconds leave room for it.
graceful_timeout = 30
keepalive = 5

# Recycle workers now and then so that a slow leak cannot grow a worker without bound; the
# jitter keeps them from restarting together.
max_requests = 10000
max_requests_jitter = 1000

# Heartbeat files on tmpfs: a read-only root filesystem has no writable /tmp otherwise, and
# disk-backed heartbeats can stall workers.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# Logs to stdout/stderr for the container runtime; the access log names the client behind the
# proxy and the time taken (microseconds).
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
access_log_format = '%({x-forwarded-for}i)s %(h)s "%(r)s" %(s)s %(B)s %(D)sus "%(a)s" %(p)s'
proc_name = "yishitang-api"

# No runtime control socket (gunicorn 25.1+ opens one in $HOME/.gunicorn by default): the
# container is managed from outside, and its root filesystem is read-only.
control_socket_disable = True


# Prometheus (GET /metrics): each worker writes its counts into files in one folder and a scrape of
# any worker adds them all up (prometheus_client's multiprocess mode). The variable is set here,
# in the master before any worker starts and before prometheus_client is imported, so every
# worker inherits it; the folder is emptied so that counts start from zero with the server.
_METRICS_PREFIX = "yishitang-metrics-"


def on_starting(server):
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix=_METRICS_PREFIX)
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.remove(os.path.join(path, name))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path


def child_exit(server, worker):
    """A worker is gone (recycled, timed out, crashed): keep its counts, drop its files."""
    try:
        from yishitang.metrics import mark_process_dead

        mark_process_dead(worker.pid)
    except Exception:  # metrics must never take the master down
        server.log.exception("could not fold the metrics of worker %s", worker.pid)


def on_exit(server):
    """Remove the folder if on_starting made it (a reload re-reads this file, so ask the path)."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if os.path.dirname(path) == tempfile.gettempdir() and os.path.basename(path).startswith(_METRICS_PREFIX):
        shutil.rmtree(path, ignore_errors=True)
