"""A real one-node SLURM cluster on localhost for tests: MUNGE, slurmctld and slurmd started by hand.

Everything the daemons write (configuration, state, spool, logs, pid files, the MUNGE socket) lives in
one fresh temporary directory, removed at stop, and the ports are free ones picked at start: the
cluster needs no systemd and leaves alone any SLURM or MUNGE already running on the machine. Clients
find it through `SLURM_CONF` (see `LocalSlurmCluster.env`). Daemons are stopped by the PIDs in their
own pid files. Root only: slurmd starts job steps as their user, munged runs as user munge.

    with LocalSlurmCluster() as cluster:
        subprocess.run(['srun', '-n2', 'hostname'], env=cluster.env(), check=True)
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
    """One node (`localhost`, all CPUs of the machine, at least `min_cpus`) in one partition, `debug`."""

    partition = 'debug'

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

    @property
    def pid_files(self):
        """Daemon name -> pid file, in stop order (munged last: the others authenticate through it)."""
        return {'slurmd': self.directory / 'slurmd.pid', 'slurmctld': self.directory / 'slurmctld.pid',
                'munged': self.munge_dir / 'munged.pid'}

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
            self._run(find_tool('slurmd'), '-N', 'localhost')
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
        for log in (self.munge_dir / 'munged.log', self.directory / 'slurmctld.log', self.directory / 'slurmd.log'):
            if log.is_file():
                tails.append(f'--- {log.name}\n' + '\n'.join(log.read_text(errors='replace').splitlines()[-lines:]))
        return '\n'.join(tails)

    def _run(self, *command, user=None):
        if user is not None:
            command = ('runuser', '-u', user, '--', *command)
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
        for subdirectory in ('state', 'spool'):
            (self.directory / subdirectory).mkdir()
        settings = dict(
            ClusterName='vmamba-mm-test',
            SlurmctldHost='localhost',
            SlurmctldPort=free_port(),
            SlurmdPort=free_port(),
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
            SlurmdSpoolDir=self.directory / 'spool',
            SlurmctldPidFile=self.pid_files['slurmctld'],
            SlurmdPidFile=self.pid_files['slurmd'],
            SlurmctldLogFile=self.directory / 'slurmctld.log',
            SlurmdLogFile=self.directory / 'slurmd.log',
            # The node declares at least `min_cpus`, however many cores the machine has.
            SlurmdParameters='config_overrides',
        )
        lines = [f'{key}={value}' for key, value in settings.items()]
        lines.append(f'NodeName=localhost NodeAddr=127.0.0.1 CPUs={max(os.cpu_count(), self.min_cpus)} RealMemory=1000 State=UNKNOWN')
        lines.append(f'PartitionName={self.partition} Nodes=localhost Default=YES MaxTime=INFINITE State=UP')
        self.conf.write_text('\n'.join(lines) + '\n')

    def _wait_until_idle(self):
        deadline = time.monotonic() + self.start_timeout
        state = ''
        while time.monotonic() < deadline:
            result = subprocess.run([find_tool('sinfo'), '-h', '-n', 'localhost', '-o', '%t'],
                                    env=self.env(), capture_output=True, text=True)
            state = result.stdout.strip()
            if state == 'idle':
                return
            time.sleep(0.2)
        raise RuntimeError(f'the SLURM node is not idle after {self.start_timeout:.0f} s (state {state!r})\n'
                           f'{self.log_tails()}')
