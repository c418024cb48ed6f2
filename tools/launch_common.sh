# Sourced by tools/dist_launch.sh and tools/slurm_launch.sh.

# require_count NAME VALUE MIN: stop with status 2 unless VALUE is an integer >= MIN.
require_count() {
  case $2 in
    '' | *[!0-9]*) echo "$0: $1 must be an integer >= $3, got '$2'" >&2; exit 2 ;;
  esac
  [ "$2" -ge "$3" ] || { echo "$0: $1 must be an integer >= $3, got '$2'" >&2; exit 2; }
}

# The checkout's packages are importable by the launched script, installed or not.
PYTHONPATH="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH
