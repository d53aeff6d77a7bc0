"""Regions of the three-tier map: district -> town/street -> village/community."""

import mongoengine as me

from ..db import BaseDocument

KINDS = ("district", "town", "street", "village", "community")
TIER_OF_KIND = {
    "district": "district",
    "town": "township",
    "street": "township",
    "village": "grassroots",
    "community": "grassroots",
}
# The kinds a parent may have, by child kind: the map is always three tiers deep.
PARENT_KINDS = {
    "district": (),
    "town": ("district",),
    "street": ("district",),
    "village": ("town", "street"),
    "community": ("town", "street"),
}


class Region(BaseDocument):
    meta = {
        "collection": "regions",
        "indexes": [
            {"fields": ["code"], "unique": True},
            {"fields": ["parent_code", "kind", "code"]},
            {"fields": ["ancestors", "kind", "code"]},  # subtree queries: {ancestors: CODE}
        ],
    }

    code = me.StringField(required=True)
    name = me.StringField(required=True)
    kind = me.StringField(required=True, choices=KINDS)
    parent_code = me.StringField()
    ancestors = me.ListField(me.StringField())  # codes, root first

    @property
    def tier(self) -> str:
        return TIER_OF_KIND[self.kind]

    @property
    def path(self) -> list[str]:
        """Ancestors and the region itself: what scope checks and subtree filters match on."""
        return [*self.ancestors, self.code]
