"""A person's data (PIPL): everything stored about them, and erasing them.

This sits above the features it gathers from (issues, consultations, notifications, files),
which is why it is not part of `users.service`, which those features use.
"""

from __future__ import annotations

from .. import db
from ..consultations import service as consultations
from ..errors import Forbidden
from ..files import service as files
from ..issues import service as issues
from ..notifications import service as notifications
from . import service, tokens
from .models import RefreshToken, User

FORGOTTEN = issues.FORGOTTEN


def export(user: User) -> dict:
    return {
        "exported_at": db.utcnow(),
        "profile": {**service.view(user, user), "openid": user.openid, "unionid": user.unionid},
        "sign_ins": RefreshToken.objects(user_id=user.id, revoked_at=None, used_at=None).count(),
        **issues.personal_data(user),
        **consultations.personal_data(user),
        **notifications.personal_data(user),
        **files.personal_data(user),
    }


def erase(user: User) -> None:
    """Delete a resident's account: issues stay for the public record, anonymised; phone and WeChat ids go."""
    if set(user.roles) - {"resident"}:
        raise Forbidden("工作人员账号请联系管理员注销", error="staff_account")
    now = db.utcnow()

    def write(session):
        User._get_collection().update_one({"_id": user.id}, {
            "$set": {"display_name": FORGOTTEN, "active": False, "deleted_at": now, "updated_at": now,
                     "region_codes": [], "roles": ["resident"]},
            "$unset": {"phone": "", "openid": "", "unionid": "", "home_region_code": ""},
            "$inc": {"token_version": 1},
        }, session=session)
        issues.forget_reporter(user, session=session)
        notifications.forget(user, session=session)

    db.run_in_transaction(write)
    tokens.revoke_user(user.id)
    files.forget(user)
