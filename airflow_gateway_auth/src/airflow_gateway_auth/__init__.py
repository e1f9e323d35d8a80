"""OAuth2 client-credentials auth for Airflow HTTP connections that go through airgate gateways."""

__version__ = "0.1.0"
