"""The contract every part of vcsync shares: below the engine and the translators both.

- :mod:`contract.resources`: API resources, the two sides, the two directions;
- :mod:`contract.naming`: host names and ownership metadata (the one place
  host-name formats are spelled);
- :mod:`contract.translator`: actions, the lookup protocol, the context, the
  translator base and its declaration of a kind;
- :mod:`contract.facts` and :mod:`contract.options`: what translators get from
  the engine and from their configuration section;
- :mod:`contract.discovery`: finding built-in and plugin kinds.

It imports nothing of ``syncer`` or ``translators`` (tests/unit/test_layers.py
keeps it so); see docs/architecture.md.
"""
