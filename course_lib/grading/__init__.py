"""The course's grader: students check their exercises, instructors grade a class.

``check("ex02")`` from a notebook; ``course grade`` from a terminal. Check modules use
:func:`course_lib.grading.spec.check`. Importing this package is cheap (no NumPy).
"""

from __future__ import annotations

from pathlib import Path


def check(*exercises: str, path: str | Path | None = None) -> None:
    """Grade your exercises (e.g. ``check("ex02")``; all when none is named) and show the result.

    In a notebook the result is an HTML table, elsewhere a text table. ``path`` is the folder
    with your ``exNN_*.py`` files (default: the course's ``exercises/``).
    """
    from course_lib.grading import report
    from course_lib.grading.command import grade_exercises

    results = grade_exercises(list(exercises), Path(path) if path else None)
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display
    except ImportError:
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display(HTML("".join(report.html_table(r) for r in results)))
    else:
        print("\n\n".join(report.text_table(r) for r in results))


__all__ = ["check"]
