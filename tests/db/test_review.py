"""The review queue: leases under concurrency, lease expiry, and what each decision writes."""

from __future__ import annotations

import threading
import time

import pytest

from db import review
from db.inventory import Condition, list_entries
from db.pool import connection
from db.users import Role
from tests.scan_rows import make_scan, make_user

KEYS = ["dsk-1", "dsk-10", "dsk-100", "sv3pt5-1", "sv3pt5-2"]


@pytest.fixture
def people(clean_db, catalog):
    with connection() as conn, conn.transaction():
        owner, _ = make_user(conn)
        annotators = [make_user(conn, role=Role.ANNOTATOR)[0] for _ in range(6)]
    return owner, annotators


def _queue(owner, n: int) -> list:
    cards = [{"card_key": KEYS[i % len(KEYS)], "confidence": 0.30 + 0.01 * i} for i in range(n)]
    with connection() as conn, conn.transaction():
        _, ids = make_scan(conn, user_id=owner.id, cards=cards)
    return ids


def _lease(annotator_id, **kw):
    with connection() as conn, conn.transaction():
        return review.lease_next(conn, annotator_id=annotator_id, **kw)


def test_concurrent_annotators_never_get_the_same_card(people):
    owner, annotators = people
    ids = _queue(owner, 6)
    barrier = threading.Barrier(len(annotators))
    got: dict[int, object] = {}

    def ask(i: int) -> None:
        barrier.wait()
        card = _lease(annotators[i].id)
        got[i] = card.id if card else None

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(annotators))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    leased = [v for v in got.values() if v is not None]
    assert len(leased) == len(set(leased))
    assert set(leased) <= set(ids)


