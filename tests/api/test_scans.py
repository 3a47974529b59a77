"""POST/GET/DELETE /v1/scans against the real database and a filesystem broker."""

from __future__ import annotations

import uuid

from tests.photos import bomb_png, corrupt_jpeg, photo, text_as_jpg


def upload(client, headers, data: bytes, name: str = "photo.jpg", **kwargs):
    return client.post(
        "/v1/scans", files={"file": (name, data, "image/jpeg")}, headers=headers, **kwargs
    )


def test_upload_answers_202_with_status_url_and_queues_the_scan(client, make_user):
    from pipeline.enqueue import queue_depth

    alice = make_user()
    response = upload(client, alice, photo(1))
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status_url"].endswith(f"/v1/scans/{body['scan_id']}")
    assert queue_depth() == 1
    scan = client.get(body["status_url"], headers=alice).json()
    assert scan["status"] == "pending"
    assert scan["cards"] == [] and scan["error"] is None


def test_same_photo_twice_is_one_scan(client, make_user):
    from db.pool import connection

    alice = make_user()
    first = upload(client, alice, photo(2))
    again = upload(client, alice, photo(2), name="renamed.png")
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["scan_id"] == again.json()["scan_id"]
    with connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM scans").fetchone()["n"] == 1
        assert conn.execute("SELECT count(*) AS n FROM uploads").fetchone()["n"] == 1


def test_same_photo_from_another_user_is_their_own_scan(client, make_user):
    alice, bob = make_user("alice"), make_user("bob")
    a = upload(client, alice, photo(3)).json()["scan_id"]
    response = upload(client, bob, photo(3))
    assert response.status_code == 202
    assert response.json()["scan_id"] != a


def test_idempotency_key_returns_the_scan_and_refuses_other_bytes(client, make_user):
    alice = make_user()
    key = {"Idempotency-Key": "retry-123", **alice}
    first = upload(client, key, photo(4))
    assert first.status_code == 202
    assert upload(client, key, photo(4)).json()["scan_id"] == first.json()["scan_id"]
    conflict = upload(client, key, photo(5))
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "conflict"


def test_another_users_scan_is_404(client, make_user):
    alice, bob = make_user("alice"), make_user("bob")
    scan_id = upload(client, alice, photo(6)).json()["scan_id"]
    for method, path in [
        ("GET", f"/v1/scans/{scan_id}"),
        ("DELETE", f"/v1/scans/{scan_id}"),
        ("GET", f"/v1/scans/{scan_id}/cards/0/crop"),
    ]:
        response = client.request(method, path, headers=bob)
        assert response.status_code == 404, (method, path)
        assert response.json()["code"] == "not_found"
    assert client.get("/v1/scans", headers=bob).json()["total"] == 0
    assert client.get(f"/v1/scans/{scan_id}", headers=alice).status_code == 200


def test_list_is_paginated_and_filtered_by_status(client, make_user):
    alice = make_user()
    ids = [upload(client, alice, photo(10 + i)).json()["scan_id"] for i in range(5)]
    page = client.get("/v1/scans", params={"limit": 2, "offset": 1}, headers=alice).json()
    assert page["total"] == 5 and page["limit"] == 2 and len(page["items"]) == 2
    assert [i["id"] for i in page["items"]] == list(reversed(ids))[1:3]
    pending = client.get("/v1/scans", params={"status": "pending"}, headers=alice).json()
    assert pending["total"] == 5
    done = client.get("/v1/scans", params={"status": "completed"}, headers=alice).json()
    assert done["total"] == 0
    assert client.get("/v1/scans", params={"status": "nope"}, headers=alice).status_code == 422


def test_delete_hides_the_scan_and_allows_a_new_upload(client, make_user):
    alice = make_user()
    scan_id = upload(client, alice, photo(7)).json()["scan_id"]
    assert client.delete(f"/v1/scans/{scan_id}", headers=alice).status_code == 204
    assert client.get(f"/v1/scans/{scan_id}", headers=alice).status_code == 404
    assert client.delete(f"/v1/scans/{scan_id}", headers=alice).status_code == 404
    assert client.get("/v1/scans", headers=alice).json()["total"] == 0
    again = upload(client, alice, photo(7))
    assert again.status_code == 202 and again.json()["scan_id"] != scan_id


def test_bad_uploads_get_clear_4xx(client, make_user, monkeypatch):
    from pipeline.settings import settings

    alice = make_user()
    cases = {
        "empty": (b"", 422, "empty_upload"),
        "text named .jpg": (text_as_jpg(), 415, "unsupported_media_type"),
        "30000x30000 bomb": (bomb_png(), 413, "image_too_large"),
    }
    for label, (data, status, code) in cases.items():
        response = upload(client, alice, data)
        assert (response.status_code, response.json()["code"]) == (status, code), label
        assert "Traceback" not in response.text
    monkeypatch.setattr(settings, "max_upload_bytes", 50_000)
    big = photo(8, size=(600, 600), fmt="PNG")
    assert len(big) > 50_000
    response = upload(client, alice, big)
    assert (response.status_code, response.json()["code"]) == (413, "image_too_large")
    # Decodable header, broken body: accepted here, failed by the worker with a reason.
    assert upload(client, alice, corrupt_jpeg()).status_code == 202
    missing = client.post("/v1/scans", headers=alice)
    assert (missing.status_code, missing.json()["code"]) == (422, "invalid_request")


def test_oversize_body_is_refused_before_it_is_read(client, make_user):
    from pipeline.settings import settings

    alice = make_user()
    data = b"\xff\xd8\xff" + b"\0" * (settings.max_upload_bytes + 100_000)
    response = upload(client, alice, data)
    assert (response.status_code, response.json()["code"]) == (413, "image_too_large")


def test_chunked_body_over_the_limit_is_cut_off(client, make_user, monkeypatch):
    from pipeline.settings import settings

    monkeypatch.setattr(settings, "max_upload_bytes", 10_000)
    boundary = "cardscan-boundary"

    def body():  # no Content-Length: the limit must be counted as the bytes arrive
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="big.jpg"\r\n\r\n'
        ).encode()
        for _ in range(200):
            yield b"\xff" * 1024
        yield f"\r\n--{boundary}--\r\n".encode()

    response = client.post(
        "/v1/scans",
        content=body(),
        headers={**make_user(), "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert (response.status_code, response.json()["code"]) == (413, "image_too_large")
    assert response.json()["detail"] == "the upload is over the 10000-byte limit"  # cut off


def test_unknown_scan_and_bad_ids(client, make_user):
    alice = make_user()
    assert client.get(f"/v1/scans/{uuid.uuid4()}", headers=alice).status_code == 404
    bad = client.get("/v1/scans/not-a-uuid", headers=alice)
    assert bad.status_code == 422 and set(bad.json()) == {"detail", "code"}
