"""The `cloudflare` provider's resource types the program uses, each as the Cloudflare API calls the
official `cloudflare` library makes, against `cloudflare:baseUrl` with `cloudflare:apiToken`.

Inputs arrive as Pulumi names them (camelCase; `includes` for the API's `include`); the API takes
snake_case. Which input changes replace a resource comes from infra/review/replacements.py, the
table `airgate diff` reads. What a resource's `read` reports is what the API holds, so
`pulumi refresh` sees an object deleted or changed behind the program's back.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import cloudflare
from cloudflare import Cloudflare, omit

from infra.review.replacements import REPLACE_ON
from local_services.providers.properties import from_api, to_api
from local_services.providers.server import Created, ProviderError, ResourceType, Tables

_T = TypeVar("_T")


def _call(action: str, call: Callable[[], _T]) -> _T:
    try:
        return call()
    except cloudflare.APIStatusError as error:
        raise ProviderError(f"{action}: {error.status_code} {_errors(error)}") from None
    except cloudflare.APIConnectionError as error:
        raise ProviderError(f"{action}: {error}") from None


def _errors(error: cloudflare.APIStatusError) -> str:
    body = error.body if isinstance(error.body, dict) else {}
    found = body.get("errors") or []
    return "; ".join(f"{e.get('message')} ({e.get('code')})" for e in found if isinstance(e, dict)) or str(
        error
    )


def _missing(call: Callable[[], _T]) -> _T | None:
    try:
        return call()
    except cloudflare.NotFoundError:
        return None


def _api_fields(
    inputs: Mapping[str, Any], *, drop: tuple[str, ...] = (), rename: Mapping[str, str] | None = None
) -> dict[str, Any]:
    names = rename or {}
    return {names.get(k, _snake(k)): to_api(v) for k, v in inputs.items() if k not in drop}


def _accepted(method: Callable[..., Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    # An update verb takes fewer fields than create (a tunnel's `config_src` is fixed at creation);
    # those fields are in REPLACE_ON or never change, so an update leaves them out.
    params = inspect.signature(method).parameters
    return {k: v for k, v in fields.items() if k in params}


def _snake(name: str) -> str:
    return to_api({name: None}).popitem()[0]


def _dump(model: Any) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_none=True) if model is not None else {}


@dataclass
class WorkersScript:
    api: Cloudflare
    replace_on = REPLACE_ON["WorkersScript"]
    computed = ("etag", "createdOn", "modifiedOn")

    def _upload(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        main = inputs.get("mainModule") or "worker.js"
        metadata = _api_fields(
            inputs, drop=("accountId", "scriptName", "content", "contentFile", "contentSha256")
        )
        module = (main, str(inputs.get("content", "")).encode(), "application/javascript+module")
        result = _call(
            f"upload Worker {inputs['scriptName']}",
            lambda: self.api.workers.scripts.update(
                inputs["scriptName"], account_id=inputs["accountId"], metadata=metadata, files=[module]
            ),
        )
        found = _dump(result)
        return {
            "etag": found.get("etag", ""),
            "createdOn": found.get("created_on", ""),
            "modifiedOn": found.get("modified_on", ""),
        }

    def create(self, inputs: dict[str, Any]) -> Created:
        return Created(id=inputs["scriptName"], outputs=self._upload(inputs))

    def read(self, id_: str, state: dict[str, Any]) -> dict[str, Any] | None:
        scripts = _call(
            "list Workers", lambda: list(self.api.workers.scripts.list(account_id=state["accountId"]))
        )
        return state if any(s.id == id_ for s in scripts) else None

    def update(self, id_: str, state: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
        return self._upload(news)

    def delete(self, id_: str, state: dict[str, Any]) -> None:
        _call(
            f"delete Worker {id_}",
            lambda: self.api.workers.scripts.delete(id_, account_id=state["accountId"]),
        )


@dataclass
class WorkersKvNamespace:
    api: Cloudflare
    replace_on = REPLACE_ON["WorkersKvNamespace"]
    computed = ("supportsUrlEncoding",)

    def create(self, inputs: dict[str, Any]) -> Created:
        made = _call(
            f"create KV namespace {inputs['title']}",
            lambda: self.api.kv.namespaces.create(account_id=inputs["accountId"], title=inputs["title"]),
        )
        found = _dump(made)
        return Created(
            id=found["id"], outputs={"supportsUrlEncoding": found.get("supports_url_encoding", True)}
        )

    def read(self, id_: str, state: dict[str, Any]) -> dict[str, Any] | None:
        live = _missing(lambda: self.api.kv.namespaces.get(id_, account_id=state["accountId"]))
        return None if live is None else {**state, "title": live.title}

    def update(self, id_: str, state: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
        _call(
            f"rename KV namespace {id_}",
            lambda: self.api.kv.namespaces.update(id_, account_id=news["accountId"], title=news["title"]),
        )
        return {"supportsUrlEncoding": state.get("supportsUrlEncoding", True)}

    def delete(self, id_: str, state: dict[str, Any]) -> None:
        _call(
            f"delete KV namespace {id_}",
            lambda: self.api.kv.namespaces.delete(id_, account_id=state["accountId"]),
        )


@dataclass
class WorkersKv:
    api: Cloudflare
    replace_on = REPLACE_ON["WorkersKv"]
    computed = ()

    def _put(self, inputs: Mapping[str, Any]) -> None:
        _call(
            f"write KV key {inputs['keyName']}",
            lambda: self.api.kv.namespaces.values.update(
                inputs["keyName"],
                account_id=inputs["accountId"],
                namespace_id=inputs["namespaceId"],
                value=str(inputs.get("value", "")).encode(),
            ),
        )

    def create(self, inputs: dict[str, Any]) -> Created:
        self._put(inputs)
        return Created(id=inputs["keyName"], outputs={})

    def read(self, id_: str, state: dict[str, Any]) -> dict[str, Any] | None:
        live = _missing(
            lambda: self.api.kv.namespaces.values.get(
                id_, account_id=state["accountId"], namespace_id=state["namespaceId"]
            )
        )
        return None if live is None else {**state, "value": live.text()}

    def update(self, id_: str, state: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
        self._put(news)
        return {}

    def delete(self, id_: str, state: dict[str, Any]) -> None:
        _call(
            f"delete KV key {id_}",
            lambda: self.api.kv.namespaces.values.delete(
                id_, account_id=state["accountId"], namespace_id=state["namespaceId"]
            ),
        )


@dataclass
class WorkersCustomDomain:
    api: Cloudflare
    replace_on = REPLACE_ON["WorkersCustomDomain"]
    computed = ("zoneName",)

    def _attach(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        return _dump(
            _call(
                f"attach {inputs['hostname']}",
                lambda: self.api.workers.domains.update(
                    account_id=inputs["accountId"],
                    hostname=inputs["hostname"],
                    service=inputs["service"],
                    zone_id=inputs["zoneId"],
                ),
            )
        )

    def create(self, inputs: dict[str, Any]) -> Created:
        found = self._attach(inputs)
        return Created(id=found["id"], outputs={"zoneName": found.get("zone_name", "")})

    def read(self, id_: str, state: dict[str, Any]) -> dict[str, Any] | None:
        live = _missing(lambda: self.api.workers.domains.get(id_, account_id=state["accountId"]))
        return None if live is None else {**state, "service": live.service, "hostname": live.hostname}

    def update(self, id_: str, state: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
        return {"zoneName": self._attach(news).get("zone_name", "")}

    def delete(self, id_: str, state: dict[str, Any]) -> None:
        _call(
            f"detach domain {id_}",
            lambda: self.api.workers.domains.delete(id_, account_id=state["accountId"]),
        )


@dataclass
class WorkersRoute:
    api: Cloudflare
    replace_on = REPLACE_ON["WorkersRoute"]
    computed = ()

    def create(self, inputs: dict[str, Any]) -> Created:
        made = _call(
            f"route {inputs['pattern']}",
            lambda: self.api.workers.routes.create(
                zone_id=inputs["zoneId"], pattern=inputs["pattern"], script=inputs.get("script", "")
            ),
        )
        return Created(id=_dump(made)["id"], outputs={})

    def read(self, id_: str, state: dict[str, Any]) -> dict[str, Any] | None:
        live = _missing(lambda: self.api.workers.routes.get(id_, zone_id=state["zoneId"]))
        return None if live is None else {**state, "pattern": live.pattern, "script": live.script}

    def update(self, id_: str, state: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
        _call(
            f"route {news['pattern']}",
            lambda: self.api.workers.routes.update(
                id_, zone_id=news["zoneId"], pattern=news["pattern"], script=news.get("script", "")
            ),
        )
        return {}

    def delete(self, id_: str, state: dict[str, Any]) -> None:
        _call(f"delete route {id_}", lambda: self.api.workers.routes.delete(id_, zone_id=state["zoneId"]))


@dataclass
class AccountObject:
    """An account-scoped object with create/update/get/delete by id: Access identity providers,
    reusable policies and applications, tunnels, Logpush jobs, DNS records (zone-scoped)."""

    api: Cloudflare
    kind: str
    endpoint: Callable[[Cloudflare], Any]
    computed: tuple[str, ...] = ()
    rename: Mapping[str, str] | None = None
    scope: str = "accountId"
    update_verb: str = "update"

    @property
    def replace_on(self) -> frozenset[str]:
        return REPLACE_ON[self.kind]

    def _scope(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return {_snake(self.scope): values[self.scope]}

    def _body(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        return _api_fields(inputs, drop=(self.scope,), rename=self.rename or {})

    def _outputs(self, found: Mapping[str, Any]) -> dict[str, Any]:
        camel = from_api(dict(found))
        return {name: camel.get(name, "") for name in self.computed}

    def create(self, inputs: dict[str, Any]) -> Created:
        made = _call(
            f"create {self.kind} {inputs.get('name', '')}".strip(),
            lambda: self.endpoint(self.api).create(**self._scope(inputs), **self._body(inputs)),
        )
        found = _dump(made)
        return Created(id=str(found["id"]), outputs=self._outputs(found))

    def read(self, id_: str, state: dict[str, Any]) -> dict[str, Any] | None:
        live = _missing(lambda: self.endpoint(self.api).get(id_, **self._scope(state)))
        return None if live is None else state

    def update(self, id_: str, state: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
        verb = getattr(self.endpoint(self.api), self.update_verb)
        body = _accepted(verb, self._body(news))
        found = _dump(_call(f"update {self.kind} {id_}", lambda: verb(id_, **self._scope(news), **body)))
        return {**{name: state.get(name, "") for name in self.computed}, **self._outputs(found)}

    def delete(self, id_: str, state: dict[str, Any]) -> None:
        _call(f"delete {self.kind} {id_}", lambda: self.endpoint(self.api).delete(id_, **self._scope(state)))


@dataclass
class ServiceToken:
    """Access service tokens: a higher `clientSecretVersion` in an update rotates the secret, and the
    API keeps the previous one valid until `previousClientSecretExpiresAt`."""

    api: Cloudflare
    replace_on = REPLACE_ON["ZeroTrustAccessServiceToken"]
    computed = ("clientId", "clientSecret", "expiresAt")

    def create(self, inputs: dict[str, Any]) -> Created:
        made = _dump(
            _call(
                f"create service token {inputs['name']}",
                lambda: self.api.zero_trust.access.service_tokens.create(
                    account_id=inputs["accountId"],
                    name=inputs["name"],
                    duration=inputs.get("duration", "8760h"),
                ),
            )
        )
        return Created(
            id=made["id"],
            outputs={
                "clientId": made["client_id"],
                "clientSecret": made["client_secret"],
                "expiresAt": made.get("expires_at", ""),
            },
        )

    def read(self, id_: str, state: dict[str, Any]) -> dict[str, Any] | None:
        live = _missing(
            lambda: self.api.zero_trust.access.service_tokens.get(id_, account_id=state["accountId"])
        )
        return None if live is None else {**state, "name": live.name}

    def update(self, id_: str, state: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
        version = news.get("clientSecretVersion")
        updated = _dump(
            _call(
                f"update service token {id_}",
                lambda: self.api.zero_trust.access.service_tokens.update(
                    id_,
                    account_id=news["accountId"],
                    name=news["name"],
                    duration=news.get("duration", "8760h"),
                    client_secret_version=version if version is not None else omit,
                    previous_client_secret_expires_at=news.get("previousClientSecretExpiresAt") or omit,
                ),
            )
        )
        outputs = {name: state.get(name, "") for name in self.computed}
        # The API shows a secret once: in the answer to the update that rotated it.
        if updated.get("client_secret"):
            outputs["clientSecret"] = updated["client_secret"]
        outputs["expiresAt"] = updated.get("expires_at", outputs["expiresAt"])
        return outputs

    def delete(self, id_: str, state: dict[str, Any]) -> None:
        _call(
            f"delete service token {id_}",
            lambda: self.api.zero_trust.access.service_tokens.delete(id_, account_id=state["accountId"]),
        )


@dataclass
class TunnelConfig:
    """A tunnel's remote configuration: one per tunnel, so its id is the tunnel's. Deleting it only
    forgets it (the API has no delete; the tunnel's own deletion takes it along)."""

    api: Cloudflare
    replace_on = REPLACE_ON["ZeroTrustTunnelCloudflaredConfig"]
    computed = ("version",)

    def _put(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        found = _dump(
            _call(
                f"configure tunnel {inputs['tunnelId']}",
                lambda: self.api.zero_trust.tunnels.cloudflared.configurations.update(
                    inputs["tunnelId"],
                    account_id=inputs["accountId"],
                    config=_tunnel_config(inputs.get("config", {})),
                ),
            )
        )
        return {"version": found.get("version", 0)}

    def create(self, inputs: dict[str, Any]) -> Created:
        return Created(id=inputs["tunnelId"], outputs=self._put(inputs))

    def read(self, id_: str, state: dict[str, Any]) -> dict[str, Any] | None:
        live = _missing(
            lambda: self.api.zero_trust.tunnels.cloudflared.configurations.get(
                id_, account_id=state["accountId"]
            )
        )
        return None if live is None else state

    def update(self, id_: str, state: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
        return self._put(news)

    def delete(self, id_: str, state: dict[str, Any]) -> None:
        return None


def _tunnel_config(config: Mapping[str, Any]) -> dict[str, Any]:
    # Pulumi's `ingresses` is the API's `ingress` (the provider pluralises list blocks).
    body = to_api(dict(config))
    if "ingresses" in body:
        body["ingress"] = body.pop("ingresses")
    return body


def _workers_scripts(api: Cloudflare) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """`get_workers_scripts`: the account's scripts, each with the migration tag it carries."""

    def invoke(args: dict[str, Any]) -> dict[str, Any]:
        listed = _call("list Workers", lambda: list(api.workers.scripts.list(account_id=args["accountId"])))
        return {"accountId": args["accountId"], "results": [from_api(_dump(s)) for s in listed]}

    return invoke


def cloudflare_tables(config: Mapping[str, Any]) -> Tables:
    # As the real provider: configuration first, then the environment variables it documents.
    token = config.get("apiToken") or os.environ.get("CLOUDFLARE_API_TOKEN")
    base_url = config.get("baseUrl") or os.environ.get("CLOUDFLARE_BASE_URL")
    if not token or not base_url:
        raise ProviderError("cloudflare: set cloudflare:apiToken and cloudflare:baseUrl")
    api = Cloudflare(api_token=str(token), base_url=str(base_url), max_retries=0)
    zt = "cloudflare:index/zeroTrust"
    resources: dict[str, ResourceType] = {
        "cloudflare:index/workersScript:WorkersScript": WorkersScript(api),
        "cloudflare:index/workersKvNamespace:WorkersKvNamespace": WorkersKvNamespace(api),
        "cloudflare:index/workersKv:WorkersKv": WorkersKv(api),
        "cloudflare:index/workersCustomDomain:WorkersCustomDomain": WorkersCustomDomain(api),
        "cloudflare:index/workersRoute:WorkersRoute": WorkersRoute(api),
        f"{zt}AccessServiceToken:ZeroTrustAccessServiceToken": ServiceToken(api),
        f"{zt}AccessIdentityProvider:ZeroTrustAccessIdentityProvider": AccountObject(
            api, "ZeroTrustAccessIdentityProvider", lambda a: a.zero_trust.identity_providers
        ),
        f"{zt}AccessPolicy:ZeroTrustAccessPolicy": AccountObject(
            api,
            "ZeroTrustAccessPolicy",
            lambda a: a.zero_trust.access.policies,
            rename={"includes": "include", "excludes": "exclude", "requires": "require"},
        ),
        f"{zt}AccessApplication:ZeroTrustAccessApplication": AccountObject(
            api, "ZeroTrustAccessApplication", lambda a: a.zero_trust.access.applications, computed=("aud",)
        ),
        f"{zt}TunnelCloudflared:ZeroTrustTunnelCloudflared": AccountObject(
            api, "ZeroTrustTunnelCloudflared", lambda a: a.zero_trust.tunnels.cloudflared, update_verb="edit"
        ),
        f"{zt}TunnelCloudflaredConfig:ZeroTrustTunnelCloudflaredConfig": TunnelConfig(api),
        "cloudflare:index/dnsRecord:DnsRecord": AccountObject(
            api, "DnsRecord", lambda a: a.dns.records, scope="zoneId"
        ),
        "cloudflare:index/logpushJob:LogpushJob": AccountObject(api, "LogpushJob", lambda a: a.logpush.jobs),
    }
    return Tables(resources, {"cloudflare:index/getWorkersScripts:getWorkersScripts": _workers_scripts(api)})
