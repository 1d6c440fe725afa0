"""The requests an Airflow DAG makes to a Sluice cluster, and the checks of their answers.

sluice_dag.py builds its tasks from this module, and tests/integration/airflow_replay_test.py
replays it against a real cluster, so the two cannot drift apart. Python's standard library
only: no Airflow import here (the DAG hands in Airflow's HTTP hook as `request`).

A `request` is a function (method, endpoint, body, headers) -> (status code, parsed JSON body);
endpoints are relative to the REST API's base URL (Airflow's HTTP connection), without a
leading slash, as Airflow's HTTP operators take them.
"""

import json
import os
import shlex
import time
import uuid

# Retries of the task that runs the job (and of the BashOperator): a failed job fails its task
# and Airflow runs it again, this many times.
RETRIES = 2
# How often the job's state is polled, and how long a run may take, in seconds.
POLL_SECONDS = 5
TIMEOUT_SECONDS = 3600

TERMINAL_STATES = ("FINISHED", "FAILED", "CANCELED")


class JobFailed(Exception):
    """The job ended FAILED or CANCELED: the Airflow task fails, and its retries apply."""


class RequestFailed(Exception):
    """The REST API answered with an error."""


def _checked(status, body, what):
    if status // 100 != 2:
        errors = body.get("errors") if isinstance(body, dict) else None
        raise RequestFailed("%s: HTTP %s: %s" % (what, status, errors or body))
    return body


# ---- upload ----

UPLOAD_ENDPOINT = "jars/upload"


def multipart_upload(library_path):
    """The body and headers of POST /jars/upload: the library in the multipart field `jarfile`."""
    boundary = uuid.uuid4().hex
    with open(library_path, "rb") as f:
        data = f.read()
    name = os.path.basename(library_path)
    body = (
        ("--%s\r\nContent-Disposition: form-data; name=\"jarfile\"; filename=\"%s\"\r\n"
         "Content-Type: application/x-sharedlib\r\n\r\n" % (boundary, name)).encode()
        + data + ("\r\n--%s--\r\n" % boundary).encode())
    return body, {"Content-Type": "multipart/form-data; boundary=%s" % boundary}


def jar_id_of_upload(body):
    """The jar id: the last component of `filename`, as with Flink's answer."""
    if body.get("status") != "success":
        raise RequestFailed("upload: %s" % body)
    return body["filename"].rsplit("/", 1)[-1]


def upload(request, library_path):
    data, headers = multipart_upload(library_path)
    status, body = request("POST", UPLOAD_ENDPOINT, data, headers)
    return jar_id_of_upload(_checked(status, body, "upload"))


# ---- run and wait ----

JSON_HEADERS = {"Content-Type": "application/json"}


def run_endpoint(jar_id):
    return "jars/%s/run" % jar_id


def run_body(program_args, parallelism=None, configuration=None):
    body = {"programArgsList": list(program_args)}
    if parallelism:
        body["parallelism"] = int(parallelism)
    if configuration:
        body["flinkConfiguration"] = dict(configuration)
    return json.dumps(body)


def status_endpoint(job_id):
    return "jobs/%s/status" % job_id


def result_endpoint(job_id):
    return "jobs/%s/execution-result" % job_id


def job_ended(body):
    """HttpSensor's check of GET /jobs/:id/status: True once the job has ended."""
    return body.get("status") in TERMINAL_STATES


def check_result(body):
    """The job's execution result; JobFailed unless it SUCCEEDED."""
    if body.get("status", {}).get("id") != "COMPLETED":
        raise RequestFailed("the job has not ended: %s" % body)
    result = body["job-execution-result"]
    if result.get("application-status") != "SUCCEEDED":
        cause = result.get("failure-cause", {}).get("stack-trace", "")
        raise JobFailed("job %s %s %s" % (result.get("id"), result.get("application-status"), cause))
    return result


def run_and_wait(request, jar_id, program_args, parallelism=None, configuration=None,
                 poll_seconds=POLL_SECONDS, timeout_seconds=TIMEOUT_SECONDS, on_submitted=None):
    """Runs the uploaded library and waits for the job's end: the execution result when it
    FINISHED; JobFailed when it FAILED or was CANCELED (the Airflow task fails and is retried)."""
    status, body = request("POST", run_endpoint(jar_id),
                           run_body(program_args, parallelism, configuration), JSON_HEADERS)
    job_id = _checked(status, body, "run")["jobid"]
    if on_submitted:
        on_submitted(job_id)
    deadline = time.monotonic() + timeout_seconds
    while True:
        status, body = request("GET", status_endpoint(job_id), None, None)
        if job_ended(_checked(status, body, "status")):
            break
        if time.monotonic() > deadline:
            raise RequestFailed("job %s still %s after %s s" % (job_id, body.get("status"),
                                                               timeout_seconds))
        time.sleep(poll_seconds)
    status, body = request("GET", result_endpoint(job_id), None, None)
    return check_result(_checked(status, body, "execution-result"))


def delete_endpoint(jar_id):
    return "jars/%s" % jar_id


# ---- the BashOperator way ----


def sluice_run_command(sluice, jobmanager, library, program_args, parallelism=None):
    """`sluice run` attached, with -sae: Airflow stopping the task (SIGTERM) cancels the job, and
    the exit code (1 when the job did not finish) fails the task."""
    cmd = [sluice, "run", "-sae", "-m", jobmanager]
    if parallelism:
        cmd += ["-p", str(int(parallelism))]
    cmd += [library] + list(program_args)
    # exec: the signal Airflow sends reaches sluice itself.
    return "exec " + " ".join(shlex.quote(c) for c in cmd)
