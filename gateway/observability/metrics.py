"""Every metric and label name the gateway exports, in one place. Names are stable once released: SREs build
dashboards and alerts on them. Labels stay bounded (config names and fixed enums; never request ids, keys or
user data).

Metrics are recorded from the attempt list after a request (``record_request``), so the failover loop itself
does no metric work. Model availability and breaker state are read from the state store at scrape time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from gateway.failover.attempts import Attempt

REQUESTS_TOTAL = "gateway_requests_total"
UPSTREAM_ATTEMPTS_TOTAL = "gateway_upstream_attempts_total"
FAILOVERS_TOTAL = "gateway_failovers_total"
UPSTREAM_LATENCY = "gateway_upstream_latency_seconds"
TTFT = "gateway_time_to_first_token_seconds"
MODEL_AVAILABLE = "gateway_model_available"
BREAKER_STATE = "gateway_breaker_state"
FALLBACK_DEPTH = "gateway_route_fallback_depth"
STREAM_MALFORMED_TOTAL = "gateway_stream_malformed_events_total"
REFUSALS_TOTAL = "gateway_refusals_total"
POLICY_DENIALS_TOTAL = "gateway_policy_denials_total"
CONFIG_RELOADS_TOTAL = "gateway_config_reloads_total"
MODEL_WITHDRAWN = "gateway_model_withdrawn"
ROUTES_WITHOUT_HEALTHY_FALLBACK = "gateway_routes_without_healthy_fallback"
ROUTE_MODEL_INFO = "gateway_route_model_info"
AUDIT_QUEUE_DEPTH = "gateway_audit_queue_depth"
AUDIT_DROPPED_TOTAL = "gateway_audit_dropped_total"
STATE_STORE_UP = "gateway_state_store_up"
ROUTE_CLASSIFICATIONS_TOTAL = "gateway_route_classifications_total"

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_DEPTH_BUCKETS = (0, 1, 2, 3, 4, 5, 8)


class Metrics:
    """Owns a private registry (several gateways may live in one test process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(REQUESTS_TOTAL, "Client requests by route, HTTP status and inbound dialect "
                                "(chat_completions | anthropic_messages | responses).", ["route", "status", "dialect"],
                                registry=r)
        self.attempts = Counter(UPSTREAM_ATTEMPTS_TOTAL, "Upstream attempts by outcome (ok or failure kind).",
                                ["route", "model", "provider", "outcome"], registry=r)
        self.failovers = Counter(FAILOVERS_TOTAL, "Moves from one model to the next, by reason.",
                                 ["route", "from_model", "to_model", "reason"], registry=r)
        self.latency = Histogram(UPSTREAM_LATENCY, "Upstream attempt latency.", ["model"], buckets=_LATENCY_BUCKETS,
                                 registry=r)
        self.ttft = Histogram(TTFT, "Time from request to the first content token sent to the client.", ["model"],
                              buckets=_LATENCY_BUCKETS, registry=r)
        self.depth = Histogram(FALLBACK_DEPTH, "Position in the route's chain of the model that served (0=primary).",
                               ["route"], buckets=_DEPTH_BUCKETS, registry=r)
        self.malformed = Counter(STREAM_MALFORMED_TOTAL, "Undecodable upstream stream events that were skipped.",
                                 ["model"], registry=r)
        self.refusals = Counter(REFUSALS_TOTAL, "Provider refusals / safety blocks, by what the route did with them "
                                "(action: return | failover).", ["route", "model", "action"], registry=r)
        self.policy_denials = Counter(POLICY_DENIALS_TOTAL, "Candidates skipped (or requests refused) because a "
                                      "gateway policy denies them to the caller.", ["policy", "route"], registry=r)
        self.reloads = Counter(CONFIG_RELOADS_TOTAL, "Config reloads by result (ok | error).", ["result"],
                               registry=r)
        self.audit_queue_depth = Gauge(AUDIT_QUEUE_DEPTH, "Audit records waiting to be written.", registry=r)
        self.audit_dropped = Counter(AUDIT_DROPPED_TOTAL, "Audit records lost (queue full or write failed).",
                                     registry=r)
        self.state_store_up = Gauge(STATE_STORE_UP, "1 while live state is shared with the fleet (state.backend "
                                    "redis reachable; always 1 for the in-process memory store), else 0.", registry=r)
        self.state_store_up.set_function(lambda: 1.0)
        self.classifications = Counter(ROUTE_CLASSIFICATIONS_TOTAL, "Task classifier decisions for auto requests: "
                                       "route (the nearest route, or none), engine (builtin | embedding), outcome "
                                       "(matched | below_threshold | no_route).", ["route", "engine", "outcome"],
                                       registry=r)
        self._children: dict[tuple, Any] = {}
        # ``gateway serve --workers N`` sets PROMETHEUS_MULTIPROC_DIR: counters and histograms then live in files
        # shared by the workers (prometheus-client's multiprocess mode), so any worker answers for all of them.
        self._multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
        self._multiproc: CollectorRegistry | None = None

    def watch_routes(self, routes: Callable[[], Sequence[tuple[str, Sequence[str]]]],
                     usable: Callable[[str], bool]) -> None:
        """Register the scrape-time collector for ``gateway_routes_without_healthy_fallback`` (routes with at most
        one model usable now) and ``gateway_route_model_info{route,model,position}`` (the chains, for joins in
        alert rules). ``routes``: (route name, chain) pairs; ``usable``: model -> may be called now."""
        self.registry.register(_RouteCollector(routes, usable))

    def watch_withdrawn(self, withdrawn: Callable[[], Sequence[tuple[str, str, str]]]) -> None:
        """Register the scrape-time collector for ``gateway_model_withdrawn{model,provider,reason}`` (1 per model
        out of traffic; reason: operator | drill | withdrawn | access_denied)."""
        self.registry.register(_WithdrawnCollector(withdrawn))

    def watch_state(self, models: Callable[[], Sequence[tuple[str, str]]], available: Callable[[str], bool],
                    breaker: Callable[[str], int]) -> None:
        """Register the scrape-time collector for availability and breaker gauges."""
        self.registry.register(_StateCollector(models, available, breaker))

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, memoised: prometheus-client's own lookup costs a few us per call, and this
        runs several times per request. Label sets are bounded by config, so the cache is too."""
        key = (metric, labels)
        c = self._children.get(key)
        if c is None:
            c = self._children[key] = metric.labels(*labels)
        return c

    def record_request(self, route: str, status: int, attempts: Sequence[Attempt], chain: Sequence[str],
                       served: str | None, dialect: str = "chat_completions") -> None:
        child = self.child
        child(self.requests, route, str(status), dialect).inc()
        prev: Attempt | None = None
        last = len(attempts) - 1
        for i, a in enumerate(attempts):
            if a.contacted:
                child(self.attempts, route, a.model, a.provider, a.outcome).inc()
                child(self.latency, a.model).observe(a.latency)
                if a.outcome == "policy_blocked":
                    moved_on = i < last and attempts[i + 1].model != a.model
                    child(self.refusals, route, a.model, "failover" if moved_on else "return").inc()
            elif a.outcome.startswith("denied:"):
                child(self.policy_denials, a.outcome[len("denied:"):], route).inc()
            if prev is not None and prev.model != a.model and prev.outcome != "ok":
                child(self.failovers, route, prev.model, a.model, _reason(prev.outcome)).inc()
            prev = a
        if served is not None and served in chain:
            child(self.depth, route).observe(chain.index(served))

    def record_classification(self, verdict: Any) -> None:
        """One classifier decision (``gateway.routing.classify.Verdict``); labels are config names and enums."""
        self.child(self.classifications, verdict.candidate or "none", verdict.engine, verdict.outcome).inc()

    def exposition(self) -> bytes:
        if self._multiproc_dir is not None:
            return generate_latest(self._process_tree())
        return generate_latest(self.registry)

    def _process_tree(self) -> CollectorRegistry:
        """Counters and histograms summed over every worker that ever ran (files of dead workers stay: counters
        never go backwards), plus this worker's scrape-time gauges (state, withdrawals, routes, audit queue),
        which read state every worker shares."""
        if self._multiproc is None:
            from prometheus_client.multiprocess import MultiProcessCollector

            reg = CollectorRegistry(auto_describe=True)
            reg.register(_Families(MultiProcessCollector(None, path=self._multiproc_dir), gauges=False))
            reg.register(_Families(self.registry, gauges=True))
            self._multiproc = reg
        return self._multiproc


def _reason(outcome: str) -> str:
    # "skipped:withdrawn" -> "withdrawn"; "denied:<policy>" -> "denied" (policy names go to their own metric).
    if outcome.startswith("skipped:"):
        return outcome[len("skipped:") :]
    if outcome.startswith("denied:"):
        return "denied"
    return outcome


class _Families:
    """Only the gauge families of a collector (``gauges=True``: this worker's scrape-time gauges), or only the
    others (counters and histograms, from the multiprocess files)."""

    def __init__(self, collector: Any, gauges: bool) -> None:
        self._collector, self._gauges = collector, gauges

    def describe(self) -> list:
        return []

    def collect(self) -> Any:
        for family in self._collector.collect():
            if (family.type == "gauge") == self._gauges:
                yield family


class _StateCollector:
    def __init__(self, models: Callable[[], Sequence[tuple[str, str]]], available: Callable[[str], bool],
                 breaker: Callable[[str], int]) -> None:
        self._models, self._available, self._breaker = models, available, breaker

    def describe(self) -> list:
        return []

    def collect(self) -> Any:
        avail = GaugeMetricFamily(MODEL_AVAILABLE, "1 if the model may be called now, else 0.",
                                  labels=["model", "provider"])
        brk = GaugeMetricFamily(BREAKER_STATE, "Circuit breaker: 0 closed, 1 half-open, 2 open.", labels=["model"])
        for model, provider in self._models():
            avail.add_metric([model, provider], 1.0 if self._available(model) else 0.0)
            brk.add_metric([model], float(self._breaker(model)))
        yield avail
        yield brk


class _WithdrawnCollector:
    def __init__(self, withdrawn: Callable[[], Sequence[tuple[str, str, str]]]) -> None:
        self._withdrawn = withdrawn

    def describe(self) -> list:
        return []

    def collect(self) -> Any:
        g = GaugeMetricFamily(MODEL_WITHDRAWN, "1 for each model out of traffic, by reason "
                              "(operator | drill | withdrawn | access_denied).", labels=["model", "provider", "reason"])
        for model, provider, reason in self._withdrawn():
            g.add_metric([model, provider, reason], 1.0)
        yield g


class _RouteCollector:
    def __init__(self, routes: Callable[[], Sequence[tuple[str, Sequence[str]]]],
                 usable: Callable[[str], bool]) -> None:
        self._routes, self._usable = routes, usable

    def describe(self) -> list:
        return []

    def collect(self) -> Any:
        without = GaugeMetricFamily(ROUTES_WITHOUT_HEALTHY_FALLBACK, "Routes with at most one model usable now "
                                    "(no healthy fallback left).")
        info = GaugeMetricFamily(ROUTE_MODEL_INFO, "1 for each model in each route's chain (position 0 = primary).",
                                 labels=["route", "model", "position"])
        count = 0
        for route, chain in self._routes():
            usable = 0
            for i, model in enumerate(chain):
                info.add_metric([route, model, str(i)], 1.0)
                if usable < 2 and self._usable(model):
                    usable += 1
            if usable < 2:
                count += 1
        without.add_metric([], float(count))
        yield without
        yield info
