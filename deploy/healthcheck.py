"""Container health checks, with nothing but the image's Python (the slim image has no curl).

    python /app/healthcheck.py [PATH]              # the API: GET http://127.0.0.1:$PORT/PATH -> 200
    python /app/healthcheck.py scheduler [SECONDS] # the scheduler of this container ran recently

API: PATH defaults to /healthz (the process is up); compose checks /readyz (the database answers).

Scheduler: every run of a job claims its slot in `job_runs` with holder `<hostname>:<pid>`, and a
scheduler that finds the slot taken adds itself to `skipped_by` (yishitang/scheduler.py). The
outbox job comes every 5 s, so a scheduler that is alive and reaches the database appears there
within seconds; healthy means it did within SECONDS (default 120). Exit 0 healthy, 1 not.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import sys
import urllib.error
import urllib.request


def check_http(path: str) -> int:
    url = f"http://127.0.0.1:{os.environ.get('PORT') or 8000}/{path.lstrip('/')}"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            ok = response.status == 200
    except (urllib.error.URLError, OSError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1
    return 0 if ok else 1


def check_scheduler(max_age_s: float) -> int:
    from pymongo import MongoClient
    from pymongo.uri_parser import parse_uri

    from yishitang.config import Settings

    settings = Settings.from_env()
    if not settings.mongodb_uri:
        print("MONGODB_URI is not set", file=sys.stderr)
        return 1
    mine = {"$regex": "^" + re.escape(socket.gethostname()) + ":"}
    since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=max_age_s)
    client = MongoClient(settings.mongodb_uri, serverSelectionTimeoutMS=settings.mongodb_timeout_ms)
    try:
        database = client[parse_uri(settings.mongodb_uri)["database"] or settings.mongodb_db]
        found = database["job_runs"].find_one(
            {"started_at": {"$gte": since}, "$or": [{"holder": mine}, {"skipped_by": mine}]},
            projection={"_id": 1},
        )
    except Exception as exc:  # unreachable database, bad credentials: not healthy
        print(f"job_runs: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    if found is None:
        print(f"no job run by {socket.gethostname()} in the last {max_age_s:g} s", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["scheduler"]:
        try:
            max_age = float(argv[1]) if len(argv) > 1 else 120.0
        except ValueError:
            print(__doc__, file=sys.stderr)
            return 2
        return check_scheduler(max_age)
    if len(argv) > 1 or (argv and not argv[0].startswith("/")):
        print(__doc__, file=sys.stderr)
        return 2
    return check_http(argv[0] if argv else "/healthz")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
