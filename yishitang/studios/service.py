"""Studios: lookups, search by region subtree or distance, and admin edits."""

from ..db import get_or_404, given, object_id
from ..errors import InvalidInput
from ..regions import service as regions
from .models import Studio

GRASSROOTS = ("village", "community")


def get(studio_id) -> Studio:
    return get_or_404(Studio, studio_id)


def get_many(ids, field="studio_ids") -> list[Studio]:
    """Studios named in a request body; any unknown id is a field error."""
    oids = [object_id(i) for i in dict.fromkeys(ids)] if ids else []
    studios = list(Studio.objects(id__in=oids))
    if len(studios) != len(oids):
        raise InvalidInput(errors={field: ["包含不存在的工作室"]})
    return studios


def search(region=None, near=None, active=None):
    """Studios in a region subtree; with `near`, nearest first (each with `distance_m`)."""
    filters = given(region_path=region, active=active)
    if near is None:
        return Studio.objects(**filters).order_by("region_code", "name")
    lng, lat = near
    pipeline = [{"$geoNear": {
        "near": {"type": "Point", "coordinates": [lng, lat]},
        "distanceField": "distance_m",
        "spherical": True,
        "query": Studio.objects(**filters)._query,
    }}]
    return [_with_distance(doc) for doc in Studio.objects.aggregate(pipeline)]


def _with_distance(raw: dict) -> Studio:
    distance = raw.pop("distance_m", None)
    studio = Studio._from_son(raw)
    studio.distance_m = round(distance, 1) if distance is not None else None
    return studio


def create(name, region_code, address="", location=None, open_hours="", active=True) -> Studio:
    region = regions.get_for_field(region_code, "region_code", GRASSROOTS)
    studio = Studio(name=name, region_code=region.code, region_path=region.path, address=address,
                    location=_point(location), open_hours=open_hours, active=active)
    studio.save()
    return studio


def update(studio: Studio, **changes) -> Studio:
    if "location" in changes:
        changes["location"] = _point(changes["location"])
    for key, value in changes.items():
        setattr(studio, key, value)
    studio.save()
    return studio


def _point(location):
    return [location["lng"], location["lat"]] if location else None


def location_view(studio: Studio):
    if not studio.location:
        return None
    lng, lat = studio.location["coordinates"] if isinstance(studio.location, dict) else studio.location
    return {"lng": lng, "lat": lat}
