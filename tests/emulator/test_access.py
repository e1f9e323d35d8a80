"""Zero Trust Access through the official client: identity providers, groups, reusable policies,
applications and service tokens, with the rules between them (an application's policies exist and its
domain is its own; a policy or token in use stays), and the service token's secret shown once."""

from __future__ import annotations

from cloudflare import Cloudflare

from local_services.cloudflare_api.testing import RunningEmulator
from tests.emulator.conftest import ACCOUNT, ZONE_NAME, refused, unchanged

HOST = f"warehouse.{ZONE_NAME}"


def test_identity_providers_and_groups(cf: Cloudflare, emulator: RunningEmulator) -> None:
    access = cf.zero_trust
    idp = access.identity_providers.create(
        account_id=ACCOUNT,
        name="acme-oidc",
        type="oidc",
        config={
            "client_id": "airgate",
            "auth_url": "https://idp.test/auth",
            "token_url": "https://idp.test/token",
        },
    )
    assert idp is not None and idp.id is not None
    assert [i.name for i in access.identity_providers.list(account_id=ACCOUNT)] == ["acme-oidc"]
    renamed = access.identity_providers.update(
        idp.id, account_id=ACCOUNT, name="acme", type="oidc", config={"client_id": "airgate"}
    )
    assert renamed is not None and renamed.name == "acme"
    group = access.access.groups.create(
        account_id=ACCOUNT, name="oncall", include=[{"email": {"email": "a@acme.test"}}]
    )
    assert group is not None and access.access.groups.get(group.id or "", account_id=ACCOUNT) is not None
    refused(400, 12130, access.access.groups.create, account_id=ACCOUNT, name="empty", include=[])
    policy = access.access.policies.create(
        account_id=ACCOUNT, name="oncall", decision="allow", include=[{"group": {"id": group.id or ""}}]
    )
    assert policy is not None
    refused(400, 12009, access.access.groups.delete, group.id or "", account_id=ACCOUNT)
    access.identity_providers.delete(idp.id, account_id=ACCOUNT)
    refused(404, 12005, access.identity_providers.get, idp.id, account_id=ACCOUNT)
    assert [g["name"] for g in emulator.state()["accounts"][ACCOUNT]["access"]["groups"].values()] == [
        "oncall"
    ]


def test_applications_need_their_policies_and_own_their_domain(
    cf: Cloudflare, emulator: RunningEmulator
) -> None:
    access = cf.zero_trust.access
    same = unchanged(emulator)
    refused(
        400,
        12005,
        access.applications.create,
        account_id=ACCOUNT,
        type="self_hosted",
        domain=HOST,
        policies=[{"id": "9f0e0000-0000-4000-8000-000000000000", "precedence": 1}],
    )
    same()
    token = access.service_tokens.create(account_id=ACCOUNT, name="ai-agent")
    assert token is not None and token.id is not None
    policy = access.policies.create(
        account_id=ACCOUNT,
        name="machines",
        decision="non_identity",
        include=[{"service_token": {"token_id": token.id}}],
    )
    assert policy is not None and policy.id is not None and policy.reusable is True
    app = access.applications.create(
        account_id=ACCOUNT,
        type="self_hosted",
        domain=HOST,
        name="warehouse",
        policies=[{"id": policy.id, "precedence": 1}],
    )
    assert app is not None and app.to_dict()["aud"] and app.to_dict()["policies"][0]["id"] == policy.id
    refused(
        400,
        12130,
        access.applications.create,
        account_id=ACCOUNT,
        type="self_hosted",
        domain=HOST,
        policies=[{"id": policy.id, "precedence": 1}],
    )
    # The audience tag stays with the application across an update.
    updated = access.applications.update(
        app.to_dict()["id"],
        account_id=ACCOUNT,
        type="self_hosted",
        domain=HOST,
        name="warehouse-2",
        policies=[{"id": policy.id, "precedence": 1}],
    )
    assert updated is not None and updated.to_dict()["aud"] == app.to_dict()["aud"]
    assert [a.to_dict()["name"] for a in access.applications.list(account_id=ACCOUNT)] == ["warehouse-2"]
    assert access.policies.get(policy.id, account_id=ACCOUNT).app_count == 1
    refused(400, 12009, access.policies.delete, policy.id, account_id=ACCOUNT)
    refused(400, 12009, access.service_tokens.delete, token.id, account_id=ACCOUNT)
    refused(
        400,
        12130,
        access.policies.create,
        account_id=ACCOUNT,
        name="x",
        decision="maybe",
        include=[{"everyone": {}}],
    )
    refused(
        400,
        12005,
        access.policies.create,
        account_id=ACCOUNT,
        name="x",
        decision="non_identity",
        include=[{"service_token": {"token_id": "missing"}}],
    )
    access.applications.delete(app.to_dict()["id"], account_id=ACCOUNT)
    access.policies.delete(policy.id, account_id=ACCOUNT)
    access.service_tokens.delete(token.id, account_id=ACCOUNT)
    assert all(not v for v in emulator.state()["accounts"][ACCOUNT]["access"].values())


