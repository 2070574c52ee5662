"""Public check modules, one per exercise: ``exNN_topic.py`` checks ``exercises/exNN_topic.py``.

The grader discovers every ``ex*.py`` here; see :mod:`course_lib.grading.spec` for the contract.
"""
