#!/usr/bin/env bash
# Installs Debian's SLURM (slurmctld, slurmd, srun) and MUNGE for the local one-node SLURM test
# cluster (tests/integration/local_slurm.py). Idempotent: returns at once when everything is present.
# Needs root and apt-get.
set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin

have_all() {
  for tool in slurmctld slurmd srun sinfo munged munge mungekey; do
    command -v "$tool" >/dev/null || return 1
  done
}

if ! have_all; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "$0: installing slurm-wlm and munge needs root" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Without systemd the package scripts cannot start the services ("policy-rc.d denied execution
  # of start"); the test harness starts the daemons itself.
  apt-get install -y -qq --no-install-recommends slurm-wlm munge
fi

key=/etc/munge/munge.key
if [ ! -s "$key" ]; then
  mungekey --create --keyfile="$key"
  chown munge:munge "$key"
  chmod 0400 "$key"
fi
