from flask.views import MethodView

from ..api import Blueprint, paginate
from ..auth import ROLES
from . import service
from .schemas import RegionPatchSchema, RegionQuerySchema, RegionSchema

blp = Blueprint("regions", __name__, url_prefix="/api/v1/regions", description="三级地区：区、镇街、村社区")


@blp.route("")
class Regions(MethodView):
    @blp.list_route(RegionQuerySchema, RegionSchema, roles=ROLES)
    def get(self, args, pagination_parameters):
        """List regions, by parent, subtree, kind or name; sorted by code."""
        return paginate(service.search(**args), pagination_parameters)

    @blp.login_required(roles=("admin",))
    @blp.arguments(RegionSchema)
    @blp.response(201, RegionSchema)
    def post(self, args):
        """Create a region under its parent (admin)."""
        return service.create(**args)


@blp.route("/<code>")
class RegionByCode(MethodView):
    @blp.login_required(roles=ROLES)
    @blp.response(200, RegionSchema)
    def get(self, code):
        """One region by its code."""
        return service.get(code)

    @blp.login_required(roles=("admin",))
    @blp.arguments(RegionPatchSchema)
    @blp.response(200, RegionSchema)
    def patch(self, args, code):
        """Rename a region (admin); codes and parents do not change."""
        return service.rename(code, args["name"])
