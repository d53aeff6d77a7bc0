"""The GeoReport service list: one service per issue category, and the status mapping.

Data, not code: `service_code` is the category's stable key; names and words are Chinese, for
the people who pick a service in an outside tool.
"""

import datetime as dt

from ..issues.models import CATEGORIES, CATEGORY_NAMES
from ..issues.workflow import OPEN, STATUSES

# When the list below last changed; discovery's changeset is this or the last studio change.
CATALOG_CHANGED = dt.datetime(2026, 11, 27, tzinfo=dt.timezone.utc)

# category -> (description, keywords, group)
SERVICE_TEXT = {
    "community_facilities": ("小区和社区的公共设施：加装电梯、充电车棚、停车位、路灯、健身器材、物业服务等。",
                             "加装电梯, 充电桩, 车棚, 停车, 路灯, 物业, 老旧小区", "社区建设"),
    "traffic": ("道路、公交、停车、信号灯、人行道和交通秩序。",
                "道路, 公交, 红绿灯, 拥堵, 人行道, 停车难", "城乡建设"),
    "education": ("学校、幼儿园、托育、入学和校园周边。", "学校, 幼儿园, 托育, 入学, 学位", "公共服务"),
    "elderly_care": ("居家和社区养老：老年食堂、助餐、日间照料、适老化改造。",
                     "养老, 老年食堂, 助餐, 日间照料, 适老化", "公共服务"),
    "environment": ("垃圾、噪音、异味、污水、绿化和市容卫生。", "垃圾, 噪音, 异味, 污水, 绿化, 卫生", "城乡建设"),
    "safety": ("消防隐患、飞线充电、治安、危房和其他公共安全问题。", "消防, 飞线充电, 治安, 隐患, 危房", "社会治理"),
    "health": ("社区医院、卫生服务站、就医和药品。", "社区医院, 卫生站, 看病, 药店, 医保", "公共服务"),
    "employment": ("就业、职业培训、招聘和创业扶持。", "就业, 培训, 招聘, 创业, 补贴", "公共服务"),
    "other": ("不属于以上类别的民生问题和建议。", "建议, 其他", "其他"),
}
assert set(SERVICE_TEXT) == set(CATEGORIES)

SERVICES = [
    {"service_code": code, "service_name": CATEGORY_NAMES[code], "description": SERVICE_TEXT[code][0],
     "metadata": True, "type": "realtime", "keywords": SERVICE_TEXT[code][1], "group": SERVICE_TEXT[code][2]}
    for code in CATEGORIES
]

# GeoReport knows two states. "closed" means "it has been resolved": a resolved issue awaiting the
# reporter's rating is closed, and open again if the reporter finds it unresolved. Rejected and
# withdrawn issues (and duplicates) never leave the public board's filter, whatever their mapping.
CLOSED = tuple(status for status in STATUSES if status not in OPEN)
GEOREPORT_STATUS = {**{status: "open" for status in OPEN}, **{status: "closed" for status in CLOSED}}
INTERNAL_STATUSES = {"open": OPEN, "closed": CLOSED}
