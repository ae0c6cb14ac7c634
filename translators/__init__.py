"""Per-kind translator plugins: pure functions from one side's objects to the other's."""
