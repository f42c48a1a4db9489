import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { RedisKeys } from '../../redis';
import { type DeltaListener, DeltaListeners, type OutputDelta, OutputDeltas } from './output-deltas';

/**
 * The distributed engine: a node's deltas may be produced on any process and watched on any other, so every delta
 * goes through Redis pub/sub on the task's own channel (`<prefix>:deltas:<task id>`), fire-and-forget, and a process
 * subscribes to a task's channel while it has a delta subscriber of that task. Publishing happens whoever listens
 * (`wanted` is always true): a PUBLISH nobody receives costs Redis next to nothing, and the coalescing caps it at
 * 4 per second per running node (bench/README.md, output-deltas). A delta lost to a reconnect is lost: best effort.
 */
export class RedisOutputDeltas extends OutputDeltas {
  private readonly logger = new Logger('OutputDeltas');
  private readonly local = new DeltaListeners();
  private warned = false;

  constructor(
    /** Publishes (commands connection, owned by the caller). */
    private readonly publisher: Redis,
    /** Subscribes; closed by `close`. */
    private readonly subscriber: Redis,
    private readonly keys: RedisKeys,
  ) {
    super();
    this.subscriber.on('message', (channel: string, text: string) => this.onMessage(channel, text));
  }

  publish(delta: OutputDelta): void {
    this.publisher.publish(this.channel(delta.taskId), JSON.stringify(delta)).catch((err: Error) => {
      if (!this.warned) this.logger.warn(`a delta could not be published: ${err.message}`);
      this.warned = true;
    });
  }

  subscribe(taskId: string, listener: DeltaListener): () => void {
    if (this.local.add(taskId, listener)) {
      this.subscriber.subscribe(this.channel(taskId)).catch(() => undefined);
    }
    return () => {
      if (this.local.remove(taskId, listener))
        this.subscriber.unsubscribe(this.channel(taskId)).catch(() => undefined);
    };
  }

  wanted(): boolean {
    return true;
  }

  listeners(taskId: string): number {
    return this.local.count(taskId);
  }

  /** Nest calls it once the application has stopped. */
  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }

  async close(): Promise<void> {
    await this.subscriber.quit().catch(() => this.subscriber.disconnect());
    await this.publisher.quit().catch(() => this.publisher.disconnect());
  }

  private channel(taskId: string): string {
    return this.keys.key('deltas', taskId);
  }

  private onMessage(channel: string, text: string): void {
    let delta: OutputDelta | null;
    try {
      delta = JSON.parse(text) as OutputDelta | null;
    } catch {
      return;
    }
    if (typeof delta?.taskId !== 'string' || channel !== this.channel(delta.taskId)) return;
    this.local.deliver(delta);
  }
}
