"""The overview as people hand it on: CSV (Excel opens it), XLSX, and a table for the terminal.

Every format shows the numbers of the JSON: counts as they are; rates as percentages with one
decimal in CSV and the terminal (83.3 means 0.8333 in JSON), and as the JSON fraction itself in
XLSX, formatted `0.0%` (so Excel shows 83.3% and computes with the fraction).
"""

from __future__ import annotations

import csv
import io
import unicodedata
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import quote

from flask import Response

from .service import GROUP_NAMES

RATE_COLUMNS = ("response_rate", "meeting_rate", "closure_rate", "satisfaction_rate")
# (field, Chinese header); the first column's header names the grouping (镇街, 委员工作室, ...).
COLUMNS = [
    ("received", "收到议题"),
    ("response_rate", "答复率(%)"), ("meeting_rate", "见面率(%)"), ("closure_rate", "办结率(%)"),
    ("satisfaction_rate", "满意率(%)"), ("median_days_to_close", "办结天数中位数"),
    ("overdue_open", "超期未办结"), ("escalated", "上报"), ("supervised", "督办"),
    ("responded_in_time", "按期答复"), ("response_base", "应答复"), ("response_pending", "待答复(未到期)"),
    ("withdrawn_before_response", "答复前撤回"), ("duplicate_before_response", "答复前并案"),
    ("accepted", "已受理"), ("met", "已见面"), ("closed", "已办结"), ("rated", "已评价"),
    ("satisfied", "满意"), ("basically_satisfied", "基本满意"), ("unsatisfied", "不满意"),
]
RATE_NUMBERS = {  # for the terminal: rate -> (numerator fields, denominator field)
    "response_rate": (("responded_in_time",), "response_base"),
    "meeting_rate": (("met",), "accepted"),
    "closure_rate": (("closed",), "accepted"),
    "satisfaction_rate": (("satisfied", "basically_satisfied"), "rated"),
}
DEFINITIONS = [
    ("收到议题", "期间内创建的议题（地区及其下级）"),
    ("答复率", "按期（受理或不予受理，距提交不超过答复期限）答复数 ÷ 应答复数；答复前撤回或并案的不计，未答复且未到期的暂不计"),
    ("见面率", "已受理议题中有当面接触（走访记录或召开的议事会）的比例"),
    ("办结率", "已受理议题中已关闭（办结）的比例；并案关闭的不计"),
    ("满意率", "（满意 + 基本满意）÷ 已评价数，取居民最近一次评价"),
    ("办结天数中位数", "已办结议题从提交到关闭的天数中位数"),
    ("超期未办结", "统计时仍未办结且已过期限的议题数"),
    ("上报", "至少上报过一次的议题数（每件只计一次，计入其所在地区）"),
    ("督办", "被督办的议题数"),
]