def test_a_service_token_secret_is_shown_when_issued_and_rotates_by_version(
    cf: Cloudflare, emulator: RunningEmulator
) -> None:
    tokens = cf.zero_trust.access.service_tokens
    created = tokens.create(account_id=ACCOUNT, name="ai-agent", duration="8760h")
    assert created is not None and created.id and created.client_secret and created.client_id
    read = tokens.get(created.id, account_id=ACCOUNT)
    assert read is not None and read.client_id == created.client_id and "client_secret" not in read.to_dict()
    # The same version again is an ordinary update: no new secret.
    renamed = tokens.update(created.id, account_id=ACCOUNT, name="agent")
    assert renamed is not None and renamed.name == "agent" and "client_secret" not in renamed.to_dict()
    rotated = tokens.update(
        created.id,
        account_id=ACCOUNT,
        name="agent",
        client_secret_version=2,
        previous_client_secret_expires_at="2026-12-31T00:00:00Z",
    )
    assert rotated is not None and rotated.to_dict()["client_secret"] != created.client_secret
    stored = emulator.state()["accounts"][ACCOUNT]["access"]["service_tokens"][created.id]
    assert set(stored["secrets"]) == {"1", "2"} and stored["client_secret_version"] == 2
    assert stored["previous_client_secret_expires_at"] == "2026-12-31T00:00:00Z"
    # An update that leaves the version out keeps it; one that lowers it, or raises it without saying
    # until when the previous secret holds, is refused.
    kept = tokens.update(created.id, account_id=ACCOUNT, name="agent", duration="2h45m")
    assert kept is not None and kept.to_dict()["client_secret_version"] == 2 and kept.duration == "2h45m"
    refused(400, 12130, tokens.update, created.id, account_id=ACCOUNT, name="agent", client_secret_version=3)
    refused(400, 12130, tokens.update, created.id, account_id=ACCOUNT, name="agent", client_secret_version=1)
    refused(400, 12130, tokens.create, account_id=ACCOUNT, name="x", duration="1 year")


def test_rotate_issues_the_next_version_and_says_until_when_the_previous_holds(
    cf: Cloudflare, emulator: RunningEmulator
) -> None:
    tokens = cf.zero_trust.access.service_tokens
    created = tokens.create(account_id=ACCOUNT, name="ci")
    assert created is not None and created.id
    fresh = tokens.rotate(
        created.id, account_id=ACCOUNT, previous_client_secret_expires_at="2027-01-01T00:00:00Z"
    )
    assert fresh is not None and fresh.client_secret and fresh.client_secret != created.client_secret
    stored = emulator.state()["accounts"][ACCOUNT]["access"]["service_tokens"][created.id]
    assert (
        stored["client_secret_version"] == 2
        and stored["previous_client_secret_expires_at"] == "2027-01-01T00:00:00Z"
    )
    again = tokens.rotate(created.id, account_id=ACCOUNT)  # no time given: the previous secret expires now
    assert again is not None and again.client_secret not in (created.client_secret, fresh.client_secret)
    stored = emulator.state()["accounts"][ACCOUNT]["access"]["service_tokens"][created.id]
    assert stored["client_secret_version"] == 3 and stored["previous_client_secret_expires_at"] < "2027"
    assert tokens.refresh(created.id, account_id=ACCOUNT) is not None
    refused(404, 12005, tokens.rotate, "9f0e0000-0000-4000-8000-000000000000", account_id=ACCOUNT)
