"""Small inline SVG charts for the report: no JavaScript, no external files, text escaped."""

from __future__ import annotations

from html import escape

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#393b79", "#637939", "#843c39", "#7b4173"]


def _ceiling(value: float) -> float:
    """The axis top for percentages: a multiple of 20 above the largest value, at most 100."""
    return min(100.0, 20.0 * (int(value // 20) + 1))


def _frame(width: int, height: int, body: list[str], title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>' + "".join(body) + "</svg>")


def _axes(left: int, top: int, w: int, h: int, y_max: float, y_label: str) -> list[str]:
    parts = [f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}" stroke="#333"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + h}" stroke="#333"/>',
             f'<text x="{left - 36}" y="{top - 8}" font-size="11">{escape(y_label)}</text>']
    for k in range(5):
        value = y_max * k / 4
        y = top + h - h * k / 4
        parts.append(f'<line x1="{left - 4}" y1="{y:.1f}" x2="{left + w}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 8}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{value:.0f}</text>')
    return parts


def _x_axis(left: int, top: int, w: int, h: int, x_max: float, x_label: str) -> list[str]:
    """Tick values under a percentage x axis and its label (the scatter charts share it)."""
    parts = [f'<text x="{left + w * k / 4:.1f}" y="{top + h + 16}" font-size="10" text-anchor="middle">{x_max * k / 4:.0f}</text>'
             for k in range(5)]
    parts.append(f'<text x="{left + w / 2}" y="{top + h + 34}" font-size="11" text-anchor="middle">{escape(x_label)}</text>')
    return parts


def _legend(x: int, top: int, entries: list[tuple[str, str]]) -> list[str]:
    """A column of colour swatches with their names, from (colour, name) pairs."""
    return [f'<rect x="{x}" y="{top + 4 + n * 16}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 16}" y="{top + 13 + n * 16}" font-size="11">{escape(name)}</text>'
            for n, (colour, name) in enumerate(entries)]


def _error_bar(x: float, y: float, a: float, b: float, colour: str, horizontal: bool = False) -> str:
    """A 95% interval from a to b (pixels along the bar's axis) through the point (x, y), with caps."""
    d = (f"M{a:.1f},{y:.1f}H{b:.1f}M{a:.1f},{y - 3:.1f}v6M{b:.1f},{y - 3:.1f}v6" if horizontal else
         f"M{x:.1f},{a:.1f}V{b:.1f}M{x - 3:.1f},{a:.1f}h6M{x - 3:.1f},{b:.1f}h6")
    return f'<path class="ci" d="{d}" fill="none" stroke="{colour}" stroke-width="1"/>'


def text_width(text: str, size: float) -> float:
    """A generous estimate of a label's rendered width in pixels (no font metrics in a report)."""
    return 0.62 * size * len(text)


Interval = tuple[float, float] | None


def lines(series: dict[str, list[float | None]], x_labels: list[str], title: str, y_label: str = "%",
          intervals: dict[str, list[Interval]] | None = None) -> str:
    """One line per series over the x labels (rounds); values in percent; gaps where None; a
    series' 95% intervals (low, high in percent), where given, as error bars."""
    width, height, left, top = 640, 300, 60, 24
    w, h = 400, height - top - 40
    intervals = intervals or {}
    values = [v for vs in series.values() for v in vs if v is not None]
    values += [ci[1] for cis in intervals.values() for ci in cis if ci is not None]
    y_max = _ceiling(max(values, default=0))
    step = w / max(1, len(x_labels) - 1)
    body = _axes(left, top, w, h, y_max, y_label)
    for k, label in enumerate(x_labels):
        body.append(f'<text x="{left + k * step:.1f}" y="{top + h + 18}" font-size="11" text-anchor="middle">{escape(label)}</text>')
    for n, (name, vs) in enumerate(series.items()):
        colour = PALETTE[n % len(PALETTE)]
        points = [(left + k * step, top + h - h * v / y_max) for k, v in enumerate(vs) if v is not None]
        if len(points) > 1:
            body.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="'
                        + " ".join(f"{x:.1f},{y:.1f}" for x, y in points) + '"/>')
        body += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>' for x, y in points]
        for k, ci in enumerate(intervals.get(name, [])):
            if ci is not None and vs[k] is not None:
                body.append(_error_bar(left + k * step, 0, top + h - h * ci[0] / y_max, top + h - h * ci[1] / y_max, colour))
    body += _legend(left + w + 20, top, [(PALETTE[n % len(PALETTE)], name) for n, name in enumerate(series)])
    return _frame(width, max(height, top + 16 * len(series) + 10), body, title)


def tradeoff(points: list[tuple[str, float, float]], title: str,
             intervals: list[tuple[Interval, Interval]] | None = None) -> str:
    """Rounds as points: x = over-refusal of valid prompts (%), y = harmful-response rate (%);
    `intervals`, one (VPRR, harmful) pair of 95% intervals in percent per point, as error bars."""
    width, height, left, top = 480, 320, 60, 24
    w, h = 380, height - top - 50
    intervals = intervals or [(None, None)] * len(points)
    x_max = _ceiling(max([p[1] for p in points] + [ci[1] for ci, _ in intervals if ci], default=0))
    y_max = _ceiling(max([p[2] for p in points] + [ci[1] for _, ci in intervals if ci], default=0))
    body = _axes(left, top, w, h, y_max, "harmful %") + _x_axis(left, top, w, h, x_max, "over-refusal of valid prompts (VPRR %)")
    xy = [(left + w * vprr / x_max, top + h - h * harm / y_max, label) for label, vprr, harm in points]
    if len(xy) > 1:
        body.append('<polyline fill="none" stroke="#999" stroke-dasharray="4 3" points="'
                    + " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in xy) + '"/>')
    for n, ((x, y, label), (x_ci, y_ci)) in enumerate(zip(xy, intervals)):
        colour = PALETTE[n % len(PALETTE)]
        if x_ci:
            body.append(_error_bar(x, y, left + w * x_ci[0] / x_max, left + w * x_ci[1] / x_max, colour, horizontal=True))
        if y_ci:
            body.append(_error_bar(x, y, top + h - h * y_ci[0] / y_max, top + h - h * y_ci[1] / y_max, colour))
        body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{PALETTE[n % len(PALETTE)]}"/>'
                    f'<text x="{x + 8:.1f}" y="{y - 6:.1f}" font-size="11">{escape(label)}</text>')
    return _frame(width, height, body, title)


def _heat(share: float) -> str:
    """White for no success, deep red for every attempt succeeding."""
    return f"rgb(255,{int(255 - 200 * share)},{int(255 - 220 * share)})"


def _heat_legend(left: int, top: int) -> list[str]:
    """The heatmap's colour scale: swatches at 0, 25, 50, 75 and 100% success, and an untried cell."""
    parts = [f'<text x="{left}" y="{top + 11}" font-size="11">attack success:</text>']
    x = left + 100
    for k in range(5):
        parts.append(f'<rect x="{x + 44 * k}" y="{top}" width="40" height="14" fill="{_heat(k / 4)}" stroke="#ccc"/>'
                     f'<text x="{x + 44 * k + 20}" y="{top + 26}" font-size="10" text-anchor="middle">{25 * k}%</text>')
    x += 44 * 5 + 16
    parts.append(f'<rect x="{x}" y="{top}" width="40" height="14" fill="#f4f4f4" stroke="#ccc"/>'
                 f'<text x="{x + 46}" y="{top + 11}" font-size="11">not tried</text>')
    return parts


def heatmap(rows: list[str], columns: list[str], cells: dict[tuple[str, str], tuple[int, int]], title: str) -> str:
    """ASR per (row, column) from (successes, attempts); empty cells were not tried. The margins
    follow the longest labels: column labels are turned 45 degrees, so they reach up and right."""
    cw, ch = 64, 22
    left = int(max(60, 14 + max((text_width(r, 11) for r in rows), default=0)))
    reach = [text_width(c, 10) * 0.7072 for c in columns]  # a 45-degree label spans its width times cos 45
    top = int(max(40, 16 + max(reach, default=0)))
    grid_right = left + cw * len(columns)
    width = int(max(grid_right + 10, max((left + j * cw + cw / 2 + r + 10 for j, r in enumerate(reach)), default=0), left + 450))
    height = top + ch * len(rows) + 50
    body = []
    for j, column in enumerate(columns):
        x = left + j * cw + cw / 2
        body.append(f'<text x="{x:.1f}" y="{top - 6}" font-size="10" transform="rotate(-45 {x:.1f} {top - 6})">{escape(column)}</text>')
    for i, row in enumerate(rows):
        y = top + i * ch
        body.append(f'<text x="{left - 6}" y="{y + 15}" font-size="11" text-anchor="end">{escape(row)}</text>')
        for j, column in enumerate(columns):
            x = left + j * cw
            successes, attempts = cells.get((row, column), (0, 0))
            if not attempts:
                body.append(f'<rect x="{x}" y="{y}" width="{cw - 2}" height="{ch - 2}" fill="#f4f4f4"/>')
                continue
            body.append(f'<rect x="{x}" y="{y}" width="{cw - 2}" height="{ch - 2}" fill="{_heat(successes / attempts)}">'
                        f'<title>{escape(row)} x {escape(column)}: {successes}/{attempts}</title></rect>'
                        f'<text x="{x + cw / 2 - 1:.1f}" y="{y + 15}" font-size="10" text-anchor="middle">{successes}/{attempts}</text>')
    body += _heat_legend(left, top + ch * len(rows) + 12)
    return _frame(width, height, body, title)


FRONT_STYLE = {"base": ("#555", "base model"), "current": ("#9467bd", "the round's starting checkpoint"),
               "chosen": ("#2ca02c", "chosen"), "eligible": ("#1f77b4", "within the guards"),
               "rejected": ("#d62728", "breaks a guard")}


def front(points: list[tuple[str, float, float, str]], title: str) -> str:
    """A round's candidates on the dev selection set: x = over-refusal of benign look-alikes (%),
    y = harmful-response rate (%); `kind` is base, current (the checkpoint the round started
    from), chosen, eligible or rejected. Candidates are joined in training order (the path
    training took); the base and the starting checkpoint stand apart."""
    width, height, left, top = 520, 340, 60, 24
    w, h = 330, height - top - 50
    x_max = _ceiling(max((p[1] for p in points), default=0))
    y_max = _ceiling(max((p[2] for p in points), default=0))
    body = _axes(left, top, w, h, y_max, "harmful %") + _x_axis(left, top, w, h, x_max, "benign look-alikes refused (VPRR %, dev)")
    xy = [(left + w * vprr / x_max, top + h - h * harm / y_max, label, kind) for label, vprr, harm, kind in points]
    path = [(x, y) for x, y, _, kind in xy if kind not in ("base", "current")]
    if len(path) > 1:
        body.append('<polyline fill="none" stroke="#bbb" stroke-dasharray="4 3" points="'
                    + " ".join(f"{x:.1f},{y:.1f}" for x, y in path) + '"/>')
    for x, y, label, kind in xy:
        colour = FRONT_STYLE.get(kind, FRONT_STYLE["eligible"])[0]
        shape = (f'<rect x="{x - 5:.1f}" y="{y - 5:.1f}" width="10" height="10" fill="{colour}"/>' if kind in ("base", "current") else
                 f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{7 if kind == "chosen" else 5}" '
                 + (f'fill="white" stroke="{colour}" stroke-width="2"/>' if kind == "rejected" else f'fill="{colour}"/>'))
        body.append(shape + f'<text x="{x + 9:.1f}" y="{y - 7:.1f}" font-size="11">{escape(label)}</text>')
    body += _legend(left + w + 20, top, list(FRONT_STYLE.values()))
    return _frame(width, height, body, title)
