"""Progress bars that read well in a terminal *and* in a stored notebook.

``tqdm`` redraws its line with carriage returns; in a notebook every redraw is kept in the cell's
stored output (``"\\r  3%|...\\r  7%|..."``), which is what students would read on GitHub. Inside
an IPython kernel (JupyterLab, ``course run``, nbval) :func:`progress_bar` therefore draws the
same tqdm line into one display area that it *replaces* at most twice a second, so the notebook
keeps only the final line; in a terminal it is an ordinary tqdm bar on stdout.

    bar = progress_bar(total=24, desc="label efficiency")
    for ...:
        bar.set_postfix_str("fine-tuning, 10/class, seed 0"); ...; bar.update()
    bar.close()
"""

from __future__ import annotations

import sys
import time


def _in_ipython_kernel() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ip = shell.get_ipython()
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


class DisplayBar:
    """A tqdm-formatted line in one IPython display area, replaced in place (no ``\\r``)."""

    def __init__(self, total: int | None, desc: str = "", unit: str = "it",
                 min_interval: float = 0.5, leave: bool = True):
        from IPython.display import display

        self.total, self.desc, self.unit, self.n = total, desc, unit, 0
        self.leave = leave
        self.postfix = ""
        self.min_interval = min_interval
        self._start = self._shown_at = time.perf_counter()
        self._handle = display({"text/plain": self._line()}, raw=True, display_id=True)
        self._closed = False

    def _line(self) -> str:
        from tqdm import tqdm

        return tqdm.format_meter(self.n, self.total, time.perf_counter() - self._start,
                                 prefix=self.desc, unit=self.unit, postfix=self.postfix or None,
                                 ncols=100)

    def _show(self, force: bool = False) -> None:
        now = time.perf_counter()
        if force or now - self._shown_at >= self.min_interval:
            self._handle.update({"text/plain": self._line()}, raw=True)
            self._shown_at = now

    def update(self, n: int = 1) -> None:
        self.n += n
        self._show(force=self.total is not None and self.n >= self.total)

    def set_postfix_str(self, text: str) -> None:
        self.postfix = text
        self._show()

    def set_postfix(self, refresh: bool = True, **values) -> None:
        self.postfix = ", ".join(f"{key}={value}" for key, value in values.items())
        if refresh:
            self._show()

    def set_description(self, text: str) -> None:
        self.desc = text
        self._show()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self.leave:
                self._show(force=True)
            else:
                self._handle.update({"text/plain": ""}, raw=True)

    def __enter__(self) -> DisplayBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _NoBar:
    n = 0

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, refresh: bool = True, **values) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass

    def set_description(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc) -> None:
        pass


def progress_bar(total: int | None, desc: str = "", unit: str = "it", disable: bool = False,
                 leave: bool = True):
    """A progress bar with tqdm's ``n``, ``update``, ``set_postfix``, ``set_postfix_str``,
    ``set_description`` and ``close`` (also a context manager): a :class:`DisplayBar` inside an
    IPython kernel, a tqdm bar on stdout elsewhere, nothing at all when ``disable``.
    ``leave=False``: the bar disappears when closed."""
    if disable:
        return _NoBar()
    if _in_ipython_kernel():
        return DisplayBar(total, desc, unit, leave=leave)
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stdout, leave=leave)
