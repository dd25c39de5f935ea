"""ACR: attention collaboration-based regressor for arbitrary two-hand reconstruction."""
