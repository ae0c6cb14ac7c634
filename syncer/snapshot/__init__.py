"""Snapshots of a virtual cluster: its store, PKI and values in one verified archive.

:mod:`syncer.snapshot.archive` is the format (write, read, verify, version
rules); :mod:`syncer.snapshot.kine` takes the consistent copy of a kine SQLite
store. The CLI (``vcsync snapshot``) and the syncer's snapshot endpoint (Helm
installs) both build archives with these, so one reader verifies either.
"""
