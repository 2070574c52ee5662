"""``python -m course_lib.grading``: the same as ``course grade``."""

from course_lib.grading.command import main

raise SystemExit(main())
