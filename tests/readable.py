"""How big a figure's text is where a page shows it (test_plots, test_sweep)."""

from nnscratch.reporting.figures import CSS_DPI

SMALLEST_PX = 11  # the report's own text is 15 px; less than 11 is hard to read


def text_too_small(fig, shown_px: float, smallest_px: float = SMALLEST_PX) -> dict:
    """{text: CSS pixels high} of every text of `fig` under `smallest_px` when the
    figure is shown `shown_px` CSS pixels wide: s points in a figure w inches wide
    are s * 96/72 * min(1, shown_px / (96 w)) pixels (a page never enlarges it)."""
    from matplotlib.text import Text

    fig.draw_without_rendering()  # makes the tick labels
    width = fig.get_size_inches()[0] * CSS_DPI
    scale = CSS_DPI / 72 * min(1.0, shown_px / width)
    sizes = {
        t.get_text(): t.get_fontsize() * scale
        for t in fig.findobj(Text)
        if t.get_visible() and t.get_text().strip()
    }
    return {text: round(px, 1) for text, px in sizes.items() if px < smallest_px}
