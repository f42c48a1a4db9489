import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { connectRedis, RedisKeys } from '../../redis';
import { deletePrefix, describeWithRedis, uniquePrefix } from '../../../test/support/redis';
import { type ControlCommand, ControlChannel } from './control-channel';

/*
 * The control channel on its own, several "processes" on one Redis: what a sender waits for (and what it does not
 * wait for), and how a receiver copes with what it cannot apply or acknowledge.
 */

interface Member {
  channel: ControlChannel;
  publisher: Redis;
  subscriber: Redis;
  heard: { cmd: ControlCommand; from: string }[];
  /** Closed by the test itself (a second close would quit the closing subscriber again). */
  closed?: boolean;
}

const stop = (taskId: string): ControlCommand => ({ kind: 'stop', taskId });

async function until(what: string, condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describeWithRedis('ControlChannel', (url) => {
  let prefix: string;
  let keys: RedisKeys;
  let members: Member[];
  let extra: Redis[];
  let warn: jest.SpyInstance;
  let error: jest.SpyInstance;

  /** A process's channel (not started); `apply` records what it heard unless given another. */
  const member = (
    instanceId: string,
    ackWaitMs = 60_000,
    apply?: (cmd: ControlCommand, from: string) => void,
  ): Member => {
    const heard: Member['heard'] = [];
    const publisher = connectRedis(url, `control-pub-${instanceId}`);
    const subscriber = connectRedis(url, `control-sub-${instanceId}`);
    const channel = new ControlChannel(
      publisher,
      subscriber,
      keys,
      { instanceId, ackWaitMs },
      apply ?? ((cmd, from) => heard.push({ cmd, from })),
    );
    const m: Member = { channel, publisher, subscriber, heard };
    members.push(m);
    return m;
  };

  /** A connection of the test's own (a raw subscriber, or one to publish with). */
  const connection = (name: string): Redis => {
    const redis = connectRedis(url, name);
    extra.push(redis);
    return redis;
  };

  const warnings = (): string[] => warn.mock.calls.map(([message]) => String(message));

  beforeEach(() => {
    prefix = uniquePrefix('control');
    keys = new RedisKeys(prefix);
    members = [];
    extra = [];
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    error = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
  });

  afterEach(async () => {
    for (const m of members) {
      if (!m.closed) await m.channel.close();
      if (m.publisher.status !== 'end') await m.publisher.quit().catch(() => m.publisher.disconnect());
    }
    for (const r of extra) if (r.status !== 'end') await r.quit();
    await deletePrefix(url, prefix);
    jest.restoreAllMocks();
  });

  it('applies a command on every listening process, the sender included, before send resolves', async () => {
    const [a, b] = [member('A'), member('B')];
    await a.channel.start();
    await b.channel.start();
    expect(a.channel.listeningSince).toBeDefined();
    await a.channel.send(stop('t1'));
    expect(a.heard).toEqual([{ cmd: stop('t1'), from: 'A' }]);
    expect(b.heard).toEqual([{ cmd: stop('t1'), from: 'A' }]);
    expect(warnings()).toEqual([]);
  });

  it('resolves at once when no process listens (it waits for nobody)', async () => {
    const lonely = member('A');
    // not started: not even the sender receives it; PUBLISH counted no receiver
    await lonely.channel.send(stop('t1'));
    expect(lonely.heard).toEqual([]);
    expect(warnings()).toEqual([]);
  });

  it('gives up on a receiver that never acknowledges after ackWaitMs, and says how many did', async () => {
    const a = member('A', 200);
    await a.channel.start();
    const silent = connection('control-silent');
    await silent.subscribe(keys.key('dispatch', 'control'));
    await a.channel.send(stop('t1'));
    expect(a.heard).toHaveLength(1);
    expect(warnings()).toEqual(['stop of task t1: 1 of 2 processes acknowledged within 200 ms']);
  });

  it('matches acknowledgements by command: a late one for an earlier send does not count for the next', async () => {
    const a = member('A', 200);
    await a.channel.start();
    // a receiver that acknowledges each command only once the next one arrives (too late every time)
    const laggard = connection('control-laggard');
    const ackPublisher = connection('control-laggard-pub');
    let previous: string | undefined;
    laggard.on('message', (_channel: string, text: string) => {
      const { nonce } = JSON.parse(text) as { nonce: string };
      if (previous) void ackPublisher.publish(keys.key('dispatch', 'ack', 'A'), previous);
      previous = nonce;
    });
    await laggard.subscribe(keys.key('dispatch', 'control'));
    await a.channel.send(stop('t1'));
    await a.channel.send(stop('t2'));
    expect(warnings()).toEqual([
      'stop of task t1: 1 of 2 processes acknowledged within 200 ms',
      'stop of task t2: 1 of 2 processes acknowledged within 200 ms',
    ]);
  });

  it('ignores a malformed control message (nothing applied, nothing acknowledged) and goes on', async () => {
    const a = member('A');
    await a.channel.start();
    const other = connection('control-other');
    await other.publish(keys.key('dispatch', 'control'), '{not json');
    await until('the warning', () => warnings().length > 0);
    expect(warnings()).toEqual(['ignored a malformed control message: {not json']);
    expect(a.heard).toEqual([]);
    await a.channel.send(stop('t1'));
    expect(a.heard).toEqual([{ cmd: stop('t1'), from: 'A' }]);
  });

  it('acknowledges a command it failed to apply, so the sender does not wait for it; logs the failure', async () => {
    const a = member('A');
    const b = member('B', 60_000, () => {
      throw new Error('no such task');
    });
    await a.channel.start();
    await b.channel.start();
    // with a minute to wait, the send resolving shows that B acknowledged
    await a.channel.send(stop('t1'));
    expect(a.heard).toHaveLength(1);
    expect(error.mock.calls.map(([message]) => String(message))).toEqual([
      'control message stop failed: no such task',
    ]);
    expect(warnings()).toEqual([]);
  });

  it('warns when it cannot acknowledge (its publisher is closed); the sender gives up on it after ackWaitMs', async () => {
    const a = member('A', 200);
    const b = member('B');
    await a.channel.start();
    await b.channel.start();
    await b.publisher.quit();
    await a.channel.send(stop('t1'));
    expect(b.heard).toEqual([{ cmd: stop('t1'), from: 'A' }]);
    await until('B warned', () => warnings().some((w) => w.startsWith('could not acknowledge')));
    expect(warnings()).toEqual(
      expect.arrayContaining([
        'stop of task t1: 1 of 2 processes acknowledged within 200 ms',
        expect.stringMatching(/^could not acknowledge a control message: .*closed/i),
      ]),
    );
  });

  it('ignores messages of other channels its (shared) subscriber connection listens to', async () => {
    const a = member('A');
    await a.channel.start();
    await a.subscriber.subscribe(`${prefix}:elsewhere`);
    const other = connection('control-other');
    await expect(other.publish(`${prefix}:elsewhere`, JSON.stringify({ cmd: stop('t1') }))).resolves.toBe(1);
    await a.channel.send(stop('t2'));
    expect(a.heard.map((h) => h.cmd)).toEqual([stop('t2')]);
    expect(warnings()).toEqual([]);
  });

  it('on close: stops listening and lets a send waiting for acknowledgements resolve', async () => {
    const a = member('A', 60_000);
    await a.channel.start();
    const silent = connection('control-silent');
    await silent.subscribe(keys.key('dispatch', 'control'));
    const sent = a.channel.send(stop('t1'));
    await until('A applied it', () => a.heard.length === 1);
    await a.channel.close();
    a.closed = true;
    await sent;
    expect(a.channel.listeningSince).toBeUndefined();
    expect(warnings()).toEqual([]);
  });
});
