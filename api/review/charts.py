"""Charts drawn on the server as inline SVG: the fit × readiness heat map, the funnel, conversion by
score band, SLA by team, and the small bars of a score's breakdown.

Every text and attribute value goes through `escape` (`_el` does it), so a ruleset's route or team
name cannot inject markup. Charts scale with their container through `viewBox`; their width in
viewBox units is close to a phone's, so text stays readable at 390 px and is capped by CSS on wide
screens. Each chart is followed on its page by a table of the same numbers.
"""

from __future__ import annotations

from markupsafe import Markup, escape

from audit.reports import FUNNEL

WIDTH = 420
INK, MUTED, GRID = "#1b2433", "#5b6475", "#d9dee7"
BLUE, GREEN, AMBER, RED, GREY = "#2f6fbd", "#2e8b57", "#d08a1a", "#c2413a", "#b8c0cc"
HEAT_LOW, HEAT_HIGH = (232, 240, 251), (30, 78, 140)


def _fmt(value) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


def _el(tag: str, attrs: dict, *children) -> Markup:
    """<tag attrs>children</tag> with every attribute value and every plain-text child escaped."""
    rendered = "".join(f' {name.replace("_", "-")}="{escape(_fmt(v))}"' for name, v in attrs.items())
    return Markup(f"<{tag}{rendered}>") + Markup("").join(children) + Markup(f"</{tag}>")


def _svg(height: float, title: str, *children) -> Markup:
    return _el(
        "svg",
        {"class": "chart", "viewBox": f"0 0 {WIDTH} {_fmt(height)}", "role": "img", "aria_label": title},
        _el("title", {}, title),
        *children,
    )


def _text(x, y, text, size=13, fill=INK, anchor="start", weight="normal") -> Markup:
    return _el(
        "text",
        {"x": x, "y": y, "font_size": size, "fill": fill, "text_anchor": anchor, "font_weight": weight},
        str(text),
    )


def _rect(x, y, w, h, fill, **extra) -> Markup:
    return _el("rect", {"x": x, "y": y, "width": max(w, 0), "height": h, "fill": fill, **extra})


def _pct(rate) -> str:
    return "–" if rate is None else f"{rate:.0%}" if rate in (0, 1) else f"{rate:.1%}"


