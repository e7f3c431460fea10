"""Reports over the config and the audit log: ``gateway audit`` (dependency), ``gateway whatif``, ``gateway check
--strict``, ``gateway audit --diff``, ``gateway explain``. Imported only by those CLI subcommands (and the admin
API, lazily): never by the serving path at start-up. Every report is a pure function returning plain data, plus a
renderer (terminal table, markdown, json)."""
