// Query parameters the gateway refuses (README: "Query strings"): a method override in any of its
// framework spellings (Rails/Laravel `_method`, `__method`, ASP.NET `X-HTTP-Method-Override` ...),
// and a credential (RFC 6750 §2.3 `access_token`, which §5.3 advises against and we may refuse).
// Each is refused with 400 unless the matched route names it in `forward_query`, which forwards it
// as it came. Names compare lower-cased with `-` read as `_`; the Python twin, which decides what a
// stack may list, is infra/config/sections.py REFUSED_QUERY_PARAMETERS.
import { GatewayError } from "./problem.js";

const METHOD_OVERRIDES = new Set(
  ("_method __method _httpmethod _http_method x_http_method_override x_http_method x_method_override " +
    "x_original_method x_original_url x_rewrite_url").split(" "),
);
const CREDENTIALS = new Set(["access_token"]);

/** The refused parameters a query holds, as [key, reason] pairs (empty for most queries). */
export function refusedParameters(searchParams) {
  const found = [];
  for (const [name] of searchParams) {
    const key = name.toLowerCase().replace(/-/g, "_");
    if (METHOD_OVERRIDES.has(key)) found.push([key, "override_refused"]);
    else if (CREDENTIALS.has(key)) found.push([key, "credential_in_query"]);
  }
  return found;
}

/** Throws the first refused parameter that `optedIn` (a route's forward_query, or none) does not name. */
export function checkRefused(found, optedIn) {
  for (const [key, reason] of found) {
    if (!optedIn?.includes(key)) throw new GatewayError(reason, `query parameter ${key} is not accepted`);
  }
}

// Every parameter some route of the policy opts in (so a request whose refused parameters no route
// accepts is answered before authentication).
export const optIns = (policy) => (policy.queryOptIns ??= policy.routes.flatMap((route) => route.forward_query ?? []));
