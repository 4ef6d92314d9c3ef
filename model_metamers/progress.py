"""A dependency-free progress line for long synthesis runs (writes to stderr)."""

import sys
import time


def _fmt_time(seconds):
    seconds = int(max(seconds, 0))
    return '%d:%02d:%02d' % (seconds // 3600, seconds % 3600 // 60, seconds % 60)


class ProgressLine:
    """``label [#####-----] step/total loss=.. it/s ETA`` redrawn in place."""

    def __init__(self, label, stream=None, width=24):
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.start = time.time()
        self.interactive = hasattr(self.stream, 'isatty') and self.stream.isatty()
        self._last_print = 0.0

    def __call__(self, step, total, loss, rate):
        done = int(self.width * step / max(total, 1))
        eta = (total - step) / rate if rate > 0 else float('nan')
        line = '%s [%s%s] %d/%d loss=%.4g %.2f it/s ETA %s' % (
            self.label, '#' * done, '-' * (self.width - done), step, total, loss, rate,
            _fmt_time(eta) if eta == eta else '?')
        now = time.time()
        if self.interactive:
            self.stream.write('\r' + line)
            if step >= total:
                self.stream.write('\n')
        elif step >= total or now - self._last_print > 30:
            self.stream.write(line + '\n')
            self._last_print = now
        self.stream.flush()


def table(rows, headers):
    """Plain-text table: ``rows`` is a list of tuples of already-formatted strings."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(headers)]
    line = '  '.join('%-*s' % (w, h) for w, h in zip(widths, headers))
    out = [line, '  '.join('-' * w for w in widths)]
    out += ['  '.join('%-*s' % (w, c) for w, c in zip(widths, r)) for r in rows]
    return '\n'.join(out)
