"""EVAL.md scoring: predictions claim label tokens in confidence order; hand-computed cases."""

from __future__ import annotations

import pytest

from scripts.eval_cmd import group_of, parse_tokens, score_photo, score_run, summarize


def card(key, decision="auto_accepted", conf=0.99, candidates=None):  # noqa: ANN001, ANN201
    return {
        "card_key": key,
        "decision": decision,
        "confidence": conf,
        "candidates": candidates or ([{"card_key": key, "score": conf}] if key else []),
    }


def rec(photo, cards, ms=100.0, status="completed"):  # noqa: ANN001, ANN201
    return {"photo": photo, "status": status, "error": None, "elapsed_ms": ms, "cards": cards}


def label(photo, cards, n=None, exact=1):  # noqa: ANN001, ANN201
    n = len([t for t in cards.split(";") if t]) if n is None else n
    return {"photo": photo, "n_cards": str(n), "count_exact": str(exact), "cards": cards}


def test_tokens_alternatives_and_unknowns():
    assert parse_tokens("dsk-194; woe-262|WOE-267 ;?Liliana of the Veil;") == [
        {"dsk-194"},
        {"woe-262", "woe-267"},
        None,
    ]


def test_group_is_first_folder_under_images():
    assert group_of("images/dsk_nextdoorpsycho/IMG_1.jpg") == "dsk_nextdoorpsycho"
    assert group_of("images/00001.jpg") == "images"


def test_alternative_printing_counts_as_right():
    s = score_photo(
        label("images/a/1.jpg", "woe-262|woe-267"), rec("images/a/1.jpg", [card("woe-267")])
    )
    assert (s.top1_right, s.auto_right, s.auto, s.wrong) == (1, 1, 1, [])


def test_accepting_a_card_not_in_the_catalog_is_a_false_accept():
    lab = label("images/a/1.jpg", "?Liliana of the Veil;dsk-1")
    r = rec("images/a/1.jpg", [card("dsk-1", conf=0.98), card("dsk-2", conf=0.99)])
    s = score_photo(lab, r)
    assert s.catalog_cards == 1 and s.top1_right == 1 and s.auto == 2 and s.wrong == ["dsk-2"]
    m = summarize([s])
    assert m["false_accepts"] == 1 and m["auto_precision"] == 0.5 and m["auto_coverage"] == 1.0


def test_unknown_card_sent_to_review_is_not_a_false_accept():
    lab = label("images/a/1.jpg", "?Some Card")
    s = score_photo(lab, rec("images/a/1.jpg", [card("dsk-5", "needs_review", 0.6)]))
    m = summarize([s])
    assert m["false_accepts"] == 0 and m["top1_recall"] is None and m["needs_review"] == 1


def test_each_token_is_claimed_once_in_confidence_order():
    # Two predictions of dsk-1 for one dsk-1 card: the more confident claims it, the other is wrong.
    lab = label("images/a/1.jpg", "dsk-1;dsk-2")
    r = rec(
        "images/a/1.jpg",
        [card("dsk-1", conf=0.5, decision="needs_review"), card("dsk-1", conf=0.99)],
    )
    s = score_photo(lab, r)
    assert (s.top1_right, s.auto_right, s.auto, s.wrong) == (1, 1, 1, [])
    # Reversed: the review claims the card, the auto-accept claims nothing (a false accept).
    r = rec(
        "images/a/1.jpg",
        [card("dsk-1", conf=0.995, decision="needs_review"), card("dsk-1", conf=0.99)],
    )
    s = score_photo(lab, r)
    assert (s.top1_right, s.auto_right, s.wrong) == (1, 0, ["dsk-1"])


def test_no_match_still_counts_its_best_candidate_for_top1():
    no = {
        "card_key": None,
        "decision": "no_match",
        "confidence": 0.1,
        "candidates": [{"card_key": "dsk-9", "score": 0.1}],
    }
    s = score_photo(label("images/a/1.jpg", "dsk-9"), rec("images/a/1.jpg", [no]))
    assert (s.top1_right, s.auto_right, s.no_match) == (1, 0, 1)


def test_count_error_only_on_exact_photos_and_latency_percentiles():
    labels = [
        label("images/a/1.jpg", "dsk-1;dsk-2"),
        label("images/b/2.jpg", "dsk-3", n=4, exact=0),
    ]
    records = [
        rec("images/a/1.jpg", [card("dsk-1")], ms=100.0),
        rec("images/b/2.jpg", [], ms=300.0),
    ]
    out = score_run(labels, records)
    o = out["overall"]
    assert o["count_error"] == 0.5  # |1 - 2| / 2 on the one exactly counted photo
    assert o["top1_recall"] == pytest.approx(1 / 3, abs=1e-4)
    assert o["p50_ms"] == 200.0 and o["p95_ms"] == pytest.approx(290.0)
    assert set(out["groups"]) == {"a", "b"} and out["groups"]["b"]["top1_recall"] == 0.0


def test_failed_or_missing_photo_scores_nothing():
    labels = [label("images/a/1.jpg", "dsk-1"), label("images/a/2.jpg", "dsk-2")]
    records = [rec("images/a/1.jpg", [], status="failed")]
    o = score_run(labels, records)["overall"]
    assert o["failed"] == 2 and o["top1_recall"] == 0.0 and o["auto_precision"] is None
