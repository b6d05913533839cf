import { RequestOne } from '@nats-io/nats-core/internal';
import { patchRequestCancel } from './request-cancel-patch';

function fakeMux() {
  const cancelled: unknown[] = [];
  return { cancelled, add: () => undefined, cancel: (r: unknown) => cancelled.push(r) };
}

describe('patchRequestCancel', () => {
  beforeAll(() => expect(patchRequestCancel()).toBe(true));

  it('settles an answered request without building a cancellation error, and still cleans up', async () => {
    const mux = fakeMux();
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const r = new RequestOne(mux as any, 'subject', { timeout: 1000 }, false);
    // Unpatched, the clean-up rejects the settled promise with a new RequestError.
    const reject = jest.spyOn(r.deferred, 'reject');
    r.resolver(null, { data: new Uint8Array(1) } as never);
    await expect(r.deferred).resolves.toBeDefined();
    expect(reject).not.toHaveBeenCalled();
    expect(mux.cancelled).toEqual([r]);
  });

  it('still rejects a request cancelled while pending', async () => {
    const mux = fakeMux();
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const r = new RequestOne(mux as any, 'subject', { timeout: 1000 }, false);
    r.cancel();
    await expect(r.deferred).rejects.toThrow('cancelled');
    expect(mux.cancelled).toEqual([r]);
  });

  it('passes an error answer on', async () => {
    const mux = fakeMux();
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const r = new RequestOne(mux as any, 'subject', { timeout: 1000 }, false);
    r.resolver(new Error('no responders'), {} as never);
    await expect(r.deferred).rejects.toThrow('no responders');
  });
});
