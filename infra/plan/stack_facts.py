"""The parts of a plan document that come from the stack config itself, not from the program's
resources: DAG grants, identities, migration history, zone and review settings.

`airgate plan` and the CrossGuard pack (which sees only the engine's resources) both build them
here, so the rules read the same facts in both (e.g. `allow_deleting_classes`).
"""

from __future__ import annotations

from infra.config.model import StackConfig
from infra.plan.format import PlanDocument, ReviewEntry


def review_entry(stack: StackConfig) -> ReviewEntry:
    review = stack.review
    return {
        "max_service_token_hours": review.max_service_token_hours,
        "max_compatibility_age_days": review.max_compatibility_age_days,
        "max_prod_body_bytes": review.max_prod_body_bytes,
        "allowed_upstream_domains": sorted(review.allowed_upstream_domains),
        "admin_path_segments": sorted(review.admin_path_segments),
        "exceptions": {rule: sorted(subjects) for rule, subjects in sorted(review.exceptions.items())},
    }


def stack_sections(stack: StackConfig) -> PlanDocument:
    """Every config-derived key of the plan document (a partial document, merged by callers)."""
    sections: PlanDocument = {  # type: ignore[typeddict-item]  # partial by design
        "zone": stack.zone,
        "review": review_entry(stack),
        "dag_grants": sorted(
            (
                {"gateway": grant.gateway, "role": grant.role, "dag": dag, "conf_schema": grant.conf_schema}
                for grant in stack.dag_grants
                for dag in grant.dags
            ),
            key=lambda g: (g["gateway"], g["role"], g["dag"]),
        ),
        "identities": {
            "roles": {
                name: {
                    "groups": sorted(role.groups),
                    "emails": sorted(role.emails),
                    "service_tokens": sorted(role.service_tokens),
                    "oidc_clients": sorted(role.oidc_clients),
                }
                for name, role in sorted(stack.roles.items())
            },
            "service_tokens": {
                name: {
                    "duration": token.duration,
                    "version": token.rotation.version,
                    "previous_secret_expires_at": (
                        token.rotation.previous_secret_expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
                        if token.rotation.previous_secret_expires_at
                        else None
                    ),
                }
                for name, token in sorted(stack.service_tokens.items())
            },
        },
        "durable_object_migrations": [
            {
                "tag": step.tag,
                "new_sqlite_classes": list(step.new_sqlite_classes),
                "deleted_classes": list(step.deleted_classes),
                "allow_deleting_classes": step.allow_deleting_classes,
            }
            for step in stack.durable_object_migrations
        ],
    }
    return sections
