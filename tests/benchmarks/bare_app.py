"""The baseline: bare Flask + pymongo handlers doing the same database work as Yishitang's hot routes.

Same token check (decode the JWT, read the user), same queries on the same indexes, same writes
(the issue rate-limit counter included);
no flask-smorest, marshmallow, mongoengine, role shaping or error mapping. `run.py` serves this
under gunicorn beside the real app and compares the two.
"""

from __future__ import annotations

import datetime as dt
import os
from zoneinfo import ZoneInfo

import jwt
import pymongo
import requests
from bson import ObjectId
from flask import Flask, abort, jsonify, request

client = pymongo.MongoClient(os.environ["MONGODB_URI"], tz_aware=True)
db = client[os.environ.get("MONGODB_DB", "yishitang")]
SECRET = os.environ["JWT_SECRET"]
NEWEST = [("created_at", -1), ("_id", -1)]
TZ = ZoneInfo("Asia/Shanghai")
WECHAT = os.environ["WECHAT_API_BASE"]
app = Flask(__name__)
_token = {}
wechat = requests.Session()  # kept alive, as the app's client does


def check_text(content, openid):
    """The same WeChat text check the app makes before storing an issue (one HTTP call)."""
    if "value" not in _token:
        _token["value"] = wechat.post(f"{WECHAT}/cgi-bin/stable_token", json={
            "grant_type": "client_credential", "appid": os.environ["WECHAT_APPID"],
            "secret": os.environ["WECHAT_SECRET"], "force_refresh": False}, timeout=5).json()["access_token"]
    return wechat.post(f"{WECHAT}/wxa/msg_sec_check", params={"access_token": _token["value"]},
                         json={"content": content, "version": 2, "scene": 3, "openid": openid}, timeout=5).json()


def caller():
    claims = jwt.decode(request.headers["Authorization"].split()[1], SECRET, algorithms=["HS256"])
    user = db.users.find_one({"_id": ObjectId(claims["sub"])})
    if user is None or not user.get("active", True):
        abort(401)
    return user


def plain(doc):
    return {k: (str(v) if isinstance(v, ObjectId) else v) for k, v in doc.items() if k not in ("timeline", "search_terms")}


@app.get("/bare/issues")
def queue():
    user = caller()
    page, size = int(request.args.get("page", 1)), int(request.args.get("page_size", 20))
    query = {"studio_id": {"$in": user["studio_ids"]}}
    if "after" in request.args:  # the cursor page: (created_at ms, id) of the last item seen, no count
        at, _, last = request.args["after"].partition(",")
        at = dt.datetime.fromtimestamp(int(at) / 1000, dt.timezone.utc)
        query["$or"] = [{"created_at": {"$lt": at}}, {"created_at": at, "_id": {"$lt": ObjectId(last)}}]
        found = db.issues.find(query, {"timeline": 0, "search_terms": 0}).sort(NEWEST).limit(size + 1)
        return jsonify(items=[plain(i) for i in found][:size])
    # The planner picks the (studio_id, created_at, _id) index, as it does for the app's query.
    total = db.issues.count_documents(query)
    found = db.issues.find(query, {"timeline": 0, "search_terms": 0}).sort(NEWEST).skip((page - 1) * size).limit(size)
    return jsonify(items=[plain(i) for i in found], total=total)


@app.get("/bare/issues/<issue_id>")
def detail(issue_id):
    caller()
    issue = db.issues.find_one({"_id": ObjectId(issue_id)})
    if issue is None:
        abort(404)
    return jsonify(plain(issue) | {"timeline": [{k: str(v) for k, v in e.items()} for e in issue["timeline"]]})


@app.post("/bare/issues")
def create():
    from yishitang.issues.text import index_terms

    user = caller()
    # The per-user issue rate limit: the same counter write and read as the app's.
    window = int(dt.datetime.now(dt.timezone.utc).timestamp()) // 3600 * 3600
    counter = {"_id": f"issues:{user['_id']}:{window}"}
    db.rate_limits.update_one(counter, {"$inc": {"count": 1}}, upsert=True)
    db.rate_limits.find_one(counter)
    body = request.get_json()
    check_text(f"{body['title']}\n{body['description']}", user.get("openid", ""))
    studio = db.studios.find_one({"_id": ObjectId(body["studio_id"])})
    now = dt.datetime.now(dt.timezone.utc)
    seq = db.counters.find_one_and_update({"_id": f"issue-{now.year}"}, {"$inc": {"seq": 1}}, upsert=True,
                                          return_document=pymongo.ReturnDocument.AFTER)["seq"]
    number = f"DW-{now.year}-{seq:06d}"
    doc = {"number": number, "title": body["title"], "description": body["description"], "category": body["category"],
           "studio_id": studio["_id"], "region_code": studio["region_code"], "region_path": studio["region_path"],
           "reporter_id": user["_id"], "status": "submitted", "level": "grassroots", "created_at": now, "updated_at": now,
           "search_terms": index_terms(body["title"], body["description"], number), "on_board": True, "version": 1,
           "timeline": [{"at": now, "action": "submit", "actor": {"id": user["_id"], "role": "resident"}}]}
    with client.start_session() as session:
        session.with_transaction(lambda s: db.issues.insert_one(doc, session=s))
    members = [m["_id"] for m in db.users.find({"studio_ids": studio["_id"], "roles": "member", "active": True}, {"_id": 1})]
    if members:
        db.notifications.insert_many([{"user_id": m, "kind": "issue_new", "title": "工作室收到新议题", "created_at": now,
                                       "delivery": {"state": "pending"}} for m in members])
    return jsonify(plain(doc)), 201


@app.post("/bare/issues/<issue_id>/actions")
def action(issue_id):
    user = caller()
    issue = db.issues.find_one({"_id": ObjectId(issue_id)})
    now = dt.datetime.now(dt.timezone.utc)
    entry = {"at": now, "action": "comment", "actor": {"id": user["_id"], "role": "member"}, "note": request.get_json()["note"]}
    # update_one + find_one, as the app does (SecantusDB 0.7 scans the collection for findAndModify).
    db.issues.update_one({"_id": issue["_id"], "version": issue["version"]},
                         {"$push": {"timeline": entry}, "$inc": {"version": 1}, "$set": {"updated_at": now}})
    updated = db.issues.find_one({"_id": issue["_id"]})
    return jsonify(plain(updated))


@app.get("/bare/stats")
def stats():
    """The rollup reads of the real route (a district by township): its townships' cells over the
    period and the writes since the watermark; the same sums."""
    from yishitang.stats import cells
    from yishitang.stats.periods import periods

    caller()
    region = request.args["region"]
    date_from, date_to = dt.date.fromisoformat(request.args["from"]), dt.date.fromisoformat(request.args["to"])
    now = dt.datetime.now(dt.timezone.utc)
    now_ms = cells.epoch_ms(now)
    state = db.stats_state.find_one({"_id": "rollups"})
    found = {}
    for grain, first, last in periods(date_from, date_to, now.astimezone(TZ).date()):
        query = {"parent_code": region, "grain": grain, "period": {"$gte": first, "$lte": last}}
        found.update((cell["_id"], cell) for cell in db.stats_region_totals.find(query))
    list(db.issues.find({"updated_at": {"$gt": state["watermark"]}}, {"studio_id": 1, "created_at": 1, "region_path": 1}))
    rows = {}
    for cell in found.values():
        cells.add_settled(rows.setdefault(cell["region_code"], cells.new_settled()), cells.settle(cell["total"], now_ms))
    return jsonify(rows=[cells.row(settled) for settled in rows.values()])
