#!/bin/sh
# Runs one mutant's tests for `make mutation`: mutation_runner.sh SECONDS COMMAND...
#
# mutmut 2.5.1 takes every exit status but 1 for "the tests passed" (a surviving mutant), and
# stops a test run only after ten times the unmutated run's time. A mutant that breaks the
# synthesis loop's exit runs until then. With SECONDS > 0 the tests are stopped after SECONDS
# and that counts as a kill (status 1): a suite that no longer ends fails CI. Other statuses pass
# through unchanged, so pytest's own errors still read as survivors, to be checked by hand.
limit=$1
shift
if ! [ "$limit" -gt 0 ] 2>/dev/null; then
    exec "$@"  # no limit of ours: every status is the tests' own
fi
timeout -s KILL "$limit" "$@"
status=$?
if [ "$status" -eq 137 ]; then
    echo "mutation_runner: tests stopped after ${limit} s: counted as killed" >&2
    exit 1
fi
exit "$status"
