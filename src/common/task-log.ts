/**
 * A structured log record of a batch: `task_id` (and `node_id`, …) as fields, so every line of a batch can be
 * found by them (nestjs-pino merges an object message into the JSON line; `msg` stays human-readable).
 */
export function taskLog(
  taskId: string,
  msg: string,
  fields: Record<string, string | number | undefined> = {},
): Record<string, unknown> {
  return { task_id: taskId, ...fields, msg };
}

const TASK_ROUTE = /^\/parallel\/(?:status|events|cancel)\/([0-9a-fA-F-]{36})(?:[/?]|$)/;

/** The task id in a request URL of the task routes, for the request's log line. */
export function taskIdOfUrl(url: string | undefined): string | undefined {
  return url === undefined ? undefined : TASK_ROUTE.exec(url)?.[1];
}
