"""DAGs the interop tests run with the real Airflow Task SDK worker against taskgate."""

import time
from datetime import timedelta

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import Variable, dag, task
from airflow.sdk.bases.hook import BaseHook


@dag(dag_id="interop_data", schedule=None)
def interop_data():
    @task
    def produce():
        connection = BaseHook.get_connection("warehouse")
        return {"greeting": Variable.get("greeting"), "host": connection.host, "port": connection.port}

    @task
    def consume(value):
        return f"{value['greeting']} from {value['host']}:{value['port']}"

    consume(produce())


@dag(dag_id="interop_retry", schedule=None)
def interop_retry():
    @task(retries=1, retry_delay=timedelta(seconds=0))
    def flaky():
        raise ValueError("this task always fails")

    flaky()


@dag(dag_id="interop_slow", schedule=None)
def interop_slow():
    @task
    def slow():
        # Outlives the (short, in the test) execution-token lifetime: only refreshed
        # tokens let the worker report the result.
        time.sleep(float(Variable.get("slow_seconds")))
        return "done"

    slow()


@dag(dag_id="interop_templated", schedule=None, params={"who": "taskgate"})
def interop_templated():
    BashOperator(
        task_id="echo",
        bash_command="echo {{ params.who }} {{ var.value.greeting }} {{ run_id }}",
    )


@dag(dag_id="interop_mapped", schedule=None)
def interop_mapped():
    @task
    def numbers():
        return [1, 2, 3]

    @task
    def double(x):
        return x * 2

    @task
    def total(values):
        return sum(values)

    total(double.expand(x=numbers()))


interop_data()
interop_mapped()
interop_retry()
interop_slow()
interop_templated()
