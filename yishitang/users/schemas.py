import marshmallow as ma
from marshmallow import validate

from ..auth import ROLES
from ..fields import CODE, OBJECT_ID, PHONE, LocalDateTime
from .models import COMMITTEES

PASSWORD_MIN_LENGTH = 8
USERNAME = validate.Regexp(r"^[A-Za-z0-9_.-]{3,32}$", error="用户名应为 3 到 32 位字母、数字或 _ . -")


class UserSchema(ma.Schema):
    id = ma.fields.String()
    display_name = ma.fields.String()
    roles = ma.fields.List(ma.fields.String())
    username = ma.fields.String(allow_none=True, metadata={"description": "staff only"})
    phone = ma.fields.String(allow_none=True, metadata={"description": "masked 138****5678 unless the caller is this user or an admin"})
    home_region_code = ma.fields.String(allow_none=True)
    studio_ids = ma.fields.List(ma.fields.String())
    committee = ma.fields.String(allow_none=True)
    scope_region_code = ma.fields.String(allow_none=True)
    active = ma.fields.Boolean()
    created_at = LocalDateTime()


class WeChatLoginSchema(ma.Schema):
    code = ma.fields.String(required=True, validate=validate.Length(1, 128), metadata={"description": "from wx.login()"})


class PasswordLoginSchema(ma.Schema):
    username = ma.fields.String(required=True, validate=validate.Length(1, 64))
    password = ma.fields.String(required=True, load_only=True, validate=validate.Length(1, 128))


class RefreshSchema(ma.Schema):
    refresh_token = ma.fields.String(required=True, validate=validate.Length(1, 256))


class TokenSchema(ma.Schema):
    access_token = ma.fields.String()
    refresh_token = ma.fields.String()
    token_type = ma.fields.String()
    expires_in = ma.fields.Integer(metadata={"description": "access token lifetime, seconds"})
    user = ma.fields.Nested(UserSchema)


class MePatchSchema(ma.Schema):
    display_name = ma.fields.String(validate=validate.Length(1, 20))
    home_region_code = ma.fields.String(validate=CODE, metadata={"description": "a village or community"})
    phone_code = ma.fields.String(validate=validate.Length(1, 128), metadata={"description": "from the getPhoneNumber button"})


class StaffCreateSchema(ma.Schema):
    username = ma.fields.String(required=True, validate=USERNAME)
    password = ma.fields.String(required=True, load_only=True, validate=validate.Length(PASSWORD_MIN_LENGTH, 128))
    display_name = ma.fields.String(required=True, validate=validate.Length(1, 20))
    roles = ma.fields.List(ma.fields.String(validate=validate.OneOf(ROLES)), required=True, validate=validate.Length(1, 4))
    phone = ma.fields.String(validate=PHONE)
    committee = ma.fields.String(validate=validate.OneOf(COMMITTEES))
    studio_ids = ma.fields.List(ma.fields.String(validate=OBJECT_ID), validate=validate.Length(max=20))
    scope_region_code = ma.fields.String(validate=CODE)


class UserPatchSchema(ma.Schema):
    display_name = ma.fields.String(validate=validate.Length(1, 20))
    roles = ma.fields.List(ma.fields.String(validate=validate.OneOf(ROLES)), validate=validate.Length(1, 4))
    phone = ma.fields.String(allow_none=True, validate=PHONE)
    committee = ma.fields.String(allow_none=True, validate=validate.OneOf(COMMITTEES))
    studio_ids = ma.fields.List(ma.fields.String(validate=OBJECT_ID), validate=validate.Length(max=20))
    scope_region_code = ma.fields.String(allow_none=True, validate=CODE)
    active = ma.fields.Boolean(metadata={"description": "false disables the account and revokes its tokens at once"})
    password = ma.fields.String(load_only=True, validate=validate.Length(PASSWORD_MIN_LENGTH, 128))


class UserQuerySchema(ma.Schema):
    role = ma.fields.String(validate=validate.OneOf(ROLES))
    region = ma.fields.String(validate=CODE, metadata={"description": "home, scope or studio region in this subtree"})
    q = ma.fields.String(validate=validate.Length(1, 20), metadata={"description": "display name or username contains"})
    active = ma.fields.Boolean()


class LogoutSchema(ma.Schema):
    refresh_token = ma.fields.String(validate=validate.Length(1, 256), metadata={"description": "optional: revoke this sign-in instead of the caller's"})


class PersonalDataSchema(ma.Schema):
    """Sections of the export; their items are documented with the features that own them."""

    exported_at = LocalDateTime()
    profile = ma.fields.Dict()
    sign_ins = ma.fields.Integer(metadata={"description": "active sign-ins (refresh token families)"})
    issues_raised = ma.fields.List(ma.fields.Dict())
    supports = ma.fields.List(ma.fields.Dict())
    checkins = ma.fields.List(ma.fields.Dict())
    notifications = ma.fields.List(ma.fields.Dict())
    uploads = ma.fields.List(ma.fields.Dict())
