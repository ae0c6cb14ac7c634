"""Security suites: hostile tenants and bad input against real control planes."""
