"""The GWASI sensor's logic: only days whose posts changed are requested."""

from audio_assets import gwasi_watch
from audio_assets.platforms import gwasi

T1 = 1754006400 + 3600  # 2025-08-01
T2 = T1 + 86400  # 2025-08-02


def _delta(entries, removed=(), base="aaaa"):
    return {"base": base, "entries": entries, "removed": list(removed), "fills": {}}


def _digests(delta):
    snap = gwasi.merge([["old1", "gonewildaudio", "a", "OC", "t", T1 - 5 * 86400, 1, 10]], delta,
                       base_version=delta["base"])
    return gwasi_watch.day_digests(snap.entries.values())


def _check(delta, cursor, days_of=None):
    return gwasi_watch.check(delta, cursor, load_day_digests=_digests, days_of_posts=days_of or (lambda ids: {}))


def test_first_tick_requests_only_the_delta_days():
    r = _check(_delta([["p1", "gonewildaudio", "a", "OC", "t", T1, 1, 10]]), None)
    assert r.changed_days == ["2025-08-01"] and r.base_changed


def test_unchanged_delta_requests_nothing_and_a_new_post_requests_its_day():
    d1 = _delta([["p1", "gonewildaudio", "a", "OC", "t", T1, 1, 10]])
    c1 = _check(d1, None).cursor
    assert _check(d1, c1).changed_days == []
    d2 = _delta([["p1", "gonewildaudio", "a", "OC", "t", T1, 1, 10], ["p2", "gonewildaudio", "b", "OC", "t2", T2, 1, 10]])
    r = _check(d2, c1)
    assert r.changed_days == ["2025-08-02"] and not r.base_changed
    # a changed score on day 1 requests day 1 only
    d3 = _delta([["p1", "gonewildaudio", "a", "OC", "t", T1, 99, 10], ["p2", "gonewildaudio", "b", "OC", "t2", T2, 1, 10]])
    assert _check(d3, r.cursor).changed_days == ["2025-08-01"]


def test_removed_posts_request_their_day():
    d1 = _delta([["p1", "gonewildaudio", "a", "OC", "t", T1, 1, 10]])
    c1 = _check(d1, None).cursor
    d2 = _delta([["p1", "gonewildaudio", "a", "OC", "t", T1, 1, 10]], removed=["old1"])
    r = _check(d2, c1, days_of=lambda ids: {"old1": "2025-07-27"})
    assert r.changed_days == ["2025-07-27"]
    assert _check(d2, r.cursor, days_of=lambda ids: {"old1": "2025-07-27"}).changed_days == []


def test_new_base_version_compares_every_day():
    d1 = _delta([["p1", "gonewildaudio", "a", "OC", "t", T1, 1, 10]])
    c1 = _check(d1, None).cursor
    d2 = _delta([["p1", "gonewildaudio", "a", "OC", "t", T1, 1, 10]], base="bbbb")
    assert _check(d2, c1).changed_days == []  # same content under a new version: nothing to redo
