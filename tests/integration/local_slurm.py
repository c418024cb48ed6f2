"""A real two-node SLURM cluster on localhost for tests: MUNGE, slurmctld and one slurmd per node started by hand.

Both nodes are this machine: each has its own slurmd, listening on its own port of 127.0.0.1, so a job step
of `srun --nodes=2` runs its tasks through two slurmd daemons as on two hosts. Everything the daemons write
(configuration, state, spool, logs, pid files, the MUNGE socket) lives in one fresh temporary directory,
removed at stop, and the ports are free ones picked at start: the cluster needs no systemd and leaves alone
any SLURM or MUNGE already running on the machine. Clients find it through `SLURM_CONF` (see
`LocalSlurmCluster.env`). Daemons are stopped by the PIDs in their own pid files. Root only: slurmd starts
job steps as their user, munged runs as user munge.

    with LocalSlurmCluster() as cluster:
        subprocess.run(['srun', '--nodes=2', '-n2', 'hostname'], env=cluster.env(), check=True)
"""
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SBIN = ('/usr/sbin', '/sbin')
REQUIRED_TOOLS = ('munged', 'munge', 'slurmctld', 'slurmd', 'srun', 'sinfo')
INSTALL_SCRIPT = Path(__file__).resolve().parents[2] / '.ci' / 'install_slurm.sh'
MUNGE_KEY = Path('/etc/munge/munge.key')


class SlurmUnavailable(RuntimeError):
    """SLURM cannot be installed or started here (not root, or no apt-get); tests skip with this reason."""


def find_tool(name):
    return shutil.which(name) or shutil.which(name, path=os.pathsep.join(SBIN))


