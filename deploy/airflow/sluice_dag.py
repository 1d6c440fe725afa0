"""Airflow DAGs that run a Sluice job and fail their task when the job FAILED, so that Airflow's
retries apply. Two ways, pick one:

  sluice_rest   the REST API through Airflow's http provider (apache-airflow-providers-http):
                HttpSensor waits for the cluster, the library is uploaded (POST /jars/upload),
                run (POST /jars/:jarid/run) and waited for (GET /jobs/:jobid/status, then
                /execution-result), and HttpOperator removes it (DELETE /jars/:jarid).
  sluice_bash   a BashOperator running `sluice run -sae` attached: the exit code is the job's
                outcome, and Airflow stopping the task (SIGTERM) cancels the job.

Airflow retries a task, not a chain of tasks: so that a retry submits the job again, running and
waiting are one task. The requests and their checks live in sluice_rest.py beside this file
(tests/integration/airflow_replay_test.py replays them against a real cluster).

Set up: copy both files into Airflow's dags folder; an HTTP connection `sluice_rest` with the
REST address (host http://jobmanager-host, or https:// with security.ssl.rest.enabled, port
8081); the job library and the `sluice` CLI reachable by the Airflow worker (sluice_bash) or only
the library (sluice_rest).

A cluster with a REST token (security.rest.auth.token-file): put it in the connection's Extra as
{"Authorization": "Bearer <token>"}. The HTTP hook sends the extras as headers with every
request, the sensor's and the operators' too, so the token appears in no DAG file; Airflow
keeps them encrypted when it has a Fernet key (fernet_key), as it should. Over https:// with the
cluster's own CA, the worker must trust it: REQUESTS_CA_BUNDLE=/path/ca.pem in its environment
(or the provider's "verify" extra where it has one). For sluice_bash, the worker's Sluice
configuration (config.yaml in $SLUICE_CONF_DIR) names the token file under the same key, and
security.ssl.rest.* for https: the CLI sends the token when -m is the REST address; with
internal TLS it also needs the cluster's security.ssl.internal.* files, as any client does.
"""

import pendulum
from airflow import DAG
from airflow.decorators import task
from airflow.operators.bash import BashOperator
from airflow.providers.http.hooks.http import HttpHook
from airflow.providers.http.operators.http import HttpOperator
from airflow.providers.http.sensors.http import HttpSensor

import sluice_rest

CONN_ID = "sluice_rest"
PARAMS = {
    "library": "/opt/sluice/jobs/libwordcount.so",
    "program_args": ["--input", "/data/in", "--output", "/data/out"],
    "parallelism": 2,
    "sluice": "/opt/sluice/bin/sluice",
    "jobmanager": "jobmanager-host:8081",  # -m takes the REST address, as Flink's does
}


def _request(method, endpoint, body, headers):
    """sluice_rest's request over Airflow's HTTP hook (and connection)."""
    response = HttpHook(method=method, http_conn_id=CONN_ID).run(
        endpoint, data=body, headers=headers, extra_options={"check_response": False})
    try:
        parsed = response.json()
    except ValueError:
        parsed = {"errors": [response.text]}
    return response.status_code, parsed


with DAG(
    dag_id="sluice_rest",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    params=PARAMS,
) as rest_dag:
    cluster_ready = HttpSensor(
        task_id="cluster_ready",
        http_conn_id=CONN_ID,
        endpoint="overview",
        response_check=lambda response: response.json().get("taskmanagers", 0) > 0,
        poke_interval=sluice_rest.POLL_SECONDS,
        timeout=600,
    )

    @task
    def upload(params=None):
        return sluice_rest.upload(_request, params["library"])

    @task(retries=sluice_rest.RETRIES)
    def run_job(jar_id, params=None):
        # Raises sluice_rest.JobFailed when the job FAILED: the task fails and is retried.
        return sluice_rest.run_and_wait(_request, jar_id, params["program_args"],
                                        params["parallelism"])

    jar = upload()
    remove = HttpOperator(
        task_id="delete_library",
        http_conn_id=CONN_ID,
        method="DELETE",
        endpoint="jars/{{ ti.xcom_pull(task_ids='upload') }}",
        trigger_rule="all_done",
    )
    cluster_ready >> jar >> run_job(jar) >> remove


with DAG(
    dag_id="sluice_bash",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
) as bash_dag:
    BashOperator(
        task_id="run_job",
        retries=sluice_rest.RETRIES,
        bash_command=sluice_rest.sluice_run_command(
            PARAMS["sluice"], PARAMS["jobmanager"], PARAMS["library"], PARAMS["program_args"],
            PARAMS["parallelism"]),
    )
