"""Replays the Airflow DAGs of deploy/airflow/sluice_dag.py against a real cluster (Airflow is
not installable here): the same requests in the same order, with the same URLs, bodies and
checks, taken from deploy/airflow/sluice_rest.py, which the DAG is built from. Airflow's part
is played by a loop that runs a task again while it raises, up to the DAG's retries, by
SIGTERM to a BashOperator's process group (what Airflow sends when it kills a task), and by
the HTTP connection's Extra, which Airflow's HTTP hook sends as headers: the cluster asks for a
REST token (security.rest.auth.token-file), which the connection carries as the DAG's set-up
says, and the worker's configuration names for the CLI.

Python's standard library only. Starts a JobManager and a TaskManager on 127.0.0.1 with ports
found at run time, and stops them by pid. Environment as ctest sets it: SLUICE_BIN_DIR,
SLUICE_TEST_JOBS_DIR, SLUICE_SOURCE_DIR.
"""

import ast
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

BIN = os.environ["SLUICE_BIN_DIR"]
JOBS = os.environ["SLUICE_TEST_JOBS_DIR"]
AIRFLOW_DIR = os.path.join(os.environ["SLUICE_SOURCE_DIR"], "deploy", "airflow")
sys.path.insert(0, AIRFLOW_DIR)
import sluice_rest  # noqa: E402  (the DAG's requests and checks)


