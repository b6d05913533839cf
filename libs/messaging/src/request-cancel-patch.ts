/**
 * A workaround for @nats-io/nats-core 3.x: `RequestOne.resolver` settles a
 * request and then calls `cancel()`, which builds `new RequestError("cancelled")`
 * (capturing a stack trace) only to reject a promise that is already
 * settled. That is one Error with a stack per request, JetStream publish and
 * ackAck: 5-8% of every service's CPU (`--cpu-prof`, `RequestError`
 * errors.js:186, called from `cancel` request.js:125).
 *
 * After `resolver` has run, the cancel only needs its clean-up (the timer
 * and the mux entry); a cancel of a request still pending is left as it is.
 * The patch applies only if the class still has that shape, so a client
 * upgrade that fixes it (or changes it) makes this a no-op.
 */
import { RequestOne } from '@nats-io/nats-core/internal';

interface PatchableRequest {
  timer?: { cancel(): void };
  mux: { cancel(r: unknown): void };
  meshSettled?: boolean;
  resolver(err: Error | null, msg: unknown): void;
  cancel(err?: Error): void;
}

let applied = false;

export function patchRequestCancel(): boolean {
  if (applied) return true;
  const proto = RequestOne.prototype as unknown as PatchableRequest;
  const { resolver, cancel } = proto;
  if (typeof resolver !== 'function' || typeof cancel !== 'function') return false;
  if (!/this\.cancel\(\)/.test(resolver.toString()) || !/new errors_1\.RequestError\("cancelled"\)/.test(cancel.toString())) return false;
  proto.resolver = function (this: PatchableRequest, err, msg) {
    this.meshSettled = true;
    resolver.call(this, err, msg);
  };
  proto.cancel = function (this: PatchableRequest, err?: Error) {
    if (!this.meshSettled || err) return cancel.call(this, err);
    this.timer?.cancel();
    this.mux.cancel(this);
  };
  applied = true;
  return true;
}
