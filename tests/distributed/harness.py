"""Launches a script under msrun on 127.0.0.1 for the distributed tests.

Each launch gets a free port, its own log directory and a wall-clock bound. msrun runs in a
session of its own and starts each worker in another (os.setsid); past the bound, msrun is
sent SIGINT (on which it kills its workers' process groups), then those groups and msrun's
own are killed: only processes this launch started. MindSpore's collectives turn a blocked
peer into an error after MS_CPU_COMM_OP_TIMEOUT seconds.
"""
import glob
import os
import signal
import socket
import subprocess
import sys


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log_tails(log_dir, chars=3000):
    tails = []
    for path in sorted(glob.glob(os.path.join(log_dir, "*.log"))):
        with open(path, errors="replace") as f:
            tails.append(f"--- {os.path.basename(path)}\n{f.read()[-chars:]}")
    return "\n".join(tails)


def _children(pid):
    """Process ids whose parent is `pid` (msrun's workers and scheduler)."""
    found = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.split("/")[2]))
    return found


def _stop(proc):
    groups = set()
    for child in _children(proc.pid):
        try:
            groups.add(os.getpgid(child))
        except ProcessLookupError:
            pass
    proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        pass
    for group in groups | {proc.pid}:
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.communicate()


def msrun(script, args, ranks, log_dir, timeout=600):
    """Runs `python script *args` on `ranks` local workers; raises AssertionError with the
    workers' log tails if the job fails or outlives `timeout` seconds."""
    os.makedirs(log_dir, exist_ok=True)
    bin_dir = os.path.dirname(sys.executable)  # msrun starts workers with `python` from PATH
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""),
               MS_CPU_COMM_OP_TIMEOUT="30", GLOG_v="3")
    cmd = [sys.executable, "-m", "mindspore.parallel.cluster.run", f"--worker_num={ranks}",
           f"--local_worker_num={ranks}", "--master_addr=127.0.0.1", f"--master_port={free_port()}",
           f"--log_dir={log_dir}", "--join=True", "--cluster_time_out=120", script, *args]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(proc)
        raise AssertionError(f"msrun with {ranks} ranks ran past {timeout} s\n{_log_tails(log_dir)}")
    if proc.returncode != 0:
        raise AssertionError(f"msrun with {ranks} ranks exited {proc.returncode}\n"
                             f"{output.decode(errors='replace')[-2000:]}\n{_log_tails(log_dir)}")
