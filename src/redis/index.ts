export { connectRedis, RedisKeys } from './redis-connection';
