#!/bin/sh
# Print the path of a working Python X.Y interpreter, or nothing when there is none.
# Usage: tools/find_python.sh 3.12
# Looks on PATH first, then in pyenv installs ($PYENV_ROOT, ~/.pyenv, /root/.pyenv). A pyenv shim
# on PATH for a version that is not selected exits with an error, so every candidate is run once.
want="$1"
for c in "$(command -v "python$want" 2>/dev/null)" \
         ${PYENV_ROOT:+$PYENV_ROOT/versions/$want*/bin/python$want} \
         "$HOME"/.pyenv/versions/$want*/bin/python$want \
         /root/.pyenv/versions/$want*/bin/python$want; do
    [ -n "$c" ] && [ -x "$c" ] || continue
    if "$c" -c "import sys; sys.exit(0 if '%d.%d' % sys.version_info[:2] == '$want' else 1)" >/dev/null 2>&1; then
        echo "$c"
        exit 0
    fi
done
exit 0
