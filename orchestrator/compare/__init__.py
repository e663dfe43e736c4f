"""Two studies compared row by row, with error control: what changed between code versions (``ablator compare``).

``compare_studies(old, new)`` returns a ``StudyComparison`` (``model.py``); ``stats.py`` holds the tests,
``rows.py`` matches the rows, ``studies.py`` reads the two study directories, ``show.py`` and ``html.py``
print and draw it.
"""

from .model import FAIL_ON, RowComparison, StudyComparison
from .studies import compare_studies

__all__ = ["FAIL_ON", "RowComparison", "StudyComparison", "compare_studies"]
