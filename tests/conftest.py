"""Test-suite settings shared by every test folder."""

import os

from hypothesis import settings

# CI runs the property tests with a fixed seed so that a run is reproducible; locally each run
# explores new examples. Failing examples are printed with their seed either way.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
