"""Open311 GeoReport v2: outside civic-tech tools read public issues and file new ones.

`/open311/v2/...` speaks the GeoReport v2 standard (XML and JSON, its own error shape) and lives
outside the OpenAPI contract; the admin routes that issue api keys to integrations live under
`/api/v1/integrations` with the rest of the API.
"""
