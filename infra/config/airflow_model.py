"""The `airflow:` section of a stack: how Airflow runs on Kubernetes and which roles its tasks act as."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class AirflowSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
