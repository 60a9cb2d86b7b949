#!/bin/sh
# The main job in one command. Built with the end-to-end issue (agent probes,
# uplink and collector); until that lands this script says so and exits.
echo "demo: the end-to-end demo is not built yet (see the open issue on probes, uplink and the demo)." >&2
echo "demo: run tests/run.sh to build and test what exists." >&2
exit 1
