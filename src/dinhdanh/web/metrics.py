"""Operational counters, scraped at /metrics (no personal data in labels)."""

from prometheus_client import Counter

EVENTS = Counter("dinhdanh_life_events_total", "Life events recorded", ["kind"])
READS = Counter("dinhdanh_record_reads_total", "Reads of persons' records by officers", ["action"])
