"""app.metrics: the instruments, all bigru_*, on a registry of each app's own; rendered as this
process's values, or with several server processes, their sum."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from app.metrics import Metrics
from tests.helpers import ROOT


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(name, labels) -> value of each sample of an exposition text."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def test_every_instrument_is_named_bigru() -> None:
    names = [family.name for family in Metrics().registry.collect()]
    assert len(names) == 7 and all(name.startswith("bigru_") for name in names), names


def test_each_app_counts_on_a_registry_of_its_own() -> None:
    one, other = Metrics(), Metrics()  # on one global registry the second would be refused
    one.requests.labels("/tag", "200", "bigru-en").inc()
    one.queue_size.set(3)
    labels = {"route": "/tag", "status": "200", "model": "bigru-en"}
    assert one.registry.get_sample_value("bigru_requests_total", labels) == 1
    assert other.registry.get_sample_value("bigru_requests_total", labels) is None
    assert other.registry.get_sample_value("bigru_queue_size") == 0


def test_render_gives_this_processs_values_in_the_exposition_format() -> None:
    metrics = Metrics()
    metrics.requests.labels("/embed", "429", "").inc(2)
    metrics.batch_size.labels("mine").observe(3)
    metrics.batch_tokens.labels("mine").observe(3 * 40)
    metrics.ort_runs.labels("tag", "mine").inc()
    body, content_type = metrics.render()
    assert content_type == CONTENT_TYPE_LATEST
    values = samples(body)
    route = (("model", ""), ("route", "/embed"), ("status", "429"))
    assert values["bigru_requests_total", route] == 2
    assert values["bigru_ort_runs_total", (("model", "mine"), ("task", "tag"))] == 1
    # 3 sentences fall in the bucket of at most 4, not in that of at most 2
    assert values["bigru_batch_size_bucket", (("le", "4.0"), ("model", "mine"))] == 1
    assert values["bigru_batch_size_bucket", (("le", "2.0"), ("model", "mine"))] == 0
    assert values["bigru_batch_tokens_sum", (("model", "mine"),)] == 120


@pytest.mark.slow
def test_with_several_processes_render_adds_up_all_of_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each server process writes its values to files in PROMETHEUS_MULTIPROC_DIR (where
    prometheus_client finds the directory when it is imported); any of them renders the sum."""
    count = "from app.metrics import Metrics; Metrics().requests.labels('/tag', '200', 'm').inc(2)"
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", count], cwd=ROOT, env=env, check=True, timeout=60)
    assert len(list(tmp_path.glob("counter_*.db"))) == 2  # one file per process
    labels = (("model", "m"), ("route", "/tag"), ("status", "200"))
    assert ("bigru_requests_total", labels) not in samples(Metrics().render()[0])
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    body, content_type = Metrics().render()
    assert content_type == CONTENT_TYPE_LATEST
    assert samples(body)["bigru_requests_total", labels] == 4
