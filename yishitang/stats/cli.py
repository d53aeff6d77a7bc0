"""`yishitang stats`: the overview in a terminal, with the operator's view of every region."""

from __future__ import annotations

import json
import re

import click

from ..errors import DomainError
from . import export, service

CODE = re.compile(r"^[0-9]{6,12}$")


class Operator:
    """Whoever runs the command line on the server sees what an admin sees."""

    roles = ("admin",)
    scope_region_code = None


def check_region(region: str) -> None:
    if not CODE.match(region):
        raise click.BadParameter("地区代码应为 6 到 12 位数字 (6 to 12 digits)", param_hint="--region")


def report(region: str, date_from, date_to, group_by, rank, output_format: str) -> str:
    check_region(region)
    try:
        data = service.overview(Operator(), region=region, date_from=date_from, date_to=date_to,
                                group_by=group_by, rank=rank)
    except DomainError as exc:
        hint = {"from": "--from", "to": "--to", "region": "--region"}
        fields = list((exc.errors or {}).items())
        if exc.error == "region_not_found" or fields:
            name, messages = fields[0] if fields else ("region", [exc.message])
            raise click.BadParameter("；".join(messages), param_hint=hint.get(name, name)) from None
        raise click.ClickException(f"{exc.message} ({exc.error})") from None
    if output_format == "csv":
        return export.to_csv(data).decode("utf-8-sig")
    if output_format == "json":
        from .schemas import OverviewSchema

        return json.dumps(OverviewSchema().dump(data), ensure_ascii=False, indent=2)
    return export.to_table(data)
