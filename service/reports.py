"""Reports on the recorded leads and their outcomes, as data: the API, the CLI and the review pages share them."""

from __future__ import annotations

from audit import reports


def build(name: str, items: list, by: str | None = None):
    """One report as data; the CLI and the review pages call this too."""
    if name == "funnel":
        return reports.funnel(items)
    if name == "matrix":
        return reports.matrix(items)
    if name == "conversion":
        return reports.conversion(items, by or "fit_band")
    if name == "rejections":
        return reports.rejections(items)
    if name == "rules":
        return {"rules": reports.rule_lift(items)}
    raise KeyError(name)


NAMES = ("funnel", "matrix", "conversion", "rejections", "rules")
