#!/bin/bash
# run_all.sh [quick]: the whole reliability campaign (README "Reliability" quotes its summary
# lines), or with `quick` the small subset CTest runs (test_campaign_quick).
cd "$(dirname "$0")"
if [ "${1:-}" = quick ]; then
    K=1; C=15; T=2
    export CAMPAIGN_QUICK=1
else
    K=20; C=100; T=10
fi
rc=0
./catalogue.sh || rc=1
./signals.sh || rc=1
./twoproc.sh "$T" || rc=1
./corrupt.sh "$C" || rc=1
./kill9.sh "$K" || rc=1
[ -z "${CAMPAIGN_QUICK:-}" ] && { ./diskfull.sh || rc=1; }
exit $rc
