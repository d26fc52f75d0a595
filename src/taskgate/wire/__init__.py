"""Wire models of the Execution API, matching the Airflow Task SDK 1.3 datamodels.

Plain pydantic: the server (``taskgate.api``) and the client (``taskgate.client``) both
import them, and nothing here imports FastAPI.
"""
