import gc

import pytest

from core.collector import cyclic_collection_deferred


def test_the_collector_is_off_inside_and_back_on_after_even_when_the_block_raises():
    assert gc.isenabled()
    with pytest.raises(RuntimeError), cyclic_collection_deferred():
        assert not gc.isenabled()
        raise RuntimeError("batch failed")
    assert gc.isenabled()


def test_a_nested_block_leaves_the_collector_off_for_the_outer_one():
    with cyclic_collection_deferred():
        with cyclic_collection_deferred():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_caller_that_turned_the_collector_off_keeps_it_off():
    gc.disable()
    try:
        with cyclic_collection_deferred():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
