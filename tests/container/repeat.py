"""The killed replica and the rolling restart, run again and again on one stack: a flaky pass
shows up as a count of failed rounds instead of as luck.

    make container-repeat CONTAINER_ENGINE=docker      # 10 rounds; REPEAT=N for another count

brings the stack up once as the tests do (tests/container/conftest.py), then runs
test_killing_a_replica_under_load_shows_no_5xx and
test_rolling_restart_drains_without_a_failed_request of test_stack.py, unchanged, once per
round, prints one line per round and a last line counting failures, tears the stack down and
exits 1 if any round failed.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback

from tests.container import test_stack
from tests.container.stack import Stack, find_engine, free_port, versions

TESTS = (
    test_stack.test_killing_a_replica_under_load_shows_no_5xx,
    test_stack.test_rolling_restart_drains_without_a_failed_request,
)


def _round(stack: Stack) -> list[str]:
    """One line per test: its name, ok or FAILED with the first line of why, and its time."""
    lines = []
    for test in TESTS:
        start = time.monotonic()
        try:
            test(stack)
            verdict = "ok"
        except Exception as error:  # noqa: BLE001 - every failure is counted, then shown
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            verdict = f"FAILED: {first}"
            traceback.print_exc()
        lines.append(f"{test.__name__} {verdict} ({time.monotonic() - start:.0f} s)")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--times", type=int, default=10)
    times = parser.parse_args().times
    found = find_engine()
    if isinstance(found, str):
        print(f"no container can run here: {found}", file=sys.stderr)
        return 2
    print(versions(*found), flush=True)
    stack = Stack(*found, free_port())
    stack.down()  # a run killed before its teardown leaves its containers
    failed_rounds = 0
    try:
        stack.up()
        stack.wait_resolved()
        for name in stack.replicas():
            stack.wait_serving(name)
        for n in range(1, times + 1):
            lines = _round(stack)
            failed_rounds += any("FAILED" in line for line in lines)
            print(f"round {n}/{times}: " + "; ".join(lines), flush=True)
    finally:
        stack.down()
    print(f"{found[0]}: {failed_rounds} of {times} rounds failed", flush=True)
    return 1 if failed_rounds else 0


if __name__ == "__main__":
    sys.exit(main())
