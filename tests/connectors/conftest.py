"""The sandbox services (from tests/sandbox) serve as the real peers of the HTTP client."""

from tests.sandbox.conftest import _faults_off_after_each_test, sandbox, sink

__all__ = ["_faults_off_after_each_test", "sandbox", "sink"]
