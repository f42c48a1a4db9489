export { connectRedis, RedisKeys } from './redis-connection';
export { RedisThrottlerStorage, type RedisThrottlerStorageOptions } from './redis-throttler-storage';
export { RedisAuthFailureStore } from './redis-auth-failure-store';
