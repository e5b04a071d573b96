"""Where to resume each partition: the committed offset, unless Redis applied less than that."""

from __future__ import annotations


def resume_offsets(committed: dict[int, int], applied: dict[int, int]) -> tuple[dict[int, int], list[tuple[int, int, int]]]:
    """``(start per partition, [(partition, committed, start)] for the ones moved back)``.

    ``committed``: the group's offsets (negative: none yet, librdkafka's reset policy applies).
    ``applied``: the last offset Redis applied per partition; a partition missing there while
    the group has committed offsets means Redis lost everything for it, so it restarts at 0.
    """
    starts, moved = {}, []
    for partition, offset in committed.items():
        start = offset
        if offset >= 0 and applied.get(partition, -1) + 1 < offset:
            start = applied.get(partition, -1) + 1
            moved.append((partition, offset, start))
        starts[partition] = start
    return starts, moved
