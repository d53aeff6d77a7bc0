"""Members' studios (委员工作室): one per village or community, where residents raise issues."""

import mongoengine as me

from ..db import BaseDocument


class Studio(BaseDocument):
    meta = {
        "collection": "studios",
        "indexes": [
            {"fields": ["region_path", "name"]},  # subtree queries: {region_path: CODE}
            {"fields": ["region_code"]},
            # The version is explicit so re-creating the index at every start matches the stored one exactly.
            {"fields": [("location", "2dsphere")], "2dsphereIndexVersion": 3},
        ],
    }

    name = me.StringField(required=True)
    region_code = me.StringField(required=True)
    region_path = me.ListField(me.StringField())  # ancestors of the region and the region itself
    address = me.StringField(default="")
    location = me.PointField()  # GeoJSON [lng, lat]
    open_hours = me.StringField(default="")
    active = me.BooleanField(default=True)

    @property
    def township_code(self):
        return self.region_path[1] if len(self.region_path) > 1 else None

    @property
    def district_code(self):
        return self.region_path[0] if self.region_path else None
