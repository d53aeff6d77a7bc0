"""A person's data (PIPL): everything stored about them, and erasing them.

Each feature answers for its own part, with `personal_data(user) -> dict` and
`forget(user, session)` (run in one transaction; what cannot be, like GridFS bytes, waits for the
commit). This module sits above the features it asks; the users feature serves it under /me
through the hooks registered by `init_app`.
"""

from __future__ import annotations

from . import db
from .consultations import service as consultations
from .errors import Forbidden
from .files import service as files
from .issues import service as issues
from .notifications import service as notifications
from .users import service as users

# The features that hold something about a person, in the order of the export.
FEATURES = (users, issues, consultations, notifications, files)
# Those that erase something: consultations keep only a user id and a time per check-in.
FORGETTING = (users, issues, notifications, files)


def export(user) -> dict:
    found = {"exported_at": db.utcnow()}
    for feature in FEATURES:
        found.update(feature.personal_data(user))
    return found


def erase(user) -> None:
    """Delete a resident's account: issues stay for the public record, anonymised; phone and WeChat ids go."""
    if set(user.roles) - {"resident"}:
        raise Forbidden("工作人员账号请联系管理员注销", error="staff_account")

    def write(session):
        for feature in FORGETTING:
            feature.forget(user, session=session)

    db.run_in_transaction(write)


def init_app() -> None:
    users.set_personal_data(export, erase)
