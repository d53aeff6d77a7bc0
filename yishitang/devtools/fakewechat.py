"""A local fake of the WeChat server APIs, over real HTTP, failure modes included.

Tests and the demo point `WECHAT_API_BASE` at it, so the real client is exercised end to end:
single-use codes, token invalidation, one send per subscribe grant, the 47003 value limits, and
injected busy answers or timeouts. Tests in the same process use the helper methods; other
processes (the demo, a person with curl) use the control endpoints under `/__fake__/`.

    python -m yishitang.devtools.fakewechat --host 127.0.0.1 --port 8001 --demo
"""

from __future__ import annotations

import argparse
import logging
import re
import secrets
import signal
import threading
import time

from flask import Flask, jsonify, request
from werkzeug.serving import WSGIRequestHandler, make_server

from .fakewechat_media import MediaChecks

from . import fakewechat_control
from .fakewechat_rules import input_of as _input, value_problem as _value_problem

log = logging.getLogger(__name__)

TOKEN_TTL_S = 7200
# Fetching a legacy token leaves the older ones valid for five more minutes.
LEGACY_GRACE_S = 300
# Longer than any client timeout used in tests, so an injected "timeout" is one for the client.
DEFAULT_TIMEOUT_S = 2.5

TEXT_SCENES = (1, 2, 3, 4)
FORCED_REFRESHES_PER_DAY = 20  # stable_token with force_refresh: beyond this, 45009 (the fake's "day" is until reset)
DEMO_LOGIN = re.compile(r"^demo:([^:]+):[^:]+$")
DEMO_PHONE = re.compile(r"^demo-phone:(\d{11}):[^:]+$")


class _QuietHandler(WSGIRequestHandler):
    """No access log line per request: tests make hundreds of calls."""

    def log_request(self, code="-", size="-"):
        pass


