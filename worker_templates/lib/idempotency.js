// Durable Object: one idempotency key (scoped to subject and DAG by the caller's idFromName).
// POST /begin {fingerprint, lease_ms} → {state:"proceed"} for the first caller, with the in-flight
// marker written to storage; every concurrent or later caller waits for (or reads) the stored
// outcome: {state:"done", response}, or {state:"busy"} if the lease ends first. POST /complete stores
// the outcome for 24 h; POST /complete without a response forgets an attempt that must not be
// replayed (Airflow failed or was not reached), so a retry with the same key tries again.
const TTL_MS = 24 * 60 * 60 * 1000;
const reply = (state, response) => Response.json({ state, response });

export class IdempotencyStore {
  constructor(state) {
    this.state = state;
    this.record = undefined;
    this.waiters = [];
  }

  async load() {
    if (this.record === undefined) {
      const stored = await this.state.storage.get("record");
      // Another request may have started while this one read storage: keep what it set.
      if (this.record === undefined) this.record = stored && stored.expires > Date.now() ? stored : null;
    }
    return this.record;
  }

  settle(outcome) {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve(outcome);
  }

  async fetch(request) {
    const action = new URL(request.url).pathname;
    const body = await request.json();
    const record = await this.load();
    if (action === "/begin") {
      if (record?.response) {
        if (record.fingerprint !== body.fingerprint) return reply("mismatch");
        return reply("done", record.response);
      }
      if (record?.inflight && Date.now() < record.inflight) {
        if (record.fingerprint !== body.fingerprint) return reply("mismatch");
        let timer;
        const outcome = await new Promise((resolve) => {
          this.waiters.push(resolve);
          timer = setTimeout(() => resolve(null), Math.max(0, record.inflight - Date.now()));
        });
        clearTimeout(timer);
        if (outcome) return reply("done", outcome);
        return reply("busy");
      }
      // Durable before the caller may proceed (the output gate holds the reply until the write is
      // confirmed), so a restarted object still knows a call is in flight until the lease ends.
      this.record = { fingerprint: body.fingerprint, inflight: Date.now() + body.lease_ms, expires: Date.now() + TTL_MS };
      await this.state.storage.put("record", this.record);
      return reply("proceed");
    }
    // /complete {response}: store the outcome for 24 h; without a response, forget the attempt.
    if (!body.response) {
      this.record = null;
      await this.state.storage.delete("record");
      this.settle(null);
      return reply();
    }
    const expires = Date.now() + TTL_MS;
    this.record = { fingerprint: this.record?.fingerprint ?? body.fingerprint, response: body.response, expires };
    await this.state.storage.put("record", this.record);
    await this.state.storage.setAlarm(expires);
    this.settle(body.response);
    return reply();
  }

  async alarm() {
    this.record = null;
    await this.state.storage.deleteAll();
  }
}