def ensure_installed():
    """Install slurm-wlm and munge through .ci/install_slurm.sh unless they are all present already (root only)."""
    if all(find_tool(tool) for tool in REQUIRED_TOOLS) and MUNGE_KEY.is_file():
        return
    if shutil.which('apt-get') is None:
        raise SlurmUnavailable('slurm-wlm and munge are not installed, and there is no apt-get to install them')
    result = subprocess.run(['bash', str(INSTALL_SCRIPT)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f'{INSTALL_SCRIPT.name} failed ({result.returncode}):\n{result.stdout}{result.stderr}')


def free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def process_alive(pid):
    """True while `pid` runs; a zombie (exited, not yet reaped by its adoptive parent) counts as gone."""
    try:
        state = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != 'Z'


class LocalSlurmCluster:
    """Two nodes, `localhost` and `localhost2` (each with all CPUs of the machine, at least `min_cpus`), in one
    partition, `debug`.

    Debian's SLURM is built without multiple-slurmd support, which would let one slurm.conf give each slurmd of a
    host its own port, pid file and spool directory. Each slurmd therefore reads a copy of slurm.conf with its
    own `Slurmd*` settings (`slurmd_conf`), and the nodes' `Port=` tells slurmctld and srun where to reach each.
    A step on both nodes starts on `localhost`, which resolves, so its rank 0 is reached by the name the launchers
    take for MASTER_ADDR (the step's first node), as on a real cluster; `localhost2` does not resolve, and serves
    steps that need no rendezvous.
    """

    partition = 'debug'
    # In slurm.conf order. SLURM's node lookup answers any name with the only node of a table whose one node is
    # called `localhost`, so a node declared after `localhost` would be rejected as its duplicate.
    nodes = ('localhost2', 'localhost')

    def __init__(self, min_cpus=2, start_timeout=30.0, stop_timeout=15.0):
        self.min_cpus = min_cpus
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.directory = None

    @property
    def conf(self):
        return self.directory / 'slurm.conf'

    @property
    def munge_dir(self):
        return self.directory / 'munge'

    @property
    def munge_socket(self):
        return self.munge_dir / 'munge.socket'

    def slurmd_conf(self, node):
        """The configuration the slurmd of `node` reads: slurm.conf with that slurmd's port, pid file, spool and log."""
        return self.directory / f'slurmd-{node}.conf'

    @property
    def pid_files(self):
        """Daemon name -> pid file, in stop order (munged last: the others authenticate through it)."""
        slurmds = {f'slurmd {node}': self.directory / f'slurmd-{node}.pid' for node in self.nodes}
        return {**slurmds, 'slurmctld': self.directory / 'slurmctld.pid', 'munged': self.munge_dir / 'munged.pid'}

    def env(self, base=None):
        """`base` (default: this process's environment) with SLURM's clients pointed at this cluster."""
        base = os.environ if base is None else base
        return {**base, 'SLURM_CONF': str(self.conf), 'PATH': os.pathsep.join([base.get('PATH', ''), *SBIN])}

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def start(self):
        if os.geteuid() != 0:
            raise SlurmUnavailable('not root (the daemons run as root and as user munge; installing them needs root)')
        ensure_installed()
        # Not under pytest's tmp_path, whose parents only root may enter: munged runs as user munge.
        self.directory = Path(tempfile.mkdtemp(prefix='vmamba-mm-slurm-'))
        self.directory.chmod(0o755)
        try:
            self._start_munge()
            self._write_conf()
            self._run(find_tool('slurmctld'))
            for node in self.nodes:
                self._run(find_tool('slurmd'), '-N', node, '-f', self.slurmd_conf(node))
            self._wait_until_idle()
        except BaseException:
            self.stop()
            raise

    def stop(self):
        """SIGTERM each daemon that its pid file names (SIGKILL when it outlives `stop_timeout`), then
        remove the directory."""
        if self.directory is None:
            return
        for pid_file in self.pid_files.values():
            try:
                pid = int(pid_file.read_text())
            except (FileNotFoundError, ValueError):
                continue
            if not process_alive(pid):
                continue
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + self.stop_timeout
            while process_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if process_alive(pid):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None

    def log_tails(self, lines=20):
        """The last lines of every daemon log, for error messages."""
        tails = []
        logs = [self.munge_dir / 'munged.log', self.directory / 'slurmctld.log',
                *(self.directory / f'slurmd-{node}.log' for node in self.nodes)]
        for log in logs:
            if log.is_file():
                tails.append(f'--- {log.name}\n' + '\n'.join(log.read_text(errors='replace').splitlines()[-lines:]))
        return '\n'.join(tails)

    def _run(self, *command, user=None):
        if user is not None:
            command = ('runuser', '-u', user, '--', *command)
        command = tuple(map(str, command))
        result = subprocess.run(command, env=self.env(), capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f'{" ".join(command)} failed ({result.returncode}): {result.stderr.strip()}\n'
                               f'{self.log_tails()}')

    def _start_munge(self):
        munge_user = pwd.getpwnam('munge')
        self.munge_dir.mkdir(mode=0o755)
        os.chown(self.munge_dir, munge_user.pw_uid, munge_user.pw_gid)
        self._run(find_tool('munged'), f'--socket={self.munge_socket}',
                  f'--pid-file={self.pid_files["munged"]}', f'--log-file={self.munge_dir / "munged.log"}',
                  f'--seed-file={self.munge_dir / "munged.seed"}', user='munge')

    def _write_conf(self):
        (self.directory / 'state').mkdir()
        settings = dict(
            ClusterName='vmamba-mm-test',
            SlurmctldHost='localhost',
            SlurmctldPort=free_port(),
            SlurmUser='root',
            SlurmdUser='root',
            AuthType='auth/munge',
            CredType='cred/munge',
            AuthInfo=f'socket={self.munge_socket}',
            MpiDefault='none',
            # No systemd and no cgroup hierarchy to rely on in CI containers.
            ProctrackType='proctrack/linuxproc',
            TaskPlugin='task/none',
            JobAcctGatherType='jobacct_gather/none',
            AccountingStorageType='accounting_storage/none',
            SelectType='select/cons_tres',
            SelectTypeParameters='CR_Core',
            ReturnToService=2,
            MailProg='/bin/true',
            StateSaveLocation=self.directory / 'state',
            SlurmctldPidFile=self.pid_files['slurmctld'],
            SlurmctldLogFile=self.directory / 'slurmctld.log',
            # Each node declares at least `min_cpus`, however many cores the machine has.
            SlurmdParameters='config_overrides',
            # The slurmd configurations differ from slurm.conf in their Slurmd* lines, on purpose (see the class).
            DebugFlags='NO_CONF_HASH',
        )
        ports = {node: free_port() for node in self.nodes}
        cpus = max(os.cpu_count(), self.min_cpus)
        cluster_lines = [f'NodeName={node} NodeAddr=127.0.0.1 Port={ports[node]} CPUs={cpus} RealMemory=1000 '
                         f'State=UNKNOWN' for node in self.nodes]
        cluster_lines.append(f'PartitionName={self.partition} Nodes={",".join(self.nodes)} Default=YES '
                             f'MaxTime=INFINITE State=UP')

        def write(path, **more):
            lines = [f'{key}={value}' for key, value in {**settings, **more}.items()]
            path.write_text('\n'.join(lines + cluster_lines) + '\n')

        write(self.conf)
        for node in self.nodes:
            spool = self.directory / f'spool-{node}'
            spool.mkdir()
            write(self.slurmd_conf(node), SlurmdPort=ports[node], SlurmdPidFile=self.pid_files[f'slurmd {node}'],
                  SlurmdSpoolDir=spool, SlurmdLogFile=self.directory / f'slurmd-{node}.log')

    def _wait_until_idle(self):
        deadline = time.monotonic() + self.start_timeout
        states = {}
        while time.monotonic() < deadline:
            result = subprocess.run([find_tool('sinfo'), '-h', '-N', '-o', '%N %t'], env=self.env(),
                                    capture_output=True, text=True)
            states = dict(line.split() for line in result.stdout.splitlines() if len(line.split()) == 2)
            if all(states.get(node) == 'idle' for node in self.nodes):
                return
            time.sleep(0.2)
        raise RuntimeError(f'the SLURM nodes are not all idle after {self.start_timeout:.0f} s (states {states})\n'
                           f'{self.log_tails()}')
