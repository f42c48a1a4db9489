import { Controller, Get, Param, Query } from '@nestjs/common';
import { ServerPathRedactor } from '../common';
import { InjectCanvasBatchOptions, type ResolvedCanvasBatchOptions } from '../config';
import { MemoryRecallService, type TaskMemoryView } from '../memory';
import { TaskMemoryQueryDto } from './dto/task-query.dto';
import { TaskViewService } from './task-view.service';

@Controller('parallel')
export class TaskMemoryController {
  private readonly paths: ServerPathRedactor;

  constructor(
    private readonly views: TaskViewService,
    private readonly recall: MemoryRecallService,
    @InjectCanvasBatchOptions() options: ResolvedCanvasBatchOptions,
  ) {
    this.paths = new ServerPathRedactor(options);
  }

  /**
   * What the system now remembers of a task: the concepts of its nodes and their learning events, each with its
   * delivery state and whether the store holds it (a page of concepts). A store that cannot be read in time gives
   * the outbox's view and says so; an outbox that cannot be read gives 503.
   */
  @Get('status/:taskId/memory')
  async memory(@Param('taskId') taskId: string, @Query() query: TaskMemoryQueryDto): Promise<TaskMemoryView> {
    await this.views.find(taskId);
    const view = await this.recall.forTask(taskId, { offset: query.offset, limit: query.limit });
    // a learner's page shows no absolute server path (the embedded store's file is under DATA_DIR)
    return {
      ...view,
      target: this.paths.redact(view.target),
      store_error: view.store_error === null ? null : this.paths.redact(view.store_error),
    };
  }
}
