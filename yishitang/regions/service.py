"""Regions: lookups used by every feature, and admin edits."""

import re

from mongoengine import NotUniqueError

from ..db import given
from ..errors import Conflict, InvalidInput, NotFound
from .models import PARENT_KINDS, Region


def get(code: str) -> Region:
    region = Region.objects(code=code).first()
    if region is None:
        raise NotFound("地区不存在", error="region_not_found")
    return region


def get_for_field(code: str, field: str, kinds: tuple[str, ...] | None = None) -> Region:
    """A region named in a request body: unknown or of the wrong kind is a field error (422)."""
    region = Region.objects(code=code).first()
    if region is None:
        raise InvalidInput(errors={field: ["地区代码不存在"]})
    if kinds and region.kind not in kinds:
        raise InvalidInput(errors={field: [f"地区类型应为 {' / '.join(kinds)}"]})
    return region


def search(parent=None, within=None, kind=None, q=None):
    name = re.compile(re.escape(q)) if q else None
    return Region.objects(**given(parent_code=parent, ancestors=within, kind=kind, name=name)).order_by("code")


def create(code, name, kind, parent_code=None) -> Region:
    allowed = PARENT_KINDS[kind]
    if not allowed:
        if parent_code:
            raise InvalidInput(errors={"parent_code": ["区级地区不能有上级"]})
        ancestors = []
    else:
        if not parent_code:
            raise InvalidInput(errors={"parent_code": ["缺少上级地区"]})
        parent = get_for_field(parent_code, "parent_code", allowed)
        ancestors = parent.path
    region = Region(code=code, name=name, kind=kind, parent_code=parent_code, ancestors=ancestors)
    try:
        region.save(force_insert=True)
    except NotUniqueError:
        raise Conflict("地区代码已存在", error="region_exists") from None
    return region


def rename(code: str, name: str) -> Region:
    region = get(code)
    region.name = name
    region.save()
    return region


def path_of(code: str) -> list[str]:
    return get(code).path
