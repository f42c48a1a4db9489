import * as path from 'node:path';
import { AgentRunner, OfflineAgentRunner } from '../../agent';
import type { ResolvedCanvasBatchOptions, TokenPrices } from '../../config';
import type { BudgetAccount, BudgetLedger } from '../../session';

/** The built-in offline runner makes no provider call: its price is known, and it is nothing. */
const FREE: TokenPrices = { inputPerMTok: 0, outputPerMTok: 0 };

/**
 * The price per token the batches run at: the configured one (`AGENT_PRICE_PER_MTOK`, a host's `tokenPrices`),
 * nothing for the offline runner, else unknown (`undefined`: no cost is estimated and no budget can be held).
 */
export function pricing(options: ResolvedCanvasBatchOptions, runner: AgentRunner): TokenPrices | undefined {
  if (options.tokenPrices) return options.tokenPrices;
  return runner instanceof OfflineAgentRunner ? FREE : undefined;
}

/** The provider and model as an estimate names them (a local model by its file name: no server path is shown). */
export function providerOf(
  options: ResolvedCanvasBatchOptions,
  runner: AgentRunner,
): { provider: string; model: string | null } {
  const llm = options.llm;
  if (llm)
    return { provider: llm.provider, model: llm.provider === 'local' ? path.basename(llm.model) : llm.model };
  return { provider: runner instanceof OfflineAgentRunner ? 'offline' : 'custom', model: null };
}

/** USD of a token count at `prices`, unrounded (sums are rounded once, at the end). */
export function usdOf(prices: TokenPrices, inputTokens: number, outputTokens: number): number {
  return (inputTokens * prices.inputPerMTok + outputTokens * prices.outputPerMTok) / 1_000_000;
}

/** USD rounded to the micro-dollar, as `cost_usd` is everywhere. */
export function roundUsd(usd: number): number {
  return Math.round(usd * 1e6) / 1e6;
}

/** A budget as status and `progress_update` show it. */
export interface BudgetView {
  limit_usd: number;
  /** What the nodes' provider calls cost so far (settled reservations). */
  spent_usd: number;
  /** The expected cost of the nodes running now. */
  reserved_usd: number;
  /** limit − spent − reserved, never below 0. */
  remaining_usd: number;
}

export function budgetView(limitUsd: number, account: BudgetAccount): BudgetView {
  return {
    limit_usd: limitUsd,
    spent_usd: roundUsd(account.spentUsd),
    reserved_usd: roundUsd(account.reservedUsd),
    remaining_usd: roundUsd(Math.max(0, limitUsd - account.spentUsd - account.reservedUsd)),
  };
}

/** The budget of `task` as it stands in `ledger` (spent, reserved, remaining), or `undefined` for a task without one. */
export async function taskBudget(
  ledger: BudgetLedger,
  task: { taskId: string; budgetUsd: number | null },
): Promise<BudgetView | undefined> {
  if (task.budgetUsd === null) return undefined;
  return budgetView(task.budgetUsd, await ledger.account(task.taskId));
}
