"""Real servers on 127.0.0.1 for tests: a private Dovecot, an SMTP sink, a cuttable TCP proxy.

Each helper owns its processes, ports and files, and never touches the
machine's own services or configuration. ``fixtures`` turns them into pytest
fixtures that ``tests/conftest.py`` imports.
"""
