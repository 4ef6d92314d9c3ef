#!/bin/sh
# Install Debian/Ubuntu packages the project uses outside Python, when they are missing.
# Usage: tools/apt_install.sh PACKAGE...
# Needs root (or password-less sudo) and apt-get; otherwise prints what to install by hand and
# succeeds, since every package named here is optional for the Python code: without it a speed-up
# is lost or the tests that need it skip.
missing=""
for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then as_root=""; elif sudo -n true 2>/dev/null; then as_root="sudo -n"; else as_root="none"; fi
if [ "$as_root" != none ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages:$missing"
    $as_root apt-get install -y -q $missing >/dev/null 2>&1 || \
        { $as_root apt-get update -q >/dev/null 2>&1 && $as_root apt-get install -y -q $missing >/dev/null; } || \
        echo "warning: could not install$missing; install them by hand (apt-get install$missing)"
else
    echo "warning: missing system packages:$missing; install them with: sudo apt-get install$missing"
fi
exit 0
