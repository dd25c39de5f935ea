"""Test-suite settings shared by every test folder."""

import os

import pytest
from hypothesis import settings

# CI runs the property tests with a fixed seed so that a run is reproducible; locally each run
# explores new examples. Failing examples are printed with their seed either way.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's torch work on one intra-op thread (``pytestmark = usefixtures(...)``).

    Small networks and checkpoint copies gain nothing from a second thread. On a 2-core
    machine whose cores are shared, the two OpenMP threads wait on each other: the same ACR
    test took 0.5 s with one thread and up to 18 s with two; loading a synthetic checkpoint
    about 1 s and over 4 s.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
