"""A small deployment engine for the lifecycle tests: runs the real airgate program under Pulumi's
mocks, and does what `pulumi up` does with what it registers — against the Cloudflare API stand-in
and a state that survives from one run to the next.

Pulumi's mocks see only inputs and remember nothing, so this engine keeps the state per stack
(URN → inputs, outputs, id, protect, retain_on_delete) and the stack's outputs, and decides per
registration, as the engine does: same inputs → nothing; a change to a property the provider
replaces on → replace (refused for a protected resource); any other change → update. Steps run as
resources register (Pulumi runs each step once its inputs are known); deletes come after the
program, in reverse order, and none runs when one of them would delete a protected resource
("refusing to delete protected resource"). The first failing step ends the run: later
registrations run no step, and the stack's outputs are not written.

A preview hands the program what Pulumi's preview does: a resource to be created (or replaced) has
no id and only its known inputs as outputs, so whatever reads its computed outputs sees unknowns
and its `.apply` callbacks do not run; the resources that take those unknowns as inputs are still
registered (Pulumi registers every resource in a preview). An update keeps its id and last outputs,
except those the API recomputes (`CloudflareApi.recomputed`, e.g. a rotated token's secret).

Kubernetes objects and Helm releases go to the cluster stand-in (`kubernetes_api.ClusterApi`),
keyed per provider context, kind, namespace and name; a replacement deletes first, as
pulumi-kubernetes does for named objects; `replace_on_changes` forces a replacement. `random`
values live only in state: any change to one replaces it (every input of the random provider
forces a new value); anything else updates.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.sync_await import _sync_await

from infra.config.loader import LoadedStack
from infra.review.replacements import REPLACE_ON
from tests.lifecycle.cloudflare_api import ApiError, CloudflareApi
from tests.lifecycle.kubernetes_api import ClusterApi, ClusterError

STACK_REFERENCE = "pulumi:pulumi:StackReference"
LIST_SCRIPTS = "cloudflare:index/getWorkersScripts:getWorkersScripts"


class DeployError(Exception):
    pass


@dataclass
class Stored:
    type: str
    name: str
    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    protect: bool
    retain_on_delete: bool
    context: str | None = None
    """The cluster (kubeconfig context of its provider) a Kubernetes object lives in."""


@dataclass(frozen=True, order=True)
class Step:
    op: str
    """create, update, replace, delete, retain (deleted from the stack, left in the account)"""
    kind: str
    name: str


@dataclass
class StackState:
    resources: dict[str, Stored] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    pending_deletes: list[Stored] = field(default_factory=list)
    """Old halves of replacements a failed update did not get to delete (Pulumi keeps them in the
    checkpoint, marked for deletion, and deletes them on the next update)."""


@dataclass
class Run:
    steps: list[Step]
    error: str | None

    def changes(self) -> set[tuple[str, str, str]]:
        return {(s.op, s.kind, s.name) for s in self.steps}


def kind_of(type_token: str) -> str:
    return type_token.rsplit(":", 1)[-1]


def _changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> set[str]:
    return {key for key in set(old) | set(new) if old.get(key) != new.get(key)}


class _Deployment:
    """One `pulumi up` of one stack."""

    def __init__(self, engine: Engine, stack: str, preview: bool) -> None:
        self.engine = engine
        self.api = engine.api
        self.state = engine.stacks.setdefault(stack, StackState())
        self.preview = preview
        self.steps: list[Step] = []
        self.registered: list[str] = []
        self.options: dict[str, tuple[bool, bool, bool, frozenset[str]]] = {}
        self.replaced: list[Stored] = []
        self.error: str | None = None
        self.lock = threading.Lock()

    def fail(self, message: str) -> None:
        self.error = self.error or message
        raise DeployError(message)

    def register(self, urn: str, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        # The SDK registers from a thread pool; the engine runs one step at a time.
        with self.lock:
            return self._register(urn, args)

    def _register(self, urn: str, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        kind = kind_of(args.typ)
        inputs = dict(args.inputs)
        protect, retain, delete_first, replace_on = self.options.get(urn, (False, False, False, frozenset()))
        prior = self.state.resources.get(urn)
        context = self._context(args.provider) if args.typ.startswith("kubernetes:") else None
        if self.error is not None:
            # The update stopped at the first failure: later registrations run no step. They get
            # their last outputs back, so the program winds down without a cascade of errors.
            self.registered.append(urn)
            return (prior.id, {**inputs, **prior.outputs}) if prior else (f"skipped-{args.name}", inputs)
        self.registered.append(urn)
        if prior is not None and not _changed(prior.inputs, inputs):
            prior.protect, prior.retain_on_delete = protect, retain
            return prior.id, {**inputs, **prior.outputs}
        if prior is None:
            op = "create"
        elif args.typ.startswith("random:") or _changed(prior.inputs, inputs) & (
            REPLACE_ON.get(kind, frozenset()) | replace_on
        ):
            op = "replace"
            if prior.protect:
                self.fail(f"unable to replace resource {urn} as it is currently marked for protection")
        else:
            op = "update"
        self.steps.append(Step(op, kind, args.name))
        if self.preview:
            # What Pulumi's preview hands the program: a new object has no id yet and only the
            # inputs that are known; computed outputs are unknown until apply. An update keeps its
            # id and last outputs. Whatever reads an unknown is still registered (its inputs then
            # hold unknowns), as the engine registers every resource in a preview.
            if op == "update" and prior is not None:
                unknown = self.api.recomputed(kind, prior.inputs, inputs)
                object_id = prior.id
                outputs = {key: value for key, value in prior.outputs.items() if key not in unknown}
            else:
                object_id, outputs = "", {}
            self.state.resources[urn] = Stored(
                args.typ, args.name, object_id, inputs, outputs, protect, retain, context
            )
            return object_id, _known({**inputs, **outputs})
        else:
            # pulumi-kubernetes deletes before it replaces an object whose name is set (ours all
            # are): the new one could not be created beside the old (provider.go, Diff:
            # DeleteBeforeReplace for named resources).
            delete_first = delete_first or args.typ.startswith("kubernetes:")
            try:
                if op == "replace" and prior is not None and delete_first:
                    self._delete(prior)
                if args.typ.startswith("cloudflare:"):
                    object_id, outputs = self.api.put(
                        kind, prior.id if op == "update" and prior else None, inputs
                    )
                else:
                    object_id, outputs = self._plain(args.typ, args.name, prior if op == "update" else None)
                    if context is not None:
                        object_id = self.engine.cluster.put(
                            context, kind, prior.id if op == "update" and prior else None, inputs
                        )
            except (ApiError, ClusterError) as error:
                self.fail(f"{args.name}: {error}")
            if op == "replace" and prior is not None and not delete_first:
                self.replaced.append(prior)
        self.state.resources[urn] = Stored(
            args.typ, args.name, object_id, inputs, outputs, protect, retain, context
        )
        return object_id, {**inputs, **outputs}

    def _context(self, provider: str | None) -> str:
        """The kubeconfig context of the explicit provider (a reference is `<urn>::<id>`)."""
        stored = self.state.resources.get((provider or "").rsplit("::", 1)[0])
        return str(stored.inputs.get("context") or "default") if stored is not None else "default"

    def _delete(self, stored: Stored) -> None:
        if stored.context is not None:
            self.engine.cluster.delete(stored.context, kind_of(stored.type), stored.inputs)
        elif stored.type.startswith("cloudflare:"):
            self.api.delete(kind_of(stored.type), stored.id, stored.inputs)

    def _plain(self, type_token: str, name: str, prior: Stored | None) -> tuple[str, dict[str, Any]]:
        if prior is not None:
            return prior.id, prior.outputs
        value = self.api.new_id(name)
        computed = {
            "random:index/randomBytes:RandomBytes": {"base64": value, "hex": value},
            "random:index/randomPassword:RandomPassword": {"result": value},
            "random:index/randomId:RandomId": {"hex": value, "b64Std": value},
        }
        return f"{name}-{value[:8]}", computed.get(type_token, {})

    def finish(self) -> None:
        """Deletes what the program no longer registers, and what replacements left behind."""
        if self.error is not None:
            if not self.preview:
                self.state.pending_deletes += self.replaced
            return
        gone = [urn for urn in self.state.resources if urn not in self.registered]
        protected = [urn for urn in gone if self.state.resources[urn].protect]
        if protected:
            self.fail(
                "refusing to delete protected resource(s): "
                + ", ".join(self.state.resources[u].name for u in protected)
                + " (remove protect first, or keep them in the program)"
            )
        if not self.preview:
            for stored in [*self.state.pending_deletes, *self.replaced]:
                self._delete(stored)
            self.state.pending_deletes = []
        for urn in reversed(gone):
            stored = self.state.resources[urn]
            op = "retain" if stored.retain_on_delete else "delete"
            self.steps.append(Step(op, kind_of(stored.type), stored.name))
            if self.preview:
                continue
            if not stored.retain_on_delete:
                try:
                    self._delete(stored)
                except ApiError as error:
                    self.fail(f"{stored.name}: {error}")
            del self.state.resources[urn]


class _Mocks(pulumi.runtime.Mocks):
    def __init__(self, deployment: _Deployment) -> None:
        self.deployment = deployment

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        if args.typ == STACK_REFERENCE:
            return str(args.inputs.get("name")), {**args.inputs, "outputs": self.deployment.state.outputs}
        return "", dict(
            args.inputs
        )  # a component: nothing to create (custom resources go through the monitor)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        if args.token == LIST_SCRIPTS:
            return {"results": self.deployment.api.script_tags(args.args["accountId"])}, []
        return {}, []


class _Monitor(pulumi_mocks.MockMonitor):
    def __init__(self, deployment: _Deployment) -> None:
        super().__init__(_Mocks(deployment))
        self.deployment = deployment

    def RegisterResource(self, request: Any) -> Any:
        if request.type == "pulumi:pulumi:Stack" or not request.custom:
            return super().RegisterResource(request)  # type: ignore[no-untyped-call]
        urn = self.make_urn(request.parent, request.type, request.name)  # type: ignore[no-untyped-call]
        self.deployment.options[urn] = (
            bool(request.protect),
            bool(request.retainOnDelete),
            bool(request.deleteBeforeReplace),
            frozenset(request.replaceOnChanges),
        )
        pulumi_mocks._ensure_event_loop()  # type: ignore[attr-defined,no-untyped-call]
        inputs = _plain(rpc.deserialize_properties(request.object))
        object_id, state = self.deployment.register(
            urn,
            pulumi.runtime.MockResourceArgs(
                typ=request.type, name=request.name, inputs=inputs, provider=request.provider or None
            ),
        )
        from pulumi.runtime.proto import resource_pb2

        self.resources[urn] = pulumi_mocks.MockMonitor.ResourceRegistration(urn, object_id, state)
        properties = _sync_await(rpc.serialize_properties(state, {}))
        return resource_pb2.RegisterResourceResponse(urn=urn, id=object_id, object=properties)


@dataclass
class Engine:
    api: CloudflareApi = field(default_factory=CloudflareApi)
    cluster: ClusterApi = field(default_factory=ClusterApi)
    stacks: dict[str, StackState] = field(default_factory=dict)

    def up(self, loaded: LoadedStack, secrets: Mapping[str, str], *, preview: bool = False) -> Run:
        from infra.program import define

        return self._run(loaded.name, lambda: define(loaded), secrets, preview)

    def preview(self, loaded: LoadedStack, secrets: Mapping[str, str]) -> Run:
        return self.up(loaded, secrets, preview=True)

    def unprotect(self, stack: str, name: str) -> None:
        """`pulumi state unprotect <urn>`: the state's protect flag is cleared; retain_on_delete stays."""
        for stored in self.stacks[stack].resources.values():
            if stored.name == name:
                stored.protect = False

    def destroy(self, stack: str) -> Run:
        return self._run(stack, lambda: None, {}, False)

    def _run(self, stack: str, program: Any, secrets: Mapping[str, str], preview: bool) -> Run:
        asyncio.get_event_loop().set_exception_handler(_quiet_failed_futures)
        deployment = _Deployment(self, stack, preview)
        saved = {urn: Stored(**vars(s)) for urn, s in deployment.state.resources.items()} if preview else None
        settings.ROOT.set(None)
        pulumi.runtime.set_mocks(
            _Mocks(deployment), project="airgate", stack=stack, preview=preview, monitor=_Monitor(deployment)
        )
        config = {f"airgate:{key}": value for key, value in secrets.items()}
        pulumi.runtime.set_all_config(config, list(config))

        @pulumi.runtime.test  # type: ignore[untyped-decorator]
        def body() -> None:
            program()

        try:
            body()
        except Exception as error:  # the run failed: keep what succeeded, like Pulumi's checkpoint
            deployment.error = deployment.error or f"{type(error).__name__}: {error}"
        with contextlib.suppress(DeployError):  # recorded in deployment.error
            deployment.finish()
        if preview:
            assert saved is not None
            deployment.state.resources = saved
        elif deployment.error is None:
            deployment.state.outputs = _stack_outputs()
        return Run(deployment.steps, deployment.error)