def percent(value: float | None) -> str:
    if value is None:
        return ""
    return str((Decimal(str(value)) * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _headers(data: dict) -> list[str]:
    first = [GROUP_NAMES[data["group_by"]], "代码"]
    return first + (["名次"] if data["rank"] else []) + [header for _field, header in COLUMNS]


def _text(value: str) -> str:
    """A name never becomes a spreadsheet formula (CSV/formula injection): lead with a quote."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _cells(data: dict, row: dict, *, rates_as) -> list:
    values = [_text(row["name"]), row["group"] or ""] + ([row["rank"] if row["rank"] is not None else ""] if data["rank"] else [])
    for field, _header in COLUMNS:
        value = row[field]
        if field in RATE_COLUMNS:
            values.append(rates_as(value))
        else:
            values.append("" if value is None else value)
    return values


def _rows(data: dict) -> list[dict]:
    return [*data["rows"], data["totals"]]


def filename(data: dict, extension: str) -> tuple[str, str]:
    """(ASCII fallback, Chinese name) of the download."""
    period = f"{data['date_from'].isoformat()}_{data['date_to'].isoformat()}"
    return (f"yishitang-stats-{data['region']['code']}-{period}.{extension}",
            f"{data['region']['name']}议题统计_{period}.{extension}")


def attachment(body: bytes, mimetype: str, data: dict, extension: str) -> Response:
    ascii_name, name = filename(data, extension)
    response = Response(body, mimetype=mimetype)
    # RFC 6266 / 5987: a plain fallback for old clients, the UTF-8 name for everyone else.
    response.headers["Content-Disposition"] = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
    response.headers["Cache-Control"] = "no-store"
    return response


def to_csv(data: dict) -> bytes:
    """UTF-8 with a BOM, so Excel reads the Chinese headers; rates in percent with one decimal."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(_headers(data))
    for row in _rows(data):
        writer.writerow(_cells(data, row, rates_as=percent))
    return buffer.getvalue().encode("utf-8-sig")


def to_xlsx(data: dict) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    book = Workbook()
    sheet = book.active
    sheet.title = "统计"
    headers = _headers(data)
    sheet.append(headers)
    for row in _rows(data):
        sheet.append(_cells(data, row, rates_as=lambda value: value))
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="E8EEF7")
    for cell in sheet[1]:
        cell.font, cell.fill = bold, fill
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    for cell in sheet[sheet.max_row]:
        cell.font = bold
    for index, header in enumerate(headers, start=1):
        letter = get_column_letter(index)
        sheet.column_dimensions[letter].width = 24 if index == 1 else max(9, _width(header) + 2)
        if header.endswith("率(%)"):
            sheet.cell(row=1, column=index).value = header.removesuffix("(%)")
            for cell in sheet[letter][1:]:
                cell.number_format = "0.0%"
        elif header == "办结天数中位数":
            for cell in sheet[letter][1:]:
                cell.number_format = "0.0"
    sheet.freeze_panes = "B2"

    notes = book.create_sheet("说明")
    notes.append(["地区", f"{data['region']['name']}（{data['region']['code']}）"])
    notes.append(["期间（按议题提交日期）", f"{data['date_from'].isoformat()} 至 {data['date_to'].isoformat()}（{data['time_zone']}）"])
    notes.append(["分组", GROUP_NAMES[data["group_by"]]])
    notes.append(["生成时间", data["generated_at"].isoformat(timespec="seconds")])
    if data["rank"]:
        left_out = "、".join(f"{g['name']}（{g['received']} 件）" for g in data["excluded"]) or "无"
        notes.append(["排名", f"按 {data['rank']} 排名；议题少于 {data['min_issues']} 件的不参与排名：{left_out}"])
    notes.append([])
    for term, meaning in DEFINITIONS:
        notes.append([term, meaning])
    notes.column_dimensions["A"].width = 22
    notes.column_dimensions["B"].width = 100
    for row in notes.iter_rows():
        row[0].font = bold
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


# --- the terminal --------------------------------------------------------------------------------

def _width(text: str) -> int:
    """Columns a string takes in a terminal: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, left: bool) -> str:
    gap = " " * (width - _width(text))
    return text + gap if left else gap + text


def _terminal_rate(row: dict, rate: str) -> str:
    if row[rate] is None:
        return "—"
    numerators, denominator = RATE_NUMBERS[rate]
    return f"{percent(row[rate])}% ({sum(row[n] for n in numerators)}/{row[denominator]})"


def to_table(data: dict) -> str:
    """The overview as aligned text with Chinese headers."""
    headers = [GROUP_NAMES[data["group_by"]]] + (["名次"] if data["rank"] else []) + [
        "收到议题", "答复率", "见面率", "办结率", "满意率", "办结天数中位数", "超期未办结", "上报", "督办"]
    lines = []
    for row in _rows(data):
        median = row["median_days_to_close"]
        lines.append([row["name"]] + ([str(row["rank"] or "—")] if data["rank"] else []) + [
            str(row["received"]), *(_terminal_rate(row, rate) for rate in RATE_COLUMNS),
            "—" if median is None else f"{median:.1f}", str(row["overdue_open"]), str(row["escalated"]),
            str(row["supervised"])])
    widths = [max(_width(text) for text in column) for column in zip(headers, *lines)]

    def line(values):
        return "  ".join(_pad(v, w, left=(i == 0)) for i, (v, w) in enumerate(zip(values, widths))).rstrip()

    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    title = (f"{data['region']['name']}（{data['region']['code']}）  "
             f"{data['date_from'].isoformat()} 至 {data['date_to'].isoformat()}  按{GROUP_NAMES[data['group_by']]}")
    out = [title, "", line(headers), rule, *(line(values) for values in lines[:-1]), rule, line(lines[-1])]
    if data["rank"] and data["excluded"]:
        out.append("")
        out.append(f"议题少于 {data['min_issues']} 件、未参与排名：" +
                   "、".join(f"{g['name']}（{g['received']}）" for g in data["excluded"]))
    return "\n".join(out)
