// The public surface of common/ (the shared kernel: errors, HTTP plumbing, log helpers). Other folders import
// these from '../common' only (see eslint.config.mjs, "folder boundaries"); common/ itself depends on config/ only.
export { DomainError, type DomainErrorCode, type ProblemFieldError } from './domain-error';
export {
  OnDomainEvent,
  type AgentCompletedEvent,
  type BatchStartedEvent,
  type BatchResumedEvent,
  type DomainEventMap,
  type DomainEventName,
} from './domain-events';
export { failpoint } from './failpoints';
export {
  charCount,
  formatCount,
  graphemeBoundary,
  truncateChars,
  truncatedNote,
  truncateUtf8,
} from './truncate';
export { ServerPathRedactor, type ServerPathRoots } from './server-paths';
export { ProblemDetailsFilter } from './problem-details.filter';
export { createValidationPipe, IsAbsentOrSet, IsCanvasPath } from './validation';
export { ApiTokenCheck, SESSION_COOKIE, TooManyAuthFailures } from './api-token';
export { AuthFailureLimiter, type AuthFailureStore } from './auth-throttle';
export { clearSessionCookie, startSession } from './api-token.middleware';
export { configureHttpEdge, type HttpEdge, type HttpEdgeOptions } from './http-edge';
export { API_CONTRACT_FILE, loadApiContract, mountApiDocs } from './api-docs';
export { SESSION_VALUE } from './login-sessions';
export { REDACTED_LOG_PATHS, redactRequestUrl, redactUrl, secretScrubber } from './log-redaction';
export { requestIdOf } from './request-id';
export {
  failedRequestLine,
  PRETTY_LOG_OPTIONS,
  requestLine,
  requestLogView,
  responseLogView,
  ServiceLogger,
} from './service-log';
export { taskIdOfUrl, taskLog } from './task-log';
export { exitAfterFileCalls, shutdownWatchdog } from './process-exit';
export { reportStartupFailure, startupFailureText } from './startup-failure';
export { settleWithin } from './settle-within';
