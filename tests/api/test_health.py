"""Health, readiness, metrics, and 503 + Retry-After when the database or queue is down."""

from __future__ import annotations

from tests.photos import photo


def test_healthz_needs_no_token(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_checks_database_and_broker(client, monkeypatch):
    from pipeline.settings import settings

    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["database"] == "ok" and ready.json()["queue_depth"] == 0
    monkeypatch.setattr(settings, "broker_url", "redis://127.0.0.1:1/0")
    down = client.get("/readyz")
    assert down.status_code == 503 and down.headers["retry-after"]
    assert down.json()["broker"] != "ok"


def test_metrics_report_uploads_scans_and_queue(client, make_user):
    alice = make_user()
    client.post("/v1/scans", files={"file": ("a.jpg", photo(30), "image/jpeg")}, headers=alice)
    text = client.get("/metrics").text
    assert 'cardscan_scans{status="pending"} 1.0' in text
    assert "cardscan_uploads 1.0" in text
    assert "cardscan_queue_depth 1.0" in text
    assert 'cardscan_upload_requests_total{outcome="created"}' in text


def test_queue_down_is_503_and_the_scan_is_queued_on_retry(client, make_user, monkeypatch):
    from db import jobs
    from db.pool import connection
    from pipeline.enqueue import queue_depth
    from pipeline.settings import settings

    alice = make_user()
    monkeypatch.setattr(settings, "broker_url", "redis://127.0.0.1:1/0")
    down = client.post(
        "/v1/scans", files={"file": ("a.jpg", photo(31), "image/jpeg")}, headers=alice
    )
    assert down.status_code == 503, down.text
    assert down.json()["code"] == "queue_unavailable" and int(down.headers["retry-after"]) > 0
    monkeypatch.setattr(settings, "broker_url", None)
    again = client.post(
        "/v1/scans", files={"file": ("a.jpg", photo(31), "image/jpeg")}, headers=alice
    )
    assert again.status_code == 200  # saved the first time; this time it reached the queue
    assert queue_depth() == 1
    with connection() as conn:
        job = jobs.latest_job(conn, scan_id=again.json()["scan_id"])
    assert job.celery_task_id is not None


def test_database_down_is_503_without_traceback(client, make_user, monkeypatch):
    from db import pool
    from db.settings import settings

    alice = make_user()
    pool.close_pool()
    monkeypatch.setattr(settings, "database_url", "postgresql://postgres@127.0.0.1:1/none")
    monkeypatch.setattr(settings, "pool_timeout_s", 0.5)
    monkeypatch.setattr(settings, "connect_timeout_s", 1)
    try:
        response = client.get("/v1/scans", headers=alice)
        assert response.status_code == 503
        assert response.json() == {
            "detail": "the database is unavailable; try again shortly",
            "code": "database_unavailable",
        }
        assert response.headers["retry-after"]
        assert client.get("/readyz").status_code == 503
    finally:
        pool.close_pool()
