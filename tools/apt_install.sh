#!/bin/sh
# Install Debian/Ubuntu packages the project uses outside Python, when they are missing.
# Usage: tools/apt_install.sh PACKAGE...
# Needs root and apt-get; otherwise prints what to install by hand and succeeds, since every
# package named here is optional for the Python code (the caller says what it is for).
missing=""
for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages:$missing"
    apt-get install -y -q $missing >/dev/null 2>&1 || \
        { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q $missing >/dev/null; } || \
        echo "warning: could not install$missing; install them by hand (apt-get install$missing)"
else
    echo "warning: missing system packages:$missing; install them with: sudo apt-get install$missing"
fi
exit 0
