import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import { PlanRequestDto, type PlanResponseDto } from './dto/plan-request.dto';
import { PlannerService } from './planner.service';

@Controller('parallel')
export class PlanningController {
  constructor(private readonly planner: PlannerService) {}

  /** Suggested groups, agents and priorities for a canvas, with a ready execute body. Reads only. */
  @Post('plan')
  @HttpCode(200)
  plan(@Body() body: PlanRequestDto): Promise<PlanResponseDto> {
    return this.planner.plan(body);
  }
}
