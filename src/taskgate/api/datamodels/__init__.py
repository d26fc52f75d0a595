"""Wire models of the Execution API, matching the Airflow Task SDK 1.3 datamodels."""
