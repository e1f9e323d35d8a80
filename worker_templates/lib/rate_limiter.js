// Durable Object: one token bucket per (subject, route), addressed by idFromName.
// The bucket lives in memory: if the object is evicted (only after it has been idle for a while)
// it starts full again, which a bucket idle that long would be anyway in all but extreme configs.
export class RateLimiter {
  constructor(state) {
    this.state = state;
    this.tokens = null;
    this.updated = 0;
  }

  // GET /take?requests=N&per=S&want=W → 200 with the number of tokens granted (1..W), or 429
  // with the milliseconds until the next token.
  async fetch(request) {
    const query = new URL(request.url).searchParams;
    const capacity = Math.max(1, Number(query.get("requests")) || 1);
    const per = Math.max(1, Number(query.get("per")) || 1);
    const rate = capacity / (per * 1000);
    const now = Date.now();
    if (this.tokens === null || this.capacity !== capacity || this.rate !== rate) {
      this.tokens = capacity;
      this.capacity = capacity;
      this.rate = rate;
    } else {
      this.tokens = Math.min(capacity, this.tokens + (now - this.updated) * rate);
    }
    this.updated = now;
    if (this.tokens >= 1) {
      const granted = Math.min(Math.max(1, Number(query.get("want")) || 1), Math.floor(this.tokens));
      this.tokens -= granted;
      return new Response(String(granted));
    }
    // The body: milliseconds until the next token, which the Worker remembers (no call until then).
    return new Response(String(Math.ceil((1 - this.tokens) / rate)), { status: 429 });
  }
}
