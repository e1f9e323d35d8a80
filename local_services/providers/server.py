"""The provider gRPC server: Pulumi's ResourceProvider protocol (CheckConfig, DiffConfig, Configure,
Check, Diff, Create, Read, Update, Delete) over a table of resource types.

Replacement is decided here, once, from each type's `replace_on` (the same table `airgate diff`
reads: infra/review/replacements.py), so what the engine plans is what the review tooling predicts.
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import grpc
from google.protobuf import empty_pb2
from pulumi.runtime.proto import plugin_pb2, provider_pb2, provider_pb2_grpc

from local_services.providers.properties import UNKNOWN, has_unknown, to_dict, to_struct


class ProviderError(Exception):
    """A failure the engine shows the user as the operation's error (the API's own message)."""


@dataclass(frozen=True)
class Created:
    id: str
    outputs: dict[str, Any]


class ResourceType(Protocol):
    @property
    def replace_on(self) -> frozenset[str]: ...

    @property
    def computed(self) -> tuple[str, ...]:
        """Outputs the API decides: unknown in a preview of a create."""
        ...

    def create(self, inputs: dict[str, Any]) -> Created: ...

    def read(self, id_: str, state: dict[str, Any]) -> dict[str, Any] | None:
        """The live object as outputs, or None when it no longer exists."""
        ...

    def update(self, id_: str, state: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]: ...

    def delete(self, id_: str, state: dict[str, Any]) -> None: ...


Function = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Tables:
    resources: Mapping[str, ResourceType]
    functions: Mapping[str, Function] = field(default_factory=dict)
    """Data sources (`get_…` in the SDKs): token → arguments to result."""


@dataclass
class Provider:
    name: str
    version: str
    build: Callable[[Mapping[str, Any]], Tables]
    """Builds the tables from the provider's configuration (Configure's arguments)."""
    tables: Tables = field(default_factory=lambda: Tables({}))


_T = TypeVar("_T")


class Servicer(provider_pb2_grpc.ResourceProviderServicer):
    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    # -- the provider itself ------------------------------------------------------------------------

    def GetPluginInfo(self, request: empty_pb2.Empty, context: grpc.ServicerContext) -> plugin_pb2.PluginInfo:
        return plugin_pb2.PluginInfo(version=self.provider.version)

    def CheckConfig(self, request: Any, context: grpc.ServicerContext) -> provider_pb2.CheckResponse:
        return provider_pb2.CheckResponse(inputs=request.news)

    def DiffConfig(self, request: Any, context: grpc.ServicerContext) -> provider_pb2.DiffResponse:
        same = to_dict(request.old_inputs or request.olds) == to_dict(request.news)
        changes = provider_pb2.DiffResponse.DIFF_NONE if same else provider_pb2.DiffResponse.DIFF_SOME
        return provider_pb2.DiffResponse(changes=changes)

    def Configure(
        self, request: provider_pb2.ConfigureRequest, context: grpc.ServicerContext
    ) -> provider_pb2.ConfigureResponse:
        config = to_dict(request.args) if request.HasField("args") else {}
        prefix = f"{self.provider.name}:config:"
        for key, value in request.variables.items():
            config.setdefault(key.removeprefix(prefix), value)
        self.provider.tables = _guard(context, lambda: self.provider.build(config))
        # Secrets arrive unwrapped; the engine keeps an output secret when its input was.
        return provider_pb2.ConfigureResponse(acceptSecrets=False, supportsPreview=True)

    def Cancel(self, request: empty_pb2.Empty, context: grpc.ServicerContext) -> empty_pb2.Empty:
        return empty_pb2.Empty()

    def Invoke(
        self, request: provider_pb2.InvokeRequest, context: grpc.ServicerContext
    ) -> provider_pb2.InvokeResponse:
        function = self.provider.tables.functions.get(request.tok)
        if function is None:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{self.provider.name}: no function {request.tok}")
        assert function is not None
        result = _guard(context, lambda: function(to_dict(request.args)))
        return provider_pb2.InvokeResponse(**{"return": to_struct(result)})

    # -- resources ----------------------------------------------------------------------------------

    def Check(
        self, request: provider_pb2.CheckRequest, context: grpc.ServicerContext
    ) -> provider_pb2.CheckResponse:
        self._type(request.type or _type_of(request.urn), context)
        return provider_pb2.CheckResponse(inputs=request.news)

    def Diff(
        self, request: provider_pb2.DiffRequest, context: grpc.ServicerContext
    ) -> provider_pb2.DiffResponse:
        kind = self._type(request.type or _type_of(request.urn), context)
        olds = to_dict(request.old_inputs) if request.HasField("old_inputs") else to_dict(request.olds)
        news = to_dict(request.news)
        ignored = set(request.ignoreChanges)
        changed = sorted(k for k in set(olds) | set(news) if k not in ignored and olds.get(k) != news.get(k))
        if not changed:
            return provider_pb2.DiffResponse(changes=provider_pb2.DiffResponse.DIFF_NONE)
        replaces = [k for k in changed if k in kind.replace_on]
        detailed = {}
        for key in changed:
            if key not in olds:
                base = provider_pb2.PropertyDiff.ADD
            elif key not in news:
                base = provider_pb2.PropertyDiff.DELETE
            else:
                base = provider_pb2.PropertyDiff.UPDATE
            detailed[key] = provider_pb2.PropertyDiff(
                kind=base + 1 if key in replaces else base, inputDiff=True
            )
        return provider_pb2.DiffResponse(
            changes=provider_pb2.DiffResponse.DIFF_SOME,
            replaces=replaces,
            diffs=changed,
            detailedDiff=detailed,
            hasDetailedDiff=True,
        )

    def Create(
        self, request: provider_pb2.CreateRequest, context: grpc.ServicerContext
    ) -> provider_pb2.CreateResponse:
        kind = self._type(request.type or _type_of(request.urn), context)
        inputs = to_dict(request.properties)
        if request.preview:
            outputs = {**inputs, **{name: UNKNOWN for name in kind.computed}}
            return provider_pb2.CreateResponse(id="", properties=to_struct(outputs))
        created = _guard(context, lambda: kind.create(inputs))
        return provider_pb2.CreateResponse(id=created.id, properties=to_struct({**inputs, **created.outputs}))

    def Read(
        self, request: provider_pb2.ReadRequest, context: grpc.ServicerContext
    ) -> provider_pb2.ReadResponse:
        kind = self._type(request.type or _type_of(request.urn), context)
        state = to_dict(request.properties)
        live = _guard(context, lambda: kind.read(request.id, state))
        if live is None:
            return provider_pb2.ReadResponse()
        inputs = to_dict(request.inputs)
        # What the API reports replaces what the state holds; inputs follow the live values, so
        # a drift shows up as a diff on the next update.
        refreshed_inputs = {k: live.get(k, v) for k, v in inputs.items()}
        return provider_pb2.ReadResponse(
            id=request.id, properties=to_struct({**state, **live}), inputs=to_struct(refreshed_inputs)
        )

    def Update(
        self, request: provider_pb2.UpdateRequest, context: grpc.ServicerContext
    ) -> provider_pb2.UpdateResponse:
        kind = self._type(request.type or _type_of(request.urn), context)
        state, news = to_dict(request.olds), to_dict(request.news)
        if request.preview or has_unknown(news):
            computed = {name: state.get(name, UNKNOWN) for name in kind.computed}
            return provider_pb2.UpdateResponse(properties=to_struct({**news, **computed}))
        outputs = _guard(context, lambda: kind.update(request.id, state, news))
        return provider_pb2.UpdateResponse(properties=to_struct({**news, **outputs}))

    def Delete(self, request: provider_pb2.DeleteRequest, context: grpc.ServicerContext) -> empty_pb2.Empty:
        kind = self._type(request.type or _type_of(request.urn), context)
        _guard(context, lambda: kind.delete(request.id, to_dict(request.properties)))
        return empty_pb2.Empty()

    def _type(self, token: str, context: grpc.ServicerContext) -> ResourceType:
        kind = self.provider.tables.resources.get(token)
        if kind is None:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"{self.provider.name}: unknown resource type {token}"
            )
        assert kind is not None
        return kind


def _type_of(urn: str) -> str:
    # urn:pulumi:<stack>::<project>::<parent types$>type::<name>
    return urn.split("::")[2].split("$")[-1]


def _guard(context: grpc.ServicerContext, call: Callable[[], _T]) -> _T:
    try:
        return call()
    except ProviderError as error:
        context.abort(grpc.StatusCode.UNKNOWN, str(error))
    except Exception as error:  # a defect here must reach the engine as text, not a hang
        traceback.print_exc(file=sys.stderr)
        context.abort(grpc.StatusCode.INTERNAL, f"{type(error).__name__}: {error}")
    raise AssertionError("unreachable")


def serve(provider: Provider) -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(Servicer(provider), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    # The engine reads the port from the first line of our stdout.
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    threading.Event().wait()
