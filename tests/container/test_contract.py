"""The HTTP contract of tests/contract.py, through the load balancer of the compose stack.

Every test there that takes the shared `client` runs here too, with `client` going through
the load balancer to the two replicas (tests/container/conftest.py). Tests that build an app of
their own (other settings, an API key) stay in-process only.
"""

from __future__ import annotations

import inspect

from tests import contract

# Tests that hold only in-process, and why.
IN_PROCESS_ONLY = {
    # It sends a control character in a header; over real HTTP uvicorn's parser answers 400
    # before the app sees the request, so there is no request id to check.
    "test_request_id_in_and_out",
}

spec = contract.spec  # a fixture those tests take

for _name, _test in vars(contract).items():
    if (
        _name.startswith("test_")
        and _name not in IN_PROCESS_ONLY
        and "client" in inspect.signature(_test).parameters
    ):
        globals()[_name] = _test
