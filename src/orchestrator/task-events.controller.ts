import { Controller, Headers, Param, Query, Sse } from '@nestjs/common';
import { ApiOkResponse, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Observable } from 'rxjs';
import { EventsQueryDto } from './dto/task-query.dto';
import { type SseMessage, TaskEventStream } from './task-event-stream';
import { TaskViewService } from './task-view.service';

@ApiTags('parallel')
@Controller('parallel')
export class TaskEventsController {
  constructor(
    private readonly views: TaskViewService,
    private readonly streams: TaskEventStream,
  ) {}

  /**
   * Server-Sent Events: every stored event after `Last-Event-ID` (header) or `?last_event_id=`, in order, then the
   * live ones; ends after `session_completed`. `: keep-alive` comments keep idle streams open.
   */
  @Sse('events/:taskId')
  @ApiProduces('text/event-stream')
  @ApiOkResponse({ description: 'text/event-stream of task events' })
  events(
    @Param('taskId') taskId: string,
    @Query() query: EventsQueryDto,
    @Headers('last-event-id') lastEventIdHeader: string | undefined,
  ): Observable<SseMessage> {
    this.views.find(taskId);
    const fromHeader = Number.parseInt(lastEventIdHeader ?? '', 10);
    const after =
      Number.isSafeInteger(fromHeader) && fromHeader >= 0 ? fromHeader : (query.last_event_id ?? 0);
    return this.streams.open(taskId, after);
  }
}
