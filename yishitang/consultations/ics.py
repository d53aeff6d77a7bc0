"""A session as an iCalendar (RFC 5545) event that phone calendars import.

Written by hand: one VEVENT needs only escaping, UTC times and line folding, which is less than
a runtime dependency would cost. The tests parse the output with the `icalendar` library.
"""

from __future__ import annotations

import datetime as dt
import re

from ..db import as_utc
from ..jsonbody import HIDDEN
from .models import FORMAT_NAMES

LINE_BREAKS = re.compile("\r\n|[\r\x0b\x0c\x85\u2028\u2029]")
LINE_OCTETS = 75  # RFC 5545 3.1: longer lines are folded, continuation lines start with a space


def escape(text: str | None) -> str:
    """TEXT values (RFC 5545 3.3.11): backslash, semicolon, comma and newlines escaped; other line
    breaks (NEL, U+2028, U+2029) become newlines, other control and hidden characters go (stored
    before the API refused them, they would end a line early or break the calendar's parser)."""
    text = LINE_BREAKS.sub("\n", text or "")
    text = HIDDEN.sub("", text).replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return text.replace("\r\n", "\\n").replace("\r", "\\n").replace("\n", "\\n")


def fold(line: str) -> str:
    """Split a content line into lines of at most 75 octets, never inside a UTF-8 character."""
    lines, current, size = [], "", 0
    for char in line:
        octets = len(char.encode("utf-8"))
        if size + octets > LINE_OCTETS:
            lines.append(current)
            current, size = " ", 1
        current += char
        size += octets
    lines.append(current)
    return "\r\n".join(lines)


def utc(value: dt.datetime) -> str:
    return as_utc(value).astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def calendar(c, host_name: str | None = None) -> str:
    description = "\n".join(filter(None, [
        c.description, f"形式：{FORMAT_NAMES[c.format]}", f"主持：{host_name}" if host_name else None,
        "来自议事堂小程序"]))
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Yishitang//Consultations//ZH",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:consultation-{c.id}@yishitang",
        f"DTSTAMP:{utc(c.updated_at)}",
        f"SEQUENCE:{c.version - 1}",  # calendars replace an imported event with a higher sequence
        f"DTSTART:{utc(c.starts_at)}",
        f"DTEND:{utc(c.ends_at)}",
        f"SUMMARY:{escape('民生议事堂：' + c.topic)}",
        f"LOCATION:{escape(c.location)}",
        f"DESCRIPTION:{escape(description)}",
        f"STATUS:{'CANCELLED' if c.status == 'cancelled' else 'CONFIRMED'}",
        "BEGIN:VALARM",
        "ACTION:DISPLAY",
        "TRIGGER:-PT1H",
        f"DESCRIPTION:{escape(c.topic)}",
        "END:VALARM",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(fold(line) + "\r\n" for line in lines)
