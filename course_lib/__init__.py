"""course_lib: the library behind the deep-learning course.

Importing this package is cheap (no TensorFlow). Chapters call :func:`setup` in
their first code cell.
"""

from course_lib.environment import fast_mode, setup

__version__ = "0.1.0"
__all__ = ["__version__", "fast_mode", "setup"]
