"""Write a patch that names the lines of chosen functions, for ``mutmut run --use-patch-file``.

mutmut 2.x mutates only the lines a patch adds when given ``--use-patch-file``; this
marks the whole body of each named function or class as added, so one time box on
a large module checks the code that matters first (``make mutation MUTATION_ONLY=...``).

    python tools/mutation_patch.py model_metamers/null_distribution.py:sample_pairs,merge_shards \
        tfcochleagram/compression.py > only.patch

``FILE`` alone takes the whole file; ``FILE:NAME,NAME`` the named top-level functions
and classes (``Class.method`` for one method). An unknown name is an error.
"""

import ast
import sys


def _spans(path, names):
    """``[(first, last)]`` 1-based line ranges of ``names`` in ``path`` (the whole file if none)."""
    with open(path) as f:
        source = f.read()
    if not names:
        return [(1, len(source.splitlines()))]
    tree = ast.parse(source)
    found = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found[node.name] = node
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        found['%s.%s' % (node.name, item.name)] = item
    missing = [n for n in names if n not in found]
    if missing:
        raise SystemExit('error: %s has no function or class %s (it has %s)'
                         % (path, ', '.join(missing), ', '.join(sorted(found))))
    return [(found[n].lineno, found[n].end_lineno) for n in names]


def patch(specs):
    """The unified diff text for ``specs`` (``FILE`` or ``FILE:NAME,NAME``)."""
    out = []
    for spec in specs:
        path, _, names = spec.partition(':')
        with open(path) as f:
            lines = f.read().splitlines()
        # The `diff --git` line starts a new file for whatthepatch (mutmut's patch reader);
        # without it every later file's hunks are read as the first file's lines.
        out += ['diff --git %s %s' % (path, path), '--- a/%s' % path, '+++ b/%s' % path]
        for first, last in sorted(_spans(path, [n for n in names.split(',') if n])):
            out.append('@@ -%d,0 +%d,%d @@' % (first - 1, first, last - first + 1))
            out += ['+' + line for line in lines[first - 1:last]]
    return '\n'.join(out) + '\n'


if __name__ == '__main__':
    if len(sys.argv) < 2:
        raise SystemExit('usage: python tools/mutation_patch.py FILE[:NAME,NAME] ... > only.patch')
    sys.stdout.write(patch(sys.argv[1:]))
