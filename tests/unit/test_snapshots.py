"""Permalink snapshots in the file store: round trip, ids, bad input."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salience.core.errors import InputError
from workspace.snapshots import FileSnapshotStore, SnapshotNotFound, check_id


def test_round_trip_and_stable_ids(tmp_path):
    store = FileSnapshotStore(tmp_path)
    state = {"variants": [{"name": "a", "template": "x {y}"}], "method": "grad_l2"}
    first = store.save(state)
    assert first == store.save(dict(reversed(state.items())))  # same content, same id
    assert len(first) == 12
    assert store.load(first) == state
    assert store.load(first.upper()) == state
    assert not list(tmp_path.glob(".tmp-*"))


@settings(max_examples=30, deadline=None)
@given(text=st.text())
def test_any_unicode_round_trips(tmp_path_factory, text):
    store = FileSnapshotStore(tmp_path_factory.mktemp("snap"))
    assert store.load(store.save({"template": text}))["template"] == text


@pytest.mark.parametrize("bad", ["", "abc", "../../etc/passwd", "zzzzzzzzzzzz", "0123456789abc", "x" * 500])
def test_malformed_ids_are_refused(tmp_path, bad):
    with pytest.raises(InputError, match="not a comparison link id"):
        FileSnapshotStore(tmp_path).load(bad)
    with pytest.raises(InputError):
        check_id(bad)


def test_missing_and_damaged(tmp_path):
    store = FileSnapshotStore(tmp_path)
    with pytest.raises(SnapshotNotFound, match="No saved comparison"):
        store.load("0123456789ab")
    (tmp_path / "0123456789ab.json").write_bytes(b"\xff{not json")
    with pytest.raises(InputError, match="damaged"):
        store.load("0123456789ab")
    (tmp_path / "0123456789ab.json").write_text('{"version": 99}')
    with pytest.raises(InputError, match="another version"):
        store.load("0123456789ab")


def test_huge_state_is_refused(tmp_path):
    with pytest.raises(InputError, match="over the"):
        FileSnapshotStore(tmp_path).save({"template": "x" * 6_000_000})
