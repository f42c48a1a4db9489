import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { ChainableCommander, Redis } from 'ioredis';
import type { RedisKeys } from '../../redis';

/** An abort reason as it crosses processes: enough to rebuild it on the other side. */
export interface WireReason {
  /** `NodeAbort.errorType`, when the reason was one. */
  errorType?: string;
  message: string;
}

/** What one process asks of every process: stop starting a task's jobs, or abort its running ones. */
export type ControlCommand =
  { kind: 'stop'; taskId: string } | { kind: 'abort'; taskId: string; reason: WireReason };

interface Envelope {
  cmd: ControlCommand;
  nonce: string;
  /** The sender's instance id: acknowledgements go to its own channel. */
  from: string;
}

interface AckWait {
  acks: number;
  /** How many processes received the command (what PUBLISH reported), once known. */
  needed: number | undefined;
  done(): void;
}

export interface ControlChannelOptions {
  instanceId: string;
  /** How long `send` waits for acknowledgements before it resolves anyway. */
  ackWaitMs: number;
}

/**
 * The dispatcher's control channel over Redis pub/sub: a command is published to every process (the sender
 * included), each one applies it (synchronously, before acknowledging) and acknowledges on the sender's own channel;
 * `send` resolves once as many acknowledgements arrived as PUBLISH counted receivers. A process that was not
 * subscribed misses the command: what must outlive that (a stop) is also written to a key by the sender.
 */
export class ControlChannel {
  private readonly logger = new Logger('Dispatcher');
  private readonly pending = new Map<string, AckWait>();
  private since: number | undefined;
  private readonly channel: string;
  private readonly ackChannel: string;

  constructor(
    /** Commands and acknowledgements are published on it (the caller owns it). */
    private readonly publisher: Redis,
    /** Subscribed here; closed by `close`. */
    private readonly subscriber: Redis,
    private readonly keys: RedisKeys,
    private readonly options: ControlChannelOptions,
    private readonly apply: (cmd: ControlCommand, from: string) => void,
  ) {
    this.channel = keys.key('dispatch', 'control');
    this.ackChannel = this.ackChannelOf(options.instanceId);
  }

  /**
   * Since when the subscription has been up without a break (undefined while it is down): a command published
   * since then has reached this process.
   */
  get listeningSince(): number | undefined {
    return this.since;
  }

  async start(): Promise<void> {
    this.subscriber.on('message', (channel: string, text: string) => this.onMessage(channel, text));
    this.subscriber.on('close', () => (this.since = undefined));
    // ioredis subscribes again on reconnect, right after emitting 'ready': a PING queued behind that (a turn later)
    // tells when it is done
    this.subscriber.on('ready', () => {
      setImmediate(() => {
        this.subscriber.ping().then(
          () => (this.since ??= Date.now()),
          () => undefined,
        );
      });
    });
    await this.subscriber.subscribe(this.channel, this.ackChannel);
    this.since = Date.now();
  }

  /**
   * Publishes `cmd` and resolves once every receiver acknowledged it (at most `ackWaitMs`). `before` adds commands
   * run atomically with the PUBLISH, ahead of it. The commands are issued at once, so commands issued later on the
   * same connection (another `send`) reach Redis after them.
   */
  send(cmd: ControlCommand, before?: (multi: ChainableCommander) => void): Promise<void> {
    const nonce = randomUUID();
    let done!: () => void;
    const acked = new Promise<void>((resolve) => (done = resolve));
    const wait: AckWait = { acks: 0, needed: undefined, done };
    this.pending.set(nonce, wait);
    const multi = this.publisher.multi();
    before?.(multi);
    const envelope: Envelope = { cmd, nonce, from: this.options.instanceId };
    multi.publish(this.channel, JSON.stringify(envelope));
    const sent = multi.exec();
    return this.awaitAcks(cmd, nonce, wait, sent, acked);
  }

  /** Unsubscribes and closes the subscriber; pending sends resolve. */
  async close(): Promise<void> {
    this.since = undefined;
    for (const wait of this.pending.values()) wait.done();
    this.pending.clear();
    await this.subscriber.quit().catch(() => this.subscriber.disconnect());
  }

  private async awaitAcks(
    cmd: ControlCommand,
    nonce: string,
    wait: AckWait,
    sent: Promise<[error: Error | null, result: unknown][] | null>,
    acked: Promise<void>,
  ): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const results = await sent;
      const receivers = Number(results?.at(-1)?.[1] ?? 0);
      wait.needed = receivers;
      if (wait.acks >= receivers) return;
      const late = new Promise<boolean>(
        (resolve) => (timer = setTimeout(() => resolve(true), this.options.ackWaitMs)),
      );
      if (await Promise.race([acked.then(() => false), late])) {
        this.logger.warn(
          `${cmd.kind} of task ${cmd.taskId}: ${wait.acks} of ${receivers} processes acknowledged within ${this.options.ackWaitMs} ms`,
        );
      }
    } finally {
      clearTimeout(timer);
      this.pending.delete(nonce);
    }
  }

  private ackChannelOf(instanceId: string): string {
    return this.keys.key('dispatch', 'ack', instanceId);
  }

  private onMessage(channel: string, text: string): void {
    if (channel === this.ackChannel) {
      const wait = this.pending.get(text);
      if (!wait) return;
      wait.acks++;
      if (wait.needed !== undefined && wait.acks >= wait.needed) wait.done();
      return;
    }
    if (channel !== this.channel) return;
    let envelope: Envelope;
    try {
      envelope = JSON.parse(text) as Envelope;
    } catch {
      this.logger.warn(`ignored a malformed control message: ${text.slice(0, 200)}`);
      return;
    }
    try {
      this.apply(envelope.cmd, envelope.from);
    } catch (err) {
      this.logger.error(`control message ${envelope.cmd.kind} failed: ${(err as Error).message}`);
    }
    // applied (or failed to be): the sender need not wait for this process any longer
    this.publisher
      .publish(this.ackChannelOf(envelope.from), envelope.nonce)
      .catch((err: Error) => this.logger.warn(`could not acknowledge a control message: ${err.message}`));
  }
}
