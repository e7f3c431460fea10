"""Live state shared by the workers and replicas of a fleet.

``store`` holds the async ``SharedStore`` interface and its two backends (``MemoryHub``: one process, also the
in-process double the unit tests use for "several workers"; ``RedisStore``: the fleet). ``live`` holds
``FleetState``, the local cache the hot path reads (a ``MemoryStateStore`` that also honours marks other workers
published). ``fleet`` holds ``Fleet``, the service that connects the two: subscription, heartbeats, kill-switch
propagation with acknowledgements, resync after an outage. ``ratelimit`` holds the fleet-wide per-key limiter.
"""
