"""Every container image the Airflow deployment references, with its pin, in one place.

The chart would otherwise pull images of its own choosing; airgate turns off what it does not use
(StatsD, the Bitnami PostgreSQL subchart, the chart's create-user Job) and names the rest here, so a
reviewer sees each image and a test checks none is unpinned. The README's "Airflow" section lists
the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.airflow.kubernetes_plan import REDIS_IMAGE
from infra.config.airflow_model import AirflowSettings


@dataclass(frozen=True)
class ImagePin:
    role: str
    """What runs it."""
    reference: str
    """`repository:tag` (or `repository@sha256:...`)."""


def airflow_image(settings: AirflowSettings) -> str:
    """The Airflow image reference: by digest when the stack pins one, else `repository:tag`."""
    assert settings.image is not None
    if settings.image.digest:
        return f"{settings.image.repository}@{settings.image.digest}"
    return f"{settings.image.repository}:{settings.image.tag}"


def plan_images(settings: AirflowSettings) -> tuple[ImagePin, ...]:
    assert settings.database is not None
    pins = [
        ImagePin(
            "airflow (api-server, scheduler, dag-processor, triggerer, task pods, jobs)",
            airflow_image(settings),
        ),
        ImagePin("cloudflared (the tunnel to the API server)", settings.cloudflared_image),
    ]
    if settings.database.bundled_postgres:
        pins.append(ImagePin("postgres (the bundled metadata database)", settings.database.postgres_image))
    if "CeleryExecutor" in settings.executor:
        pins.append(ImagePin("redis (the Celery broker)", REDIS_IMAGE))
    return tuple(pins)