class FakeWeChat:
    """The fake server; every piece of state is guarded by one lock (the server is threaded)."""

    def __init__(self, appid="wx-test-appid", secret="wx-test-secret", demo=False,
                 push_token="yishitang-demo-push-token", push_url=None):
        self.appid, self.secret, self.demo = appid, secret, demo
        self.media = MediaChecks(appid, push_token, push_url, auto=demo)  # the media check's pushes
        self.timeout_s = DEFAULT_TIMEOUT_S
        self.url = ""
        self._lock = threading.RLock()
        self._server = None
        self._thread = None
        self.app = self._build_app()
        self.reset()

    # -- running -----------------------------------------------------------------------------

    def start(self, host="127.0.0.1", port=0, log_requests=False) -> FakeWeChat:
        """Serve on a daemon thread; port 0 picks a free port (see `url`)."""
        handler = WSGIRequestHandler if log_requests else _QuietHandler
        self._server = make_server(host, port, self.app, threaded=True, request_handler=handler)
        self.url = f"http://{host}:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-wechat", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = self._thread = None

    def reset(self) -> None:
        """Forget everything: codes, tokens, grants, injected failures, verdicts, sent, calls."""
        with self._lock:
            self._login_codes: dict[str, tuple[str, str | None]] = {}
            self._phone_codes: dict[str, str] = {}
            self._used_demo_codes: set[str] = set()
            self._tokens: dict[str, float] = {}  # token -> expiry (epoch seconds); absent = invalid
            self._stable_token: str | None = None
            self._forced_refreshes = 0
            self._grants: dict[tuple[str, str], int] = {}
            self._failures: dict[str, list] = {}
            self._verdicts: dict[str, tuple[str, int]] = {}
            self.sent: list[dict] = []
            self.calls: list[tuple[str, dict]] = []
        self.media.reset()

    # -- helpers for tests in the same process -----------------------------------------------

    def issue_login_code(self, openid, unionid=None) -> str:
        """A single-use `js_code` for jscode2session."""
        code = "code-" + secrets.token_hex(8)
        with self._lock:
            self._login_codes[code] = (openid, unionid)
        return code

    def issue_phone_code(self, phone) -> str:
        """A single-use code for getuserphonenumber."""
        code = "phone-" + secrets.token_hex(8)
        with self._lock:
            self._phone_codes[code] = str(phone)
        return code

    def grant(self, openid, template_id, count=1) -> None:
        """The user accepted the template `count` times; each acceptance permits one send."""
        with self._lock:
            key = (openid, template_id)
            self._grants[key] = self._grants.get(key, 0) + int(count)

    def grants_left(self, openid, template_id) -> int:
        with self._lock:
            return self._grants.get((openid, template_id), 0)

    def fail_next(self, path, errcode, times=1) -> None:
        """The next `times` calls to `path` answer `errcode`, or hang past the timeout ("timeout")."""
        with self._lock:
            self._failures.setdefault(path, []).extend([errcode] * int(times))

    def invalidate_tokens(self) -> None:
        """Every issued access token becomes invalid (40001 on use)."""
        with self._lock:
            self._tokens.clear()
            self._stable_token = None

    def expire_tokens(self) -> None:
        """Every issued access token is past its expiry (42001 on use)."""
        with self._lock:
            past = time.time() - 1
            self._tokens = {token: past for token in self._tokens}

    def set_text_verdict(self, substring, suggest, label) -> None:
        """msg_sec_check answers `suggest`/`label` for content containing `substring`."""
        with self._lock:
            self._verdicts[substring] = (suggest, int(label))

    # -- the app -----------------------------------------------------------------------------

    def _build_app(self) -> Flask:
        app = Flask(__name__)
        app.json.ensure_ascii = False
        routes = {
            ("GET", "/sns/jscode2session"): self._jscode2session,
            ("POST", "/cgi-bin/stable_token"): self._stable_token_endpoint,
            ("GET", "/cgi-bin/token"): self._legacy_token,
            ("POST", "/cgi-bin/message/subscribe/send"): self._subscribe_send,
            ("POST", "/wxa/msg_sec_check"): self._msg_sec_check,
            ("POST", "/wxa/media_check_async"): self._media_check_async,
            ("POST", "/wxa/business/getuserphonenumber"): self._phone_number,
        }
        for (method, path), handler in routes.items():
            app.add_url_rule(
                path, endpoint=path, view_func=self._wechat_view(path, handler), methods=[method]
            )
        fakewechat_control.register(app, self)
        return app

    def _wechat_view(self, path, handler):
        """Record the call, apply an injected failure, else run the endpoint's own logic."""

        def view():
            query = request.args.to_dict()
            body = request.get_json(silent=True) if request.method == "POST" else {}
            params = _input(path, query, body if isinstance(body, dict) else {})
            with self._lock:
                self.calls.append((path, {**query, **(body if isinstance(body, dict) else {})}))
                queued = self._failures.get(path)
                failure = queued.pop(0) if queued else None
            if failure == "timeout":
                time.sleep(self.timeout_s)
                return _error(-1, "system error (injected timeout)")
            if failure is not None:
                return _error(int(failure), "injected failure")
            if not isinstance(body, dict):
                return _error(47001, "data format error")
            with self._lock:
                return jsonify(handler(params))

        return view

    # -- WeChat endpoints: each gets the merged query and JSON body, returns the answer ------

    def _jscode2session(self, params):
        if params.get("grant_type") != "authorization_code":
            return _body(40002, "invalid grant_type")
        if params.get("appid") != self.appid:
            return _body(40013, "invalid appid")
        if params.get("secret") != self.secret:
            return _body(40125, "invalid appsecret")
        code = params.get("js_code", "")
        if code in self._login_codes:
            openid, unionid = self._login_codes.pop(code)
        elif self._is_new_demo_code(code, DEMO_LOGIN):
            openid, unionid = DEMO_LOGIN.match(code).group(1), None
        else:
            return _body(40029, "invalid code")
        answer = {"openid": openid, "session_key": secrets.token_urlsafe(16)}
        if unionid:
            answer["unionid"] = unionid
        return answer

    def _stable_token_endpoint(self, params):
        refused = self._check_credentials(params)
        if refused:
            return refused
        current = self._stable_token
        if params.get("force_refresh") is True:
            if self._forced_refreshes >= FORCED_REFRESHES_PER_DAY:
                return _body(45009, "reach max api daily quota limit")
            self._forced_refreshes += 1
        if params.get("force_refresh") is True or not self._is_valid(current):
            self._tokens.pop(current, None)
            current = self._stable_token = self._new_token()
        return {"access_token": current, "expires_in": int(self._tokens[current] - time.time())}

    def _legacy_token(self, params):
        refused = self._check_credentials(params)
        if refused:
            return refused
        grace_end = time.time() + LEGACY_GRACE_S
        self._tokens = {token: min(expiry, grace_end) for token, expiry in self._tokens.items()}
        return {"access_token": self._new_token(), "expires_in": TOKEN_TTL_S}

    def _subscribe_send(self, params):
        refused = self._check_token(params)
        if refused:
            return refused
        openid, template_id = params.get("touser", ""), params.get("template_id", "")
        data = params.get("data")
        if not openid or not template_id or not isinstance(data, dict):
            return _body(47003, "argument invalid! touser, template_id and data are required")
        values = {}
        for key, item in data.items():
            value = item.get("value") if isinstance(item, dict) else None
            problem = _value_problem(key, value)
            if problem:
                return _body(47003, f"argument invalid! data.{key}.value {problem}")
            values[key] = value
        if not self.demo:
            left = self._grants.get((openid, template_id), 0)
            if left <= 0:
                return _body(43101, "user refuse to accept the msg")
            self._grants[(openid, template_id)] = left - 1
        self.sent.append({
            "touser": openid,
            "template_id": template_id,
            "data": values,
            "page": params.get("page"),
            "miniprogram_state": params.get("miniprogram_state", "formal"),
        })
        return _body(0, "ok")

    def _msg_sec_check(self, params):
        refused = self._check_token(params)
        if refused:
            return refused
        if params.get("version") != 2:
            return _body(40129, "invalid version, must be 2")
        if params.get("scene") not in TEXT_SCENES:
            return _body(40129, "invalid scene")
        if not params.get("openid"):
            return _body(40003, "invalid openid")
        content = params.get("content") or ""
        if not content:
            return _body(44002, "empty post data")
        suggest, label = "pass", 100
        for substring, verdict in self._verdicts.items():
            if substring in content:
                suggest, label = verdict
                break
        return {
            "errcode": 0,
            "errmsg": "ok",
            "trace_id": secrets.token_hex(12),
            "result": {"suggest": suggest, "label": label},
        }

    def _media_check_async(self, params):
        return self._check_token(params) or self.media.request(params)

    def _phone_number(self, params):
        refused = self._check_token(params)
        if refused:
            return refused
        code = params.get("code", "")
        if code in self._phone_codes:
            phone = self._phone_codes.pop(code)
        elif self._is_new_demo_code(code, DEMO_PHONE):
            phone = DEMO_PHONE.match(code).group(1)
        else:
            return _body(40029, "invalid code")
        return {
            "errcode": 0,
            "errmsg": "ok",
            "phone_info": {
                "phoneNumber": phone,
                "purePhoneNumber": phone,
                "countryCode": "86",
                "watermark": {"timestamp": int(time.time()), "appid": self.appid},
            },
        }

    # -- token and code bookkeeping (called with the lock held) ------------------------------

    def _check_credentials(self, params):
        if params.get("grant_type") != "client_credential":
            return _body(40002, "invalid grant_type")
        if params.get("appid") != self.appid:
            return _body(40013, "invalid appid")
        if params.get("secret") != self.secret:
            return _body(40125, "invalid appsecret")
        return None

    def _check_token(self, params):
        token = params.get("access_token")
        if not token:
            return _body(41001, "access_token missing")
        if token not in self._tokens:
            return _body(40001, "invalid credential, access_token is invalid or not latest")
        if self._tokens[token] <= time.time():
            return _body(42001, "access_token expired")
        return None

    def _is_valid(self, token) -> bool:
        return token in self._tokens and self._tokens[token] > time.time()

    def _new_token(self) -> str:
        token = "fake-token-" + secrets.token_hex(16)
        self._tokens[token] = time.time() + TOKEN_TTL_S
        return token

    def _is_new_demo_code(self, code, pattern) -> bool:
        """Demo codes are accepted in demo mode only, and each one once."""
        if not self.demo or not pattern.match(code) or code in self._used_demo_codes:
            return False
        self._used_demo_codes.add(code)
        return True


def _body(errcode: int, errmsg: str) -> dict:
    return {"errcode": errcode, "errmsg": errmsg}


def _error(errcode: int, errmsg: str):
    # WeChat reports every error with HTTP 200.
    return jsonify(_body(errcode, errmsg))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Local fake of the WeChat server APIs.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--demo", action="store_true", help="accept demo:<openid>:<nonce> codes")
    parser.add_argument("--appid", default="wx-test-appid")
    parser.add_argument("--secret", default="wx-test-secret")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    fake = FakeWeChat(appid=args.appid, secret=args.secret, demo=args.demo)
    fake.start(args.host, args.port, log_requests=True)
    log.info("fake WeChat serving on %s (demo=%s)", fake.url, args.demo)
    try:
        stopping.wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
        log.info("fake WeChat stopped")


if __name__ == "__main__":
    main()
