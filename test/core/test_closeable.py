"""``Closeable``: ``with`` frees the resource however the block ends, and lets the block's error through."""

from __future__ import annotations

import pytest

from bharnet_ros.core.bag import SKELETON_TYPE, BagWriter
from bharnet_ros.core.closeable import Closeable


class Resource(Closeable):
    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def test_the_with_block_gets_the_object_itself_and_closes_it_once_on_a_normal_exit():
    resource = Resource()
    with resource as entered:
        assert entered is resource
        assert resource.closed == 0  # open inside the block
    assert resource.closed == 1


@pytest.mark.parametrize("error", [ValueError("bad frame"), KeyboardInterrupt(), SystemExit(2)])
def test_an_error_in_the_block_closes_it_and_is_raised_not_swallowed(error):
    resource = Resource()
    with pytest.raises(type(error)) as raised, resource:
        raise error
    assert raised.value is error
    assert resource.closed == 1


def test_leaving_the_block_by_return_or_break_closes_it():
    resources = [Resource(), Resource()]

    def first_open() -> Resource:
        with resources[0] as resource:
            return resource

    assert first_open().closed == 1
    for _ in range(3):
        with resources[1]:
            break
    assert resources[1].closed == 1


def test_a_subclass_without_close_fails_at_the_end_of_the_block_rather_than_leaking():
    class Forgetful(Closeable):
        pass

    with pytest.raises(NotImplementedError), Forgetful():
        pass


def test_a_bag_written_in_a_block_that_raises_is_still_finished(tmp_path):
    """A real holder of a native resource: rosbag2 writes metadata.yaml only when closed."""

    def record() -> None:
        with BagWriter(tmp_path / "bag") as writer:
            writer.add_topic("/bharnet/skeletons", SKELETON_TYPE)
            assert not (tmp_path / "bag" / "metadata.yaml").exists()  # not finished while open
            raise RuntimeError("camera lost")

    with pytest.raises(RuntimeError, match="camera lost"):
        record()
    assert (tmp_path / "bag" / "metadata.yaml").is_file()
