import { createLogger } from './logger';
import { armFaultPoint, faultPoint, FaultPointMessage, FaultPointStopMessage } from './fault-point';

describe('fault points (test only)', () => {
  let kill: jest.SpyInstance;
  const lines: string[] = [];
  const log = createLogger({}, 'info', (l) => lines.push(l));
  beforeEach(() => {
    lines.length = 0;
    kill = jest.spyOn(process, 'kill').mockImplementation(() => true);
  });
  afterEach(() => {
    armFaultPoint('', log);
    kill.mockRestore();
  });

  it('does nothing while disarmed', () => {
    for (let i = 0; i < 5; i++) faultPoint('before-ack');
    expect(kill).not.toHaveBeenCalled();
  });

  it('kills the process with SIGKILL the n-th time the armed point is reached, after a line naming it, and only once', () => {
    armFaultPoint('before-ack:3', log);
    faultPoint('before-ack', { partition: 4 });
    faultPoint('handover');
    faultPoint('before-ack');
    expect(kill).not.toHaveBeenCalled();
    faultPoint('before-ack', { partition: 7 });
    expect(kill.mock.calls).toEqual([[process.pid, 'SIGKILL']]);
    const last = JSON.parse(lines[lines.length - 1]) as Record<string, unknown>;
    expect(last).toMatchObject({ msg: FaultPointMessage, point: 'before-ack', partition: 7 });
    faultPoint('before-ack');
    expect(kill).toHaveBeenCalledTimes(1);
  });

  it('freezes the process with SIGSTOP when armed with :stop', () => {
    armFaultPoint('after-checkpoint:1:stop', log);
    faultPoint('after-checkpoint', { partition: 2 });
    expect(kill.mock.calls).toEqual([[process.pid, 'SIGSTOP']]);
    expect(JSON.parse(lines[lines.length - 1])).toMatchObject({ msg: FaultPointStopMessage, point: 'after-checkpoint' });
  });
});
