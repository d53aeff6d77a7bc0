from flask.views import MethodView

from ..api import Blueprint, paginate
from ..auth import ROLES, current_user, require_scope
from ..users import service as users
from . import service
from .schemas import MembersSchema, StudioPatchSchema, StudioQuerySchema, StudioSchema

blp = Blueprint("studios", __name__, url_prefix="/api/v1/studios", description="委员工作室")


def views(studios: list) -> list[dict]:
    members = users.members_by_studio([s.id for s in studios], active_only=False)
    return [_view(s, members[s.id]) for s in studios]


def _view(studio, members) -> dict:
    return {
        "id": str(studio.id), "name": studio.name, "region_code": studio.region_code,
        "township_code": studio.township_code, "district_code": studio.district_code,
        "address": studio.address, "location": service.location_view(studio),
        "open_hours": studio.open_hours, "member_ids": [m["id"] for m in members], "active": studio.active,
        "members": [{key: m[key] for key in ("id", "display_name", "committee")} for m in members if m["active"]],
        "distance_m": getattr(studio, "distance_m", None),
    }


def _one(studio) -> dict:
    return views([studio])[0]


@blp.route("")
class Studios(MethodView):
    @blp.list_route(StudioQuerySchema, StudioSchema, roles=ROLES)
    def get(self, args, pagination_parameters):
        """List studios in a region subtree (by code), or nearest first with `near=lng,lat`."""
        return views(list(paginate(service.search(**args), pagination_parameters)))

    @blp.login_required(roles=("admin",))
    @blp.arguments(StudioSchema)
    @blp.response(201, StudioSchema)
    def post(self, args):
        """Open a studio in a village or community (admin)."""
        return _one(service.create(**args))


@blp.route("/<studio_id>")
class StudioById(MethodView):
    @blp.login_required(roles=ROLES)
    @blp.response(200, StudioSchema)
    def get(self, studio_id):
        """One studio with its members."""
        return _one(service.get(studio_id))

    @blp.login_required(roles=("admin",))
    @blp.arguments(StudioPatchSchema)
    @blp.response(200, StudioSchema)
    def patch(self, args, studio_id):
        """Change a studio's name, address, location, hours or active flag (admin)."""
        return _one(service.update(service.get(studio_id), **args))


@blp.route("/<studio_id>/members", methods=["PUT"])
@blp.login_required(roles=("admin", "coordinator"))
@blp.arguments(MembersSchema)
@blp.response(200, StudioSchema)
def put_members(args, studio_id):
    """Set the studio's members (admin, or a coordinator whose scope covers the studio)."""
    studio = service.get(studio_id)
    require_scope(current_user(), studio.region_path)
    users.assign_members(studio, args["member_ids"])
    return _one(studio)
