"""GET /metrics: the Prometheus text format, for admin keys (`Authorization: Bearer <admin key>`).

On the API's own address, behind the same keys as everything else, rather than on a second listener:
one port to expose and firewall, and the scrape sees exactly the workers that serve. Counters and
histograms are the workers' (service/metrics.py; under `leadgate serve` every worker's, added up from
PROMETHEUS_MULTIPROC_DIR); the gauges are read from the audit trail at scrape time (audit/gauges.py).
"""

from __future__ import annotations

from flask import Blueprint, Response

from audit import gauges
from service import metrics

from .auth import check_key, requires
from .state import trail

bp = Blueprint("metrics", __name__)
bp.before_request(check_key)


class _TrailCollector:
    """The gauges and totals that the trail holds, read once per scrape."""

    def __init__(self, opened):
        self.trail = opened

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        handoffs = gauges.handoffs(self.trail)
        for name, help_text in (
            ("open", "Hand-offs not yet acted on, by team"),
            ("overdue", "Open hand-offs past their due time, by team"),
        ):
            family = GaugeMetricFamily(f"leadgate_handoffs_{name}", help_text, labels=["team"])
            for team, counts in sorted(handoffs.items()):
                family.add_metric([team], counts[name])
            yield family
        family = GaugeMetricFamily(
            "leadgate_deliveries", "Webhook deliveries: pending, retrying (pending, last attempt failed), dead",
            labels=["status"],
        )  # fmt: skip
        for status, count in gauges.deliveries(self.trail).items():
            family.add_metric([status], count)
        yield family
        reloads = gauges.reloads(self.trail)
        yield CounterMetricFamily("leadgate_reloads", "Ruleset reloads recorded", value=reloads["reloads"])
        yield CounterMetricFamily(
            "leadgate_refused_files", "Ruleset files refused by reloads", value=reloads["refused_files"]
        )
        family = GaugeMetricFamily(
            "leadgate_audit_file_bytes", "Size of the audit file and its write-ahead log", labels=["file"]
        )
        for name, size in gauges.file_sizes(self.trail).items():
            family.add_metric([name], size)
        yield family


@bp.get("/metrics")
@requires("admin")
def scrape():
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    made = metrics.instruments()
    registry = CollectorRegistry()
    if made.registry is None:
        MultiProcessCollector(registry)
    registry.register(_TrailCollector(trail()))
    body = generate_latest(registry)
    if made.registry is not None:
        body = generate_latest(made.registry) + body
    return Response(body, content_type=CONTENT_TYPE_LATEST)
