"""Fixtures of the job tests: the embedding job's day of sample and crafted notes."""

import pytest

from tests.support.bad_notes import day_notes


@pytest.fixture(scope="session")
def day_notes_pdf():
    """40 sample notes of DAY followed by the crafted ones."""
    return day_notes()