def _heat(t: float) -> str:
    r, g, b = (round(lo + (hi - lo) * t) for lo, hi in zip(HEAT_LOW, HEAT_HIGH, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def heat_map(matrix: dict) -> Markup:
    """The 2 × 2 fit × readiness matrix: colour by share of leads; count, share and conversion written in."""
    quads = matrix["quadrants"]
    top, left, gap = 30, 74, 4
    cell_w, cell_h = (WIDTH - left - gap) / 2, 118
    most = max((q["share"] or 0 for q in quads.values()), default=0) or 1
    parts = [
        _text(left + cell_w / 2, 18, "Sales-ready", anchor="middle", weight="bold"),
        _text(left + cell_w * 1.5 + gap, 18, "Not ready", anchor="middle", weight="bold"),
    ]
    for row, (fit, fit_label) in enumerate((("good", "Good fit"), ("poor", "Poor fit"))):
        y = top + row * (cell_h + gap)
        parts.append(_text(left - 10, y + cell_h / 2 + 5, fit_label, anchor="end", weight="bold"))
        for col, ready in enumerate(("ready", "not_ready")):
            name = f"{fit}_fit_{ready}"
            cell = quads[name]
            t = (cell["share"] or 0) / most
            ink = "#ffffff" if t > 0.55 else INK
            x = left + col * (cell_w + gap)
            cx = x + cell_w / 2
            parts += [
                _el(
                    "g",
                    {"class": "cell", "data_quadrant": name},
                    _rect(x, y, cell_w, cell_h, _heat(t), rx=6),
                    _text(cx, y + 22, name, size=13, fill=ink, anchor="middle"),
                    _text(
                        cx, y + 56, f"{cell['leads']:,}", size=26, fill=ink, anchor="middle", weight="bold"
                    ),
                    _text(cx, y + 80, f"{_pct(cell['share'])} of leads", size=14, fill=ink, anchor="middle"),
                    _text(cx, y + 102, f"{_pct(cell['conversion'])} won", size=14, fill=ink, anchor="middle"),
                )
            ]
    return _svg(top + 2 * cell_h + gap + 2, "Fit × readiness: leads per quadrant", *parts)


def funnel(report: dict) -> Markup:
    """How many leads reached each funnel stage (or a later one), and the share that went on."""
    reached = report["reached"]
    steps = {s["from"]: s["conversion"] for s in report["steps"]}
    left, right, row = 96, 64, 46
    most = max(reached.values(), default=0) or 1
    parts = []
    for i, stage in enumerate(FUNNEL):
        y = 8 + i * row
        width = (WIDTH - left - right) * reached[stage] / most
        parts += [
            _text(left - 10, y + 16, stage, anchor="end", weight="bold"),
            _rect(left, y, width, 22, BLUE, rx=3),
            _text(left + width + 6, y + 16, f"{reached[stage]:,}"),
        ]
        if stage in steps:
            parts.append(_text(left, y + 38, f"↓ {_pct(steps[stage])} went on", size=13, fill=MUTED))
    return _svg(8 + len(FUNNEL) * row - 10, "Leads that reached each funnel stage", *parts)


def _band_order(band: str) -> tuple:
    low = band.split("-", 1)[0]
    return (0, int(low)) if low.isdigit() else (1, band)


def bands(conversion: dict, title: str) -> Markup:
    """Conversion (won / leads) per score band, with the number of leads under each bar."""
    groups = sorted(conversion["groups"].items(), key=lambda kv: _band_order(kv[0]))
    top, bottom, left = 24, 44, 8
    height = 190
    plot = height - top - bottom
    slot = (WIDTH - 2 * left) / max(len(groups), 1)
    most = max((g["conversion"] or 0 for _, g in groups), default=0) or 1
    parts = [
        _el("line", {"x1": left, "x2": WIDTH - left, "y1": top + plot, "y2": top + plot, "stroke": GRID})
    ]
    for i, (band, group) in enumerate(groups):
        cx = left + slot * (i + 0.5)
        bar = plot * (group["conversion"] or 0) / most
        parts += [
            _rect(cx - slot * 0.3, top + plot - bar, slot * 0.6, bar, GREEN, rx=2),
            _text(
                cx, top + plot - bar - 6, _pct(group["conversion"]), size=14, anchor="middle", weight="bold"
            ),
            _text(cx, top + plot + 18, band, size=14, anchor="middle"),
            _text(cx, top + plot + 36, f"{group['leads']:,} leads", size=13, fill=MUTED, anchor="middle"),
        ]
    return _svg(height, title, *parts)


SLA_PARTS = (
    ("acted_in_time", "in time", GREEN),
    ("acted_late", "late", AMBER),
    ("overdue", "overdue", RED),
    ("waiting", "not due yet", GREY),
)


def sla(teams: dict) -> Markup:
    """Per team, its hand-offs: acted on in time, late, overdue and unanswered, or not due yet."""
    left, row, legend = 8, 50, 26
    parts = []
    x = left
    for _, label, colour in SLA_PARTS:
        parts += [_rect(x, 4, 13, 13, colour, rx=2), _text(x + 18, 15, label, size=13, fill=MUTED)]
        x += 30 + 7.5 * len(label)
    for i, (team, stats) in enumerate(teams.items()):
        y = legend + i * row
        counts = {**stats, "waiting": stats["open"] - stats["overdue"]}
        total = stats["handoffs"] or 1
        parts.append(_text(left, y + 14, f"{team} · {stats['handoffs']:,} hand-offs", weight="bold"))
        x = left
        for key, label, colour in SLA_PARTS:
            width = (WIDTH - 2 * left) * counts[key] / total
            if counts[key]:
                parts.append(
                    _el(
                        "rect",
                        {"x": x, "y": y + 20, "width": width, "height": 18, "fill": colour},
                        _el("title", {}, f"{team}: {counts[key]} {label}"),
                    )
                )
            x += width
    return _svg(legend + len(teams) * row, "Hand-offs per team against their SLA", *parts)


def bar(value: float, most: float) -> Markup:
    """A small bar for one line of a score's breakdown; negative points are drawn in red."""
    width = 100 * abs(value) / most if most else 0
    return _el(
        "svg",
        {"class": "bar", "viewBox": "0 0 100 10", "preserveAspectRatio": "none", "aria_hidden": "true"},
        _rect(0, 0, width, 10, RED if value < 0 else BLUE),
    )
