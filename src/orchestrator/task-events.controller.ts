import type { IncomingMessage, ServerResponse } from 'node:http';
import { Controller, Get, Headers, Param, Query, Req, Res } from '@nestjs/common';
import { EventsQueryDto } from './dto/task-query.dto';
import { SseFanout } from './sse-fanout';
import { TaskViewService } from './task-view.service';

@Controller('parallel')
export class TaskEventsController {
  constructor(
    private readonly views: TaskViewService,
    private readonly fanout: SseFanout,
  ) {}

  /**
   * Server-Sent Events: every stored event after `Last-Event-ID` (header) or `?last_event_id=`, in order, then the
   * live ones; ends after `session_completed`. `: keep-alive` comments keep idle streams open. An unknown or
   * malformed task id is answered with problem+json before the stream opens. A resume (an id given) of a finished
   * task past its last event gets 204 No Content: the one answer that stops an EventSource's reconnecting.
   * `?include=deltas` adds the running nodes' partial text (`task_output_delta`, without an id: not stored, not
   * replayed, dropped for a client that does not keep up).
   */
  @Get('events/:taskId')
  async events(
    @Param('taskId') taskId: string,
    @Query() query: EventsQueryDto,
    @Headers('last-event-id') lastEventIdHeader: string | undefined,
    @Req() req: IncomingMessage,
    @Res() res: ServerResponse,
  ): Promise<void> {
    await this.views.find(taskId);
    const fromHeader = Number.parseInt(lastEventIdHeader ?? '', 10);
    const resumeFrom = Number.isSafeInteger(fromHeader) && fromHeader >= 0 ? fromHeader : query.last_event_id;
    if (resumeFrom !== undefined && (await this.fanout.exhausted(taskId, resumeFrom))) {
      res.writeHead(204).end();
      return;
    }
    this.fanout.attach(taskId, resumeFrom ?? 0, req, res, { deltas: query.include === 'deltas' });
  }
}
