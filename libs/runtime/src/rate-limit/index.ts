export { TokenBucket } from './token-bucket';
export { RateLimiter } from './rate-limiter';
export type { RateLimitOptions, RateDecision } from './rate-limiter';
