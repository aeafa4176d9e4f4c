"""Backoff for retries that are scheduled rather than slept (a job's retry time, a camera's next reopen):
tenacity counts the attempts and computes each wait, so every backoff in the agent is tenacity's.

Retries that do sleep in place use tenacity.Retrying directly (agent.db, agent.upload.job).
"""

from __future__ import annotations

from collections.abc import Iterator

import tenacity
from tenacity.wait import wait_base


def waits(strategy: wait_base) -> Iterator[float]:
    """The waits a tenacity wait strategy gives after failures 1, 2, 3, ... (endless).

    Each next() is one more failure: tenacity's own Retrying loop runs one attempt per step and hands
    its computed wait to `sleep`, which here records it instead of sleeping."""
    computed: list[float] = []
    retrying = tenacity.Retrying(
        wait=strategy, retry=tenacity.retry_always, stop=tenacity.stop_never, sleep=computed.append
    )
    for attempt in retrying:
        if computed:
            yield float(computed.pop())
        with attempt:
            pass