def test_two_annotators_draining_the_queue_split_it(people):
    owner, annotators = people
    ids = _queue(owner, 24)
    done: dict[str, list] = {"a": [], "b": []}
    errors: list[Exception] = []

    def work(name: str, annotator) -> None:
        try:
            while True:
                with connection() as conn, conn.transaction():
                    card = review.lease_next(conn, annotator_id=annotator.id)
                    if card is None:
                        return
                    review.confirm(
                        conn,
                        scan_card_id=card.id,
                        annotator_id=annotator.id,
                        card_key=None,
                        condition=Condition.NEAR_MINT,
                        quantity=1,
                    )
                done[name].append(card.id)
        except Exception as exc:  # surfaced below: a thread's exception is otherwise lost
            errors.append(exc)

    pairs = zip("ab", annotators[:2], strict=True)
    threads = [threading.Thread(target=work, args=pair) for pair in pairs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert not set(done["a"]) & set(done["b"])
    assert sorted(map(str, done["a"] + done["b"])) == sorted(map(str, ids))


def test_lowest_confidence_comes_first_and_a_held_card_comes_back(people):
    owner, (a, b, *_) = people
    ids = _queue(owner, 3)
    first = _lease(a.id)
    assert first.id == ids[0]  # confidence 0.30
    assert _lease(a.id).id == first.id  # a reloaded page gets its card again
    assert _lease(b.id).id == ids[1]


def test_an_expired_lease_returns_the_card_to_the_queue(people):
    owner, (a, b, *_) = people
    [only] = _queue(owner, 1)
    assert _lease(a.id, lease_s=0.3).id == only
    assert _lease(b.id) is None
    time.sleep(0.4)
    assert _lease(b.id).id == only
    with connection() as conn, conn.transaction(), pytest.raises(review.ReviewConflict):
        review.confirm(
            conn,
            scan_card_id=only,
            annotator_id=a.id,
            card_key=None,
            condition=Condition.NEAR_MINT,
            quantity=1,
        )


def test_skip_passes_the_card_over_for_that_annotator_only(people):
    owner, (a, b, *_) = people
    ids = _queue(owner, 2)
    first = _lease(a.id)
    with connection() as conn, conn.transaction():
        review.release(conn, scan_card_id=first.id, annotator_id=a.id)
    assert _lease(a.id).id == ids[1]
    assert _lease(b.id).id == ids[0]


def _rows(sql: str, **params) -> list[dict]:
    with connection() as conn:
        return conn.execute(sql, params).fetchall()


def test_confirming_the_top_candidate_writes_audit_and_inventory_but_no_training(people):
    owner, (a, *_) = people
    [sc] = _queue(owner, 1)
    with connection() as conn, conn.transaction():
        out = review.confirm(
            conn,
            scan_card_id=sc,
            annotator_id=a.id,
            card_key=None,
            condition=Condition.LIGHTLY_PLAYED,
            quantity=2,
        )
    assert out.status == review.ReviewStatus.CONFIRMED and out.training_kind is None
    [row] = _rows(
        "SELECT review_status, reviewed_by, saved_to_inventory, inventory_entry_id "
        "FROM scan_cards WHERE id = %(id)s",
        id=sc,
    )
    assert row["review_status"] == "confirmed" and row["reviewed_by"] == a.id
    assert row["saved_to_inventory"] and row["inventory_entry_id"] == out.inventory_entry_id
    assert _rows("SELECT * FROM training_examples") == []
    [log] = _rows("SELECT * FROM audit_log WHERE action = 'scan_card.confirm'")
    assert log["actor_user_id"] == a.id and log["after"]["card_key"] == "dsk-1"
    with connection() as conn:
        [entry] = list_entries(conn, user_id=owner.id)
    assert (entry.card_key, entry.quantity, entry.condition) == ("dsk-1", 2, "lightly_played")


@pytest.mark.parametrize(
    ("chosen", "kind"),
    [
        ("dsk-10", review.TrainingKind.NON_TOP_CONFIRMATION),
        ("sv3pt5-2", review.TrainingKind.CORRECTION),
    ],
)
def test_anything_but_the_top_candidate_becomes_a_training_example(people, chosen, kind):
    owner, (a, *_) = people
    cands = [{"card_key": "dsk-1", "score": 0.6}, {"card_key": "dsk-10", "score": 0.5}]
    with connection() as conn, conn.transaction():
        card = {"card_key": "dsk-1", "confidence": 0.6, "candidates": cands}
        _, [sc] = make_scan(conn, user_id=owner.id, cards=[card], crop_keys=["crops/x.jpg"])
        out = review.confirm(
            conn,
            scan_card_id=sc,
            annotator_id=a.id,
            card_key=chosen,
            condition=Condition.NEAR_MINT,
            quantity=1,
        )
    assert out.status == review.ReviewStatus.CORRECTED and out.training_kind == kind
    [ex] = _rows(
        "SELECT t.kind, t.crop_key, c.card_key, p.card_key AS predicted "
        "FROM training_examples t JOIN cards c ON c.id = t.card_id "
        "JOIN cards p ON p.id = t.predicted_card_id"
    )
    assert ex == {
        "kind": str(kind),
        "crop_key": "crops/x.jpg",
        "card_key": chosen,
        "predicted": "dsk-1",
    }
    assert _rows("SELECT action FROM audit_log") == [{"action": "scan_card.correct"}]


def test_reject_writes_no_inventory_and_a_second_decision_conflicts(people):
    owner, (a, *_) = people
    [sc] = _queue(owner, 1)
    with connection() as conn, conn.transaction():
        review.reject(conn, scan_card_id=sc, annotator_id=a.id, reason="not a card")
    assert _rows("SELECT * FROM inventory_entries") == []
    assert [r["kind"] for r in _rows("SELECT kind FROM training_examples")] == ["rejection"]
    with connection() as conn, conn.transaction(), pytest.raises(review.ReviewConflict):
        review.confirm(
            conn,
            scan_card_id=sc,
            annotator_id=a.id,
            card_key=None,
            condition=Condition.NEAR_MINT,
            quantity=1,
        )
    assert _lease(a.id) is None
