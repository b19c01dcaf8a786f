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


def lines(series: dict[str, list[float | None]], x_labels: list[str], title: str, y_label: str = "%") -> str:
    """One line per series over the x labels (rounds); values in percent; gaps where None."""
    width, height, left, top = 640, 300, 60, 24
    w, h = 400, height - top - 40
    values = [v for vs in series.values() for v in vs if v is not None]
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
        y_legend = top + 4 + n * 16
        body.append(f'<rect x="{left + w + 20}" y="{y_legend}" width="10" height="10" fill="{colour}"/>'
                    f'<text x="{left + w + 36}" y="{y_legend + 9}" font-size="11">{escape(name)}</text>')
    return _frame(width, max(height, top + 16 * len(series) + 10), body, title)


def tradeoff(points: list[tuple[str, float, float]], title: str) -> str:
    """Rounds as points: x = over-refusal of valid prompts (%), y = harmful-response rate (%)."""
    width, height, left, top = 480, 320, 60, 24
    w, h = 380, height - top - 50
    x_max = _ceiling(max((p[1] for p in points), default=0))
    y_max = _ceiling(max((p[2] for p in points), default=0))
    body = _axes(left, top, w, h, y_max, "harmful %")
    for k in range(5):
        x = left + w * k / 4
        body.append(f'<text x="{x:.1f}" y="{top + h + 16}" font-size="10" text-anchor="middle">{x_max * k / 4:.0f}</text>')
    body.append(f'<text x="{left + w / 2}" y="{top + h + 34}" font-size="11" text-anchor="middle">'
                "over-refusal of valid prompts (VPRR %)</text>")
    xy = [(left + w * vprr / x_max, top + h - h * harm / y_max, label) for label, vprr, harm in points]
    if len(xy) > 1:
        body.append('<polyline fill="none" stroke="#999" stroke-dasharray="4 3" points="'
                    + " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in xy) + '"/>')
    for n, (x, y, label) in enumerate(xy):
        body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{PALETTE[n % len(PALETTE)]}"/>'
                    f'<text x="{x + 8:.1f}" y="{y - 6:.1f}" font-size="11">{escape(label)}</text>')
    return _frame(width, height, body, title)


def heatmap(rows: list[str], columns: list[str], cells: dict[tuple[str, str], tuple[int, int]], title: str) -> str:
    """ASR per (row, column) from (successes, attempts); empty cells were not tried."""
    cw, ch, left, top = 64, 22, 150, 110
    width, height = left + cw * len(columns) + 10, top + ch * len(rows) + 10
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
            share = successes / attempts
            fill = f"rgb(255,{int(255 - 200 * share)},{int(255 - 220 * share)})"
            body.append(f'<rect x="{x}" y="{y}" width="{cw - 2}" height="{ch - 2}" fill="{fill}">'
                        f'<title>{escape(row)} x {escape(column)}: {successes}/{attempts}</title></rect>'
                        f'<text x="{x + cw / 2 - 1:.1f}" y="{y + 15}" font-size="10" text-anchor="middle">{successes}/{attempts}</text>')
    return _frame(width, height, body, title)


FRONT_STYLE = {"base": ("#555", "base model"), "chosen": ("#2ca02c", "chosen"), "eligible": ("#1f77b4", "within the guards"),
               "rejected": ("#d62728", "breaks a guard")}


def front(points: list[tuple[str, float, float, str]], title: str) -> str:
    """A round's candidates on the dev selection set: x = over-refusal of benign look-alikes (%),
    y = harmful-response rate (%); `kind` is base, chosen, eligible or rejected. Candidates are
    joined in training order (the path training took), the base stands apart."""
    width, height, left, top = 520, 340, 60, 24
    w, h = 330, height - top - 50
    x_max = _ceiling(max((p[1] for p in points), default=0))
    y_max = _ceiling(max((p[2] for p in points), default=0))
    body = _axes(left, top, w, h, y_max, "harmful %")
    for k in range(5):
        x = left + w * k / 4
        body.append(f'<text x="{x:.1f}" y="{top + h + 16}" font-size="10" text-anchor="middle">{x_max * k / 4:.0f}</text>')
    body.append(f'<text x="{left + w / 2}" y="{top + h + 34}" font-size="11" text-anchor="middle">'
                "benign look-alikes refused (VPRR %, dev)</text>")
    xy = [(left + w * vprr / x_max, top + h - h * harm / y_max, label, kind) for label, vprr, harm, kind in points]
    path = [(x, y) for x, y, _, kind in xy if kind != "base"]
    if len(path) > 1:
        body.append('<polyline fill="none" stroke="#bbb" stroke-dasharray="4 3" points="'
                    + " ".join(f"{x:.1f},{y:.1f}" for x, y in path) + '"/>')
    for x, y, label, kind in xy:
        colour = FRONT_STYLE.get(kind, FRONT_STYLE["eligible"])[0]
        shape = (f'<rect x="{x - 5:.1f}" y="{y - 5:.1f}" width="10" height="10" fill="{colour}"/>' if kind == "base" else
                 f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{7 if kind == "chosen" else 5}" '
                 + (f'fill="white" stroke="{colour}" stroke-width="2"/>' if kind == "rejected" else f'fill="{colour}"/>'))
        body.append(shape + f'<text x="{x + 9:.1f}" y="{y - 7:.1f}" font-size="11">{escape(label)}</text>')
    for n, (colour, name) in enumerate(FRONT_STYLE.values()):
        y_legend = top + 4 + n * 16
        body.append(f'<rect x="{left + w + 20}" y="{y_legend}" width="10" height="10" fill="{colour}"/>'
                    f'<text x="{left + w + 36}" y="{y_legend + 9}" font-size="11">{escape(name)}</text>')
    return _frame(width, height, body, title)
