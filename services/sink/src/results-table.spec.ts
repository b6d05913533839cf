import { EventEmitter } from 'node:events';
import type { Pool, PoolClient } from 'pg';
import { upsertWindows } from './results-table';
import type { WindowRow } from './window-rows';

/**
 * A checked-out client that PostgreSQL drops right after its query answered:
 * pg emits the server's FATAL on the client, which the pool does not listen
 * to while the client is out. The message comes in the same read as the
 * query's last reply, so it is emitted before the caller's code runs again.
 */
function poolWhoseServerShutsDownAfterTheQuery() {
  const released: (boolean | Error | undefined)[] = [];
  const client = Object.assign(new EventEmitter(), {
    query: () => {
      const answered = Promise.resolve({ rowCount: 1 });
      client.emit('error', Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }));
      return answered;
    },
    release: (broken?: boolean | Error) => void released.push(broken),
  });
  const pool = { connect: async () => client as unknown as PoolClient } as unknown as Pool;
  return { pool, client, released };
}

const row: WindowRow = {
  name: 'totals',
  key: 'k',
  windowStart: '2026-11-30T00:00:00.000Z',
  windowEnd: '2026-11-30T00:01:00.000Z',
  closed: false,
  value: '{"count":1}',
  sourceSeq: 7,
};

describe('upsertWindows', () => {
  it('survives PostgreSQL ending the connection while the client is checked out, and does not give that client back', async () => {
    const { pool, client, released } = poolWhoseServerShutsDownAfterTheQuery();
    await expect(upsertWindows(pool, [row])).resolves.toBe(1);
    expect(released).toEqual([true]);
    expect(client.listenerCount('error')).toBe(0);
  });
});