# The cluster's REST token, and the HTTP connection's Extra that carries it (sluice_dag.py).
TOKEN = "airflow-replay-token-0123456789"
CONNECTION_EXTRA = {"Authorization": "Bearer " + TOKEN}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(done, timeout, poll=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(poll)
    return False


class Cluster:
    """A JobManager and one TaskManager, their output in files of `dir`."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="airflow_replay_test-")
        self.rpc_port, self.rest_port = free_port(), free_port()
        common = ["-D", "jobmanager.rpc.port=%d" % self.rpc_port,
                  "-D", "jobmanager.rpc.address=127.0.0.1", "-D", "jobmanager.bind-host=127.0.0.1",
                  "-D", "heartbeat.interval=200ms", "-D", "heartbeat.timeout=2s",
                  "-D", "blob.storage.directory=%s/blobs" % self.dir]
        self.procs = []
        # The worker's configuration for the CLI (sluice_bash): where the token is.
        self.token_file = os.path.join(self.dir, "rest-token")
        with open(self.token_file, "w") as f:
            f.write(TOKEN + "\n")
        self.conf_dir = os.path.join(self.dir, "conf")
        os.mkdir(self.conf_dir)
        with open(os.path.join(self.conf_dir, "config.yaml"), "w") as f:
            f.write("security.rest.auth.token-file: %s\n" % self.token_file)
        self.start("jobmanager", [os.path.join(BIN, "sluice-jobmanager")] + common + [
            "-D", "rest.port=%d" % self.rest_port, "-D", "web.upload.dir=%s/uploads" % self.dir,
            "-D", "security.rest.auth.token-file=%s" % self.token_file])
        ok = wait_until(lambda: self.get_json("overview")[0] == 200, 20)
        self.check(ok, "the JobManager does not answer on REST port %d" % self.rest_port)
        self.start("taskmanager", [os.path.join(BIN, "sluice-taskmanager")] + common + [
            "-D", "taskmanager.numberOfTaskSlots=4", "-D", "taskmanager.host=127.0.0.1",
            "-D", "taskmanager.bind-host=127.0.0.1"])

    def start(self, name, argv):
        env = dict(os.environ)
        env.pop("SLUICE_CONF_DIR", None)
        with open(os.path.join(self.dir, name + ".log"), "wb") as out:
            self.procs.append(subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL, env=env))

    def check(self, ok, what):
        if not ok:
            logs = ""
            for name in ("jobmanager", "taskmanager"):
                path = os.path.join(self.dir, name + ".log")
                if os.path.exists(path):
                    with open(path, errors="replace") as f:
                        logs += "\n--- %s ---\n%s" % (name, f.read()[-3000:])
            self.stop()
            raise AssertionError(what + logs)

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []

    def request(self, method, endpoint, body, headers, extra=None):
        """sluice_rest's request, as the DAG's HTTP hook makes it: relative to the base URL,
        with the connection's Extra as headers (`extra`, by default the one with the token)."""
        if isinstance(body, str):
            body = body.encode()
        all_headers = dict(CONNECTION_EXTRA if extra is None else extra)
        all_headers.update(headers or {})
        req = urllib.request.Request("http://127.0.0.1:%d/%s" % (self.rest_port, endpoint),
                                     data=body, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as res:
                status, raw = res.status, res.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        except OSError as e:
            return 0, {"errors": [str(e)]}
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, {"errors": [raw.decode(errors="replace")]}

    def get_json(self, endpoint):
        return self.request("GET", endpoint, None, None)


CLUSTER = None


def setUpModule():
    global CLUSTER
    CLUSTER = Cluster()
    CLUSTER.check(wait_until(lambda: CLUSTER.get_json("overview")[1].get("taskmanagers") == 1,
                             30), "the TaskManager did not register")


def tearDownModule():
    CLUSTER.stop()
    if not os.environ.get("SLUICE_KEEP_TEST_DIR"):
        shutil.rmtree(CLUSTER.dir, ignore_errors=True)


def airflow_task(fn, retries):
    """Runs a task as Airflow does: again while it raises, up to `retries` more times. Returns
    its value and the exceptions of the failed tries; raises the last one when every try failed."""
    failures = []
    for _ in range(retries + 1):
        try:
            return fn(), failures
        except Exception as e:  # noqa: BLE001  (any exception fails an Airflow task)
            failures.append(e)
    raise failures[-1]


def sequence_output_ok(out_dir, count, keys):
    """libsequence_job's output: every key's largest running sum is the sum of its numbers."""
    best = {}
    for name in os.listdir(out_dir):
        if not name.startswith("part-"):
            continue
        with open(os.path.join(out_dir, name)) as f:
            for line in f:
                k, s = line.strip().split(",")
                best[int(k)] = max(best.get(int(k), 0), int(s))
    want = {k: sum(range(k, count, keys)) for k in range(keys)}
    return best == want


def chaos_output_ok(out_dir, keys, per_key):
    """chaos_count_job's committed output: `key,count,violations`, every key once, exact."""
    seen = {}
    for name in os.listdir(out_dir):
        if not name.startswith("part-"):
            continue
        with open(os.path.join(out_dir, name)) as f:
            for line in f:
                k, c, v = line.strip().split(",")
                if int(k) in seen:
                    return False
                seen[int(k)] = (int(c), int(v))
    return seen == {k: (per_key, 0) for k in range(keys)}


class DagFileTest(unittest.TestCase):
    def test_the_dag_is_built_from_the_replayed_module(self):
        with open(os.path.join(AIRFLOW_DIR, "sluice_dag.py")) as f:
            tree = ast.parse(f.read())
        used = {n.attr for n in ast.walk(tree)
                if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
                and n.value.id == "sluice_rest"}
        for name in ("upload", "run_and_wait", "sluice_run_command", "RETRIES", "POLL_SECONDS"):
            self.assertIn(name, used)
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        for operator in ("HttpOperator", "HttpSensor", "HttpHook", "BashOperator"):
            self.assertIn(operator, names)


class RestDagTest(unittest.TestCase):
    """sluice_rest: cluster_ready >> upload >> run_job (retried) >> delete_library."""

    def replay(self, library, program_args, parallelism=None):
        status, overview = CLUSTER.get_json("overview")  # cluster_ready
        self.assertEqual(status, 200)
        self.assertGreater(overview["taskmanagers"], 0)
        jar = sluice_rest.upload(CLUSTER.request, library)
        submitted = []
        try:
            return airflow_task(
                lambda: sluice_rest.run_and_wait(CLUSTER.request, jar, program_args,
                                                 parallelism, poll_seconds=0.1,
                                                 on_submitted=submitted.append),
                sluice_rest.RETRIES) + (submitted,)
        finally:
            status, _ = CLUSTER.request("DELETE", sluice_rest.delete_endpoint(jar), None, None)
            self.assertEqual(status, 200)

    def test_a_job_runs_to_its_exact_output(self):
        out = os.path.join(CLUSTER.dir, "rest-out")
        result, failures, jobs = self.replay(
            os.path.join(JOBS, "libsequence_job.so"),
            ["--count", "2000", "--keys", "4", "--output", out], parallelism=2)
        self.assertEqual(failures, [])
        self.assertEqual(result["application-status"], "SUCCEEDED")
        self.assertEqual(result["id"], jobs[0])
        self.assertTrue(sequence_output_ok(out, 2000, 4))
        status, files = CLUSTER.get_json("jars")
        self.assertEqual(files["files"], [])  # delete_library ran

    def test_a_failed_job_fails_its_task_and_the_retry_runs_it_again(self):
        out = os.path.join(CLUSTER.dir, "rest-retried")
        markers = tempfile.mkdtemp(dir=CLUSTER.dir)
        # --fail-map fails the first run only (its marker stays): the retry finishes.
        result, failures, jobs = self.replay(
            os.path.join(JOBS, "libchaos_count_job.so"),
            ["--keys", "5", "--per-key", "100", "--rate", "2000", "--output", out,
             "--marker-dir", markers, "--fail-map"], parallelism=1)
        self.assertEqual(len(failures), 1, failures)
        self.assertIsInstance(failures[0], sluice_rest.JobFailed)
        self.assertIn("FAILED", str(failures[0]))
        self.assertEqual(len(jobs), 2)
        self.assertEqual(CLUSTER.get_json(sluice_rest.status_endpoint(jobs[0]))[1]["status"],
                         "FAILED")
        self.assertEqual(result["application-status"], "SUCCEEDED")
        self.assertTrue(chaos_output_ok(out, 5, 100))

    def test_a_job_that_always_fails_fails_the_task_after_its_retries(self):
        with self.assertRaises(sluice_rest.JobFailed) as failed:
            self.replay(os.path.join(JOBS, "libthrowing_job.so"),
                        ["--count", "100", "--fail-at", "3"])
        self.assertIn("boom at record 3", str(failed.exception))

    def test_without_the_connections_token_the_upload_fails_with_401(self):
        def no_token(method, endpoint, body, headers):
            return CLUSTER.request(method, endpoint, body, headers, extra={})
        with self.assertRaises(sluice_rest.RequestFailed) as failed:
            sluice_rest.upload(no_token, os.path.join(JOBS, "libsequence_job.so"))
        self.assertIn("HTTP 401", str(failed.exception))
        self.assertIn("security.rest.auth.token-file", str(failed.exception))

    def test_a_library_that_cannot_run_fails_the_task_with_the_apis_error(self):
        with self.assertRaises(sluice_rest.RequestFailed) as failed:
            self.replay(os.path.join(JOBS, "libno_entry_job.so"), [])
        self.assertIn("HTTP 400", str(failed.exception))
        self.assertIn("entry point", str(failed.exception))


class BashDagTest(unittest.TestCase):
    """sluice_bash: run_job, a BashOperator running `sluice run -sae` attached."""

    def start(self, library, program_args, parallelism=None):
        command = sluice_rest.sluice_run_command(
            os.path.join(BIN, "sluice"), "127.0.0.1:%d" % CLUSTER.rest_port, library,
            program_args, parallelism)
        env = dict(os.environ)
        env["SLUICE_CONF_DIR"] = CLUSTER.conf_dir  # the worker's configuration: the token file
        # As Airflow's BashOperator: bash -c in a session (process group) of its own.
        return subprocess.Popen(["bash", "-c", command], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True, env=env)

    def run_task(self, library, program_args, parallelism=None):
        def attempt():
            p = self.start(library, program_args, parallelism)
            out, err = p.communicate(timeout=120)
            if p.returncode != 0:  # Airflow fails a BashOperator on a non-zero exit
                raise RuntimeError("exit %d: %s" % (p.returncode, err.decode(errors="replace")))
            return out.decode()
        return airflow_task(attempt, sluice_rest.RETRIES)

    def test_an_attached_run_finishes_with_exit_code_0(self):
        out = os.path.join(CLUSTER.dir, "bash-out")
        stdout, failures = self.run_task(os.path.join(JOBS, "libsequence_job.so"),
                                         ["--count", "1000", "--keys", "3", "--output", out], 2)
        self.assertEqual(failures, [])
        self.assertIn("FINISHED", stdout)
        self.assertTrue(sequence_output_ok(out, 1000, 3))

    def test_a_failed_job_exits_1_and_the_retry_runs_it_again(self):
        out = os.path.join(CLUSTER.dir, "bash-retried")
        markers = tempfile.mkdtemp(dir=CLUSTER.dir)
        stdout, failures = self.run_task(
            os.path.join(JOBS, "libchaos_count_job.so"),
            ["--keys", "5", "--per-key", "100", "--rate", "2000", "--output", out,
             "--marker-dir", markers, "--fail-map"], 1)
        self.assertEqual(len(failures), 1, failures)
        self.assertIn("exit 1", str(failures[0]))
        self.assertIn("FAILED", str(failures[0]))
        self.assertTrue(chaos_output_ok(out, 5, 100))

    def test_killing_the_task_cancels_its_job(self):
        p = self.start(os.path.join(JOBS, "libsequence_job.so"), ["--sleep-us", "1000"])
        try:
            line = p.stdout.readline().decode()  # "Job has been submitted with JobID <id>"
            self.assertIn("submitted with JobID", line)
            job = line.split()[-1]
            self.assertTrue(wait_until(
                lambda: CLUSTER.get_json(sluice_rest.status_endpoint(job))[1].get("status")
                == "RUNNING", 30))
            os.killpg(p.pid, signal.SIGTERM)  # what Airflow does to a task it kills
            p.wait(30)
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        err = p.stderr.read().decode()
        p.stdout.close()
        p.stderr.close()
        self.assertEqual(p.returncode, 128 + signal.SIGTERM, err)
        self.assertIn("cancelling job " + job, err)
        self.assertTrue(wait_until(
            lambda: CLUSTER.get_json(sluice_rest.status_endpoint(job))[1].get("status")
            == "CANCELED", 30))


if __name__ == "__main__":
    unittest.main(verbosity=2)
