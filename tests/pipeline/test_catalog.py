"""Catalog import: the real catalog, idempotency, and every kind of bad row."""

import csv
import shutil
from pathlib import Path

import pytest

from db.cards import catalog_stats
from db.pool import connection
from pipeline.catalog import import_catalog
from pipeline.storage import LocalStorage
from tests.conftest import CATALOG_DIR

HEADER = [
    "card_key",
    "game",
    "name",
    "set_code",
    "set_name",
    "number",
    "variant",
    "image",
    "source_repo",
]


def test_real_catalog_counts(catalog):
    with connection() as conn:
        stats = catalog_stats(conn)
    assert stats["total"] == 2399
    assert stats["per_game"] == {"mtg": 1849, "pokemon": 207, "yugioh": 343}


def test_second_import_changes_nothing(catalog, object_dir):
    report = import_catalog(Path(catalog))
    assert report.changed == 0
    assert report.outcomes["unchanged"] == 2399


def _write_catalog(folder: Path, rows: list[list[str]], header=HEADER) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "images").mkdir(exist_ok=True)
    with (folder / "cards.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return folder


def _real_image(folder: Path, name: str) -> str:
    shutil.copy(CATALOG_DIR / "images" / "dsk-194.jpg", folder / "images" / name)
    return f"images/{name}"


def test_bad_rows_are_reported_with_their_line_and_skipped(tmp_path, clean_db, catalog):
    folder = tmp_path / "cat"
    _write_catalog(folder, [])
    good = _real_image(folder, "good.jpg")
    (folder / "images" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    rows = [
        ["tst-1", "mtg", "Good Card", "TST", "Test Set", "1", "normal", good, "x"],  # line 2
        ["tst-2", "mtg", "No Image", "TST", "Test Set", "2", "", "images/missing.jpg", "x"],
        ["tst-3", "mtg", "Broken", "TST", "Test Set", "3", "", "images/broken.jpg", "x"],
        ["tst-1", "mtg", "Duplicate", "TST", "Test Set", "4", "", good, "x"],
        ["tst-5", "chess", "Wrong Game", "TST", "Test Set", "5", "", good, "x"],
        ["tst-6", "mtg", "", "TST", "Test Set", "6", "", good, "x"],
        ["tst-7", "mtg", "Escape", "TST", "Test Set", "7", "", "../../etc/passwd", "x"],
    ]
    _write_catalog(folder, rows)
    report = import_catalog(folder, LocalStorage(tmp_path / "objects"))
    reasons = {b.line: b.reason for b in report.bad}
    assert set(reasons) == {3, 4, 5, 6, 7, 8}
    assert "not found" in reasons[3]
    assert "unreadable" in reasons[4]
    assert "duplicate" in reasons[5] and "line 2" in reasons[5]
    assert "unknown game" in reasons[6]
    assert "empty" in reasons[7]
    assert "leaves the catalog folder" in reasons[8]
    assert report.outcomes["created"] == 1


def test_missing_column_stops_with_a_clear_error(tmp_path, db_url):
    folder = _write_catalog(tmp_path / "cat", [], header=HEADER[:-3])
    with pytest.raises(ValueError, match="missing column"):
        import_catalog(folder, LocalStorage(tmp_path / "objects"))


def test_changed_row_is_updated_not_duplicated(tmp_path, db_url, catalog):
    folder = tmp_path / "cat"
    _write_catalog(folder, [])
    image = _real_image(folder, "a.jpg")
    store = LocalStorage(tmp_path / "objects")
    _write_catalog(folder, [["upd-1", "mtg", "Old Name", "UPD", "Upd Set", "1", "", image, ""]])
    assert import_catalog(folder, store).outcomes["created"] == 1
    _write_catalog(folder, [["upd-1", "mtg", "New Name", "UPD", "Upd Set", "1", "", image, ""]])
    assert import_catalog(folder, store).outcomes["updated"] == 1
    with connection() as conn:
        names = conn.execute("SELECT name FROM cards WHERE card_key = 'upd-1'").fetchall()
    assert [r["name"] for r in names] == ["New Name"]