def _quiet_failed_futures(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A failed update leaves the program's futures holding its error; when they are collected,
    asyncio reports "Future exception was never retrieved" and formats a traceback from inside the
    garbage collector. CPython 3.11 formats tracebacks with ast.parse, whose depth counter is
    per interpreter: when the collection happens inside a later test's ast.parse, that parse fails
    ("AST constructor recursion depth mismatch"). The run's error is recorded in `Run.error`, so
    these reports are dropped; anything else goes to asyncio's default handler."""
    if str(context.get("message", "")).startswith("Future exception was never retrieved"):
        return
    loop.default_exception_handler(context)


def _plain(value: Any) -> Any:
    """The value with Pulumi's secret markers taken off (the API sees the plain value)."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return _plain(value["value"])
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _known(values: dict[str, Any]) -> dict[str, Any]:
    """The properties whose value is known: a missing property resolves as unknown in a preview
    (pulumi/runtime/rpc.py `resolve_properties`), so its `.apply` callbacks do not run."""
    return {key: value for key, value in values.items() if not _has_unknown(value)}


def _has_unknown(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_unknown(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_unknown(item) for item in value)
    return bool(value == rpc.UNKNOWN)


def _stack_outputs() -> dict[str, Any]:
    root = settings.get_root_resource()
    exported: dict[str, Any] = dict(getattr(root, "outputs", None) or {})
    resolved = {}
    for key, value in exported.items():
        output = pulumi.Output.from_input(value)
        resolved[key] = _sync_await(output.future())
    return resolved
