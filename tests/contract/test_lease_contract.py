"""Named leases (IndexStore.claim_lease / advance_lease / release_lease) on every index
adapter: one holder at a time, renewal, take-over after expiry or release, and a position
that only the holder can move."""

from __future__ import annotations

import time

from hounsfield.ports.index import IndexStore


def test_one_holder_renewal_and_fenced_position(index: IndexStore) -> None:
    assert index.claim_lease("relay", "a", 30) == 0
    assert index.claim_lease("relay", "b", 30) is None
    assert index.claim_lease("relay", "a", 30) == 0  # renewal
    assert index.advance_lease("relay", "a", 42)
    assert not index.advance_lease("relay", "b", 7)
    assert index.claim_lease("relay", "a", 30) == 42
    assert index.claim_lease("other", "b", 30) == 0  # leases are independent


def test_release_and_expiry_hand_the_lease_over_with_its_position(index: IndexStore) -> None:
    assert index.claim_lease("relay", "a", 30) == 0
    index.advance_lease("relay", "a", 10)
    index.release_lease("relay", "b")  # not the holder: no effect
    assert index.claim_lease("relay", "b", 30) is None
    index.release_lease("relay", "a")
    assert index.claim_lease("relay", "b", 0.2) == 10
    assert not index.advance_lease("relay", "a", 11)  # a lost it
    time.sleep(0.35)
    assert index.claim_lease("relay", "c", 30) == 10  # b's lease expired
    assert index.claim_lease("relay", "b", 30) is None
