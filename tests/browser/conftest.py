"""Browser tests: Playwright drives Debian's chromium against a live server.

The ``browser`` and ``page`` fixtures live in ``tests/conftest.py`` so that browser tests in any
folder share the one session-wide chromium (two sync Playwright instances cannot run at once).
"""
