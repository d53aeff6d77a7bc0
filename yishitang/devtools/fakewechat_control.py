"""The fake WeChat's control endpoints under `/__fake__/`, for other processes (the demo, curl).

Tests in the same process call the FakeWeChat helper methods directly; these endpoints do the
same over HTTP.
"""

from __future__ import annotations

from flask import Flask, jsonify, request


def register(app: Flask, fake) -> None:
    """Add POST /__fake__/<name> for each control and GET /__fake__/sent to the fake's app."""
    controls = {"login-code": _login_code, "phone-code": _phone_code, "grant": _grant, "fail": _fail,
                "invalidate-tokens": _invalidate_tokens, "reset": _reset, "deliver-media-checks": _deliver}
    for name, control in controls.items():
        app.add_url_rule(f"/__fake__/{name}", endpoint=f"fake-{name}", methods=["POST"],
                         view_func=lambda control=control: control(fake, _body()))
    app.add_url_rule("/__fake__/sent", endpoint="fake-sent", view_func=lambda: _sent(fake))


def _login_code(fake, body):
    if not body.get("openid"):
        return _error("openid is required")
    return jsonify(code=fake.issue_login_code(body["openid"], body.get("unionid")))


def _phone_code(fake, body):
    if not body.get("phone"):
        return _error("phone is required")
    return jsonify(code=fake.issue_phone_code(body["phone"]))


def _grant(fake, body):
    if not body.get("openid") or not body.get("template_id"):
        return _error("openid and template_id are required")
    fake.grant(body["openid"], body["template_id"], body.get("count", 1))
    return jsonify(ok=True, grants_left=fake.grants_left(body["openid"], body["template_id"]))


def _fail(fake, body):
    errcode = body.get("errcode")
    if not body.get("path") or not (errcode == "timeout" or isinstance(errcode, int)):
        return _error('path and errcode (an integer or "timeout") are required')
    fake.fail_next(body["path"], errcode, body.get("times", 1))
    return jsonify(ok=True)


def _invalidate_tokens(fake, body):
    fake.invalidate_tokens()
    return jsonify(ok=True)


def _reset(fake, body):
    fake.reset()
    return jsonify(ok=True)


def _deliver(fake, body):
    """Push the verdicts of the pending media checks now (the demo pushes each one at once)."""
    return jsonify(pushed=fake.media.deliver())


def _sent(fake):
    with fake._lock:
        return jsonify(sent=list(fake.sent))


def _body() -> dict:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def _error(message: str):
    return jsonify(error=message), 400
