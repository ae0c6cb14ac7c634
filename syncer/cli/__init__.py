"""The ``vcsync`` command line."""
