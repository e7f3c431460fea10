"""The audit log: one record per finished request, written off the request path.

``store`` holds the storage interface (``AuditStore``) and its SQLite backend; ``writer`` the bounded queue and
background batch writer; ``wiring`` the one object a ``Gateway`` owns (``Continuity``: audit + request log line +
continuity gauges). Nothing here is imported by the hot path except through ``Continuity.on_request``.
"""
