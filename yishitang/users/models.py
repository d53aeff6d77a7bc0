"""People: residents (WeChat login), members, coordinators and admins (password login)."""

import mongoengine as me

from ..db import BaseDocument, Record

COMMITTEES = ("提案委员会", "经济科技委员会", "社会法制委员会", "文化文史委员会")


class User(BaseDocument):
    meta = {
        "collection": "users",
        "indexes": [
            {"fields": ["openid"], "unique": True, "sparse": True},
            {"fields": ["username"], "unique": True, "sparse": True},
            {"fields": ["studio_ids", "roles", "active"]},  # a studio's members
            {"fields": ["scope_region_code", "roles", "active"]},  # a tier's coordinators
            {"fields": ["region_codes", "roles"]},  # admin lists by region subtree
            {"fields": ["roles", "display_name"]},
        ],
    }

    display_name = me.StringField(required=True)
    roles = me.ListField(me.StringField(), default=lambda: ["resident"])
    openid = me.StringField()
    unionid = me.StringField()
    username = me.StringField()
    password_hash = me.StringField()
    phone = me.StringField()
    home_region_code = me.StringField()
    studio_ids = me.ListField(me.ObjectIdField())
    committee = me.StringField()
    scope_region_code = me.StringField()
    # Every region the user belongs to (home, scope, studios) with its ancestors: subtree filters.
    region_codes = me.ListField(me.StringField())
    active = me.BooleanField(default=True)
    deleted_at = me.DateTimeField()  # the person erased their account (PIPL); the id stays for the record
    # Bumped on disable or role change: every access token carrying an older version is refused.
    token_version = me.IntField(default=0)


class RefreshToken(Record):
    """A refresh token, stored by its SHA-256; `family` links the rotations of one sign-in."""

    meta = {
        "collection": "refresh_tokens",
        "indexes": [
            {"fields": ["family"]},
            {"fields": ["user_id"]},
            {"fields": ["expires_at"], "expireAfterSeconds": 0},  # MongoDB deletes expired ones
        ],
    }

    id = me.StringField(primary_key=True)  # sha256 hex of the token
    user_id = me.ObjectIdField(required=True)
    family = me.StringField(required=True)
    token_version = me.IntField(default=0)
    issued_at = me.DateTimeField(required=True)
    expires_at = me.DateTimeField(required=True)
    used_at = me.DateTimeField()
    revoked_at = me.DateTimeField()
