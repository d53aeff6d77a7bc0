"""GeoReport v2 documents in XML (the standard's required format) and JSON (its Spark mapping).

One Python structure per answer: lists become a parent element with one child per item
(`services` -> `service`, ...), None an empty element (JSON null), booleans `true`/`false`.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

from flask import current_app

# The child element of each list, as in the specification's examples.
ITEMS = {
    "services": "service", "service_requests": "request", "errors": "error", "attributes": "attribute",
    "values": "value", "endpoints": "endpoint", "formats": "format",
}
MIMETYPES = {"xml": "text/xml", "json": "application/json"}
# Characters XML 1.0 cannot carry at all (user text may hold them): dropped from XML output.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def to_xml(root: str, data) -> bytes:
    element = ET.Element(root)
    _fill(element, root, data)
    ET.indent(element)
    return ('<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(element, encoding="unicode") + "\n").encode()


def _fill(element, name: str, value) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            _fill(ET.SubElement(element, key), key, child)
    elif isinstance(value, (list, tuple)):
        item = ITEMS[name]
        for child in value:
            _fill(ET.SubElement(element, item), item, child)
    elif value is None:
        return
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    else:
        element.text = _NOT_XML.sub("", str(value))


def to_json(data) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode()


def document(fmt: str, root: str, data, status: int = 200, headers: dict | None = None):
    """The response in the asked format, UTF-8 as the standard requires."""
    body = to_xml(root, data) if fmt == "xml" else to_json(data)
    response = current_app.response_class(body, status=status, mimetype=MIMETYPES[fmt])
    response.charset = "utf-8"
    response.headers["Content-Type"] = f"{MIMETYPES[fmt]}; charset=utf-8"
    for key, value in (headers or {}).items():
        response.headers[key] = str(value)
    return response
