"""Settings from the environment, in one place, each with its documented default.

Every setting is read once, by `Settings.from_env()`; nothing else in the code reads
`os.environ`. The README's configuration table is generated from `SETTINGS` below.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field

from flask import current_app


MIN_SECRET_BYTES = 32


class ConfigError(Exception):
    """A setting is missing or malformed; the process must not start."""


def settings() -> "Settings":
    """The running app's settings (`create_app` stores them; every feature reads them here)."""
    return current_app.config["SETTINGS"]


def _env_bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    # Database: unset means "start the embedded SecantusDB" (serve) or "the test server" (tests).
    mongodb_uri: str = ""
    mongodb_db: str = "yishitang"
    mongodb_timeout_ms: int = 3000
    embedded_db_path: str = "var/db"

    # Tokens. The secret is required outside demo and test mode (32+ bytes in every mode); demo mode
    # without one gets a random key kept in its data folder, test mode a random key per process.
    jwt_secret: str = ""
    access_token_ttl_s: int = 15 * 60
    refresh_token_ttl_s: int = 30 * 24 * 3600

    # WeChat.
    wechat_appid: str = ""
    wechat_secret: str = ""
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_timeout_s: float = 5.0
    wechat_templates: dict = field(default_factory=dict)
    # Message push (消息推送): the Token set in the mini-program console, and its mode.
    wechat_push_token: str = ""
    wechat_push_mode: str = "plain"

    # Modes and display.
    demo: bool = False
    # Set by `yishitang serve` only, never from the environment: the embedded database it started.
    embedded_started: bool = False
    testing: bool = False
    tz: str = "Asia/Shanghai"
    issue_number_prefix: str = "DW"
    retry_after_s: int = 5
    # Links handed out: the public base URL (WeChat fetches photos from it) and how long they work.
    public_url: str = ""
    file_url_ttl_s: int = 1800

    # Issue deadlines (days): a first answer, then handling at each tier; resolved issues wait
    # this long for the reporter's rating before a coordinator may close them.
    response_deadline_days: int = 3
    handling_days_grassroots: int = 15
    handling_days_township: int = 20
    handling_days_district: int = 30
    feedback_window_days: int = 7

    # Stats: a ranking leaves out groups with fewer issues than this.
    stats_min_issues_for_rank: int = 5
    # Rate limits, "count/seconds", shared by all processes through the database.
    rate_limit_login: str = "60/60"  # WeChat and password logins per IP (carrier NAT puts many behind one)
    rate_limit_issues: str = "10/3600"  # issues raised per user
    rate_limit_supports: str = "120/3600"  # supports given or taken back per user
    rate_limit_open311: str = "120/3600"  # Open311 requests filed per api key (a hotline files for many people)
    rate_limit_open311_read: str = "300/60"  # Open311 reads per client IP (public, no key)
    proxy_count: int = 0  # trusted reverse proxies in front (X-Forwarded-For hops to believe)
    # Bearer token of `GET /metrics`; unset: only loopback and private-network clients may scrape.
    metrics_token: str = ""

    @property
    def rate_limits(self) -> dict:
        return {"login": self.rate_limit_login, "issues": self.rate_limit_issues,
                "supports": self.rate_limit_supports, "open311": self.rate_limit_open311,
                "open311_read": self.rate_limit_open311_read}

    # Open311 GeoReport v2: who outside tools should contact (discovery), and how far the nearest
    # studio may be from a reported location before the location counts as outside the district.
    open311_contact: str = "议事堂管理员（区政协办公室）"
    open311_nearest_studio_km: float = 20.0

    # Per category: {"safety": {"grassroots": 5, "response": 1}}; from DEADLINE_OVERRIDES.
    deadline_overrides: dict = field(default_factory=dict)

    def deadline_days(self, stage: str, category: str | None = None) -> int:
        """Days allowed for a stage ("response" or a tier), category overrides first."""
        override = self.deadline_overrides.get(category or "", {}).get(stage)
        if override is not None:
            return override
        return self.response_deadline_days if stage == "response" else getattr(self, f"handling_days_{stage}")

    @classmethod
    def from_env(cls, env: dict | None = None, **overrides) -> "Settings":
        env = dict(os.environ if env is None else env)
        values: dict = {}
        for name, (var, kind, _doc) in SETTINGS.items():
            if var in env and env[var] != "":
                raw = env[var]
                try:
                    values[name] = _convert(kind, raw)
                except ValueError:
                    raise ConfigError(f"{var}={raw!r} is not a valid {kind.__name__}") from None
        values["wechat_templates"] = {
            key[len("WECHAT_TEMPLATE_"):].lower(): value
            for key, value in env.items()
            if key.startswith("WECHAT_TEMPLATE_") and value
        }
        values.update(overrides)
        if values.get("testing") and not values.get("jwt_secret") and not values.get("demo"):
            values["jwt_secret"] = secrets.token_urlsafe(32)  # no fixed key in the source, even for tests
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        if not self.jwt_secret and not self.demo:
            raise ConfigError("JWT_SECRET must be set (at least 32 characters) outside demo mode")
        if self.jwt_secret and len(self.jwt_secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(f"JWT_SECRET must be at least {MIN_SECRET_BYTES} characters long (in every mode)")
        if self.wechat_push_mode != "plain":
            raise ConfigError("WECHAT_PUSH_MODE: only `plain` is supported (safe mode's AES is not built)")
        if self.file_url_ttl_s < 60:
            raise ConfigError("FILE_URL_TTL must be at least 60 seconds")
        if self.metrics_token and len(self.metrics_token) < 16:
            raise ConfigError("METRICS_TOKEN must be at least 16 characters long (or unset)")

    def check_app(self) -> None:
        """What the app itself needs: a real key, and demo mode only on the database serve started."""
        if self.demo and not self.embedded_started:
            raise ConfigError("demo mode (YISHITANG_DEMO=1) runs only on the embedded database that "
                              "`yishitang serve` starts itself: unset MONGODB_URI, or unset YISHITANG_DEMO")
        if len(self.jwt_secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(f"JWT_SECRET must be set, at least {MIN_SECRET_BYTES} characters long")

    @property
    def signing_key(self) -> str:
        return self.jwt_secret

    @property
    def checkin_key(self) -> bytes:
        # Its own key: a check-in code shown on a screen must say nothing usable about the token key.
        return hmac.new(self.jwt_secret.encode(), b"yishitang check-in codes v1", hashlib.sha256).digest()

    @property
    def push_token(self) -> str:
        """WeChat's message-push Token; demo and test mode share a fixed one with the local fake."""
        return self.wechat_push_token or ("yishitang-demo-push-token" if self.demo or self.testing else "")

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **changes)


def rate_spec(raw: str) -> str:
    """`10/3600` (count per seconds), checked at start."""
    count, _, seconds = raw.partition("/")
    if not (count.isdigit() and seconds.isdigit() and int(seconds) > 0):
        raise ValueError(raw)
    return f"{int(count)}/{int(seconds)}"


def deadline_overrides(raw: str) -> dict:
    """`safety:grassroots=5,traffic:response=2` -> {"safety": {"grassroots": 5}, "traffic": {"response": 2}}."""
    result: dict = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        key, _, days = item.partition("=")
        category, _, stage = key.partition(":")
        if stage not in ("response", "grassroots", "township", "district") or not category or not days.strip().isdigit():
            raise ValueError(item)
        result.setdefault(category.strip(), {})[stage] = int(days)
    return result


def _convert(kind, raw: str):
    if kind is bool:
        return _env_bool(raw)
    return kind(raw)


# attribute -> (environment variable, type, documentation). The README table mirrors this.
SETTINGS: dict[str, tuple[str, type, str]] = {
    "mongodb_uri": ("MONGODB_URI", str, "MongoDB connection string; unset: `serve` starts the embedded SecantusDB"),
    "mongodb_db": ("MONGODB_DB", str, "database name used when the URI names none (default `yishitang`)"),
    "mongodb_timeout_ms": ("MONGODB_TIMEOUT_MS", int, "server selection timeout; past it requests get 503 (default 3000)"),
    "embedded_db_path": ("YISHITANG_DB_PATH", str, "storage folder of the embedded database (default `var/db`)"),
    "jwt_secret": ("JWT_SECRET", str, "HMAC key for tokens, 32+ bytes in every mode; required outside demo mode (demo: a random key kept in the data folder)"),
    "access_token_ttl_s": ("ACCESS_TOKEN_TTL", int, "access token lifetime in seconds (default 900)"),
    "refresh_token_ttl_s": ("REFRESH_TOKEN_TTL", int, "refresh token lifetime in seconds (default 2592000, 30 days)"),
    "wechat_appid": ("WECHAT_APPID", str, "mini-program AppID"),
    "wechat_secret": ("WECHAT_SECRET", str, "mini-program AppSecret"),
    "wechat_api_base": ("WECHAT_API_BASE", str, "WeChat API host (default https://api.weixin.qq.com); demo and tests use the local fake"),
    "wechat_timeout_s": ("WECHAT_TIMEOUT", float, "seconds before a WeChat call times out (default 5)"),
    "wechat_push_token": ("WECHAT_PUSH_TOKEN", str, "Token of the mini-program's message push (消息推送); unset outside demo and test mode: pushes are refused"),
    "wechat_push_mode": ("WECHAT_PUSH_MODE", str, "message push mode; only `plain` (明文模式) is supported (default plain)"),
    "public_url": ("YISHITANG_PUBLIC_URL", str, "https base URL of this API as phones and WeChat reach it, for signed photo links (default: the request's host)"),
    "file_url_ttl_s": ("FILE_URL_TTL", int, "seconds a signed photo link works (default 1800)"),
    "demo": ("YISHITANG_DEMO", bool, "`1`: demo mode (local fake WeChat, demo logins); `serve` on its own embedded database only"),
    "testing": ("YISHITANG_TESTING", bool, "`1`: test mode (set by the test suite)"),
    "tz": ("YISHITANG_TZ", str, "time zone for display and per-day grouping (default Asia/Shanghai)"),
    "issue_number_prefix": ("ISSUE_NUMBER_PREFIX", str, "prefix of human-readable issue numbers (default `DW`)"),
    "response_deadline_days": ("RESPONSE_DEADLINE_DAYS", int, "days to accept or reject a new issue (default 3)"),
    "handling_days_grassroots": ("HANDLING_DAYS_GRASSROOTS", int, "days to resolve an accepted issue at a studio (default 15)"),
    "handling_days_township": ("HANDLING_DAYS_TOWNSHIP", int, "days to resolve an issue escalated to a township (default 20)"),
    "handling_days_district": ("HANDLING_DAYS_DISTRICT", int, "days to resolve an issue escalated to the district (default 30)"),
    "feedback_window_days": ("FEEDBACK_WINDOW_DAYS", int, "days a resolved issue waits for the reporter's rating (default 7)"),
    "deadline_overrides": ("DEADLINE_OVERRIDES", deadline_overrides, "per-category deadlines, e.g. `safety:grassroots=5,traffic:response=2` (default none)"),
    "stats_min_issues_for_rank": ("STATS_MIN_ISSUES_FOR_RANK", int, "a ranking (`/stats/overview?rank=`) leaves out groups with fewer issues (default 5)"),
    "rate_limit_login": ("RATE_LIMIT_LOGIN", rate_spec, "logins per client IP, `count/seconds` (default 60/60)"),
    "rate_limit_issues": ("RATE_LIMIT_ISSUES", rate_spec, "issues raised per user (default 10/3600)"),
    "rate_limit_supports": ("RATE_LIMIT_SUPPORTS", rate_spec, "supports per user (default 120/3600)"),
    "rate_limit_open311": ("RATE_LIMIT_OPEN311", rate_spec, "Open311 requests filed per api key (default 120/3600)"),
    "rate_limit_open311_read": ("RATE_LIMIT_OPEN311_READ", rate_spec, "Open311 reads per client IP (default 300/60)"),
    "open311_contact": ("OPEN311_CONTACT", str, "who outside tools contact for Open311 help and api keys, shown in `discovery` (default 议事堂管理员（区政协办公室）)"),
    "open311_nearest_studio_km": ("OPEN311_NEAREST_STUDIO_KM", float, "an Open311 request located farther than this from every active studio is refused (default 20)"),
    "proxy_count": ("PROXY_COUNT", int, "reverse proxies in front whose X-Forwarded-For is trusted (default 0; 1 behind nginx)"),
    "metrics_token": ("METRICS_TOKEN", str, "bearer token that `GET /metrics` requires, 16+ chars; unset: only loopback and private-network addresses may scrape (default unset)"),
    "retry_after_s": ("RETRY_AFTER", int, "Retry-After seconds sent with 503 when the database is unreachable (default 5)"),
}
