// The one door to the etcd3 package for the layers above this one: the client class the
// public face builds (`locker.client`, for the application's own fenced writes), the test
// of which errors count against a member, and the types that appear in the public API
// (`IOptions` of `options.etcd`, `ComparatorBuilder` of `leadership.fence()`). Everything
// else of etcd3 stays in etcd/.
import { GRPCDeadlineExceededError, isRecoverableError } from 'etcd3';

export { Etcd3 } from 'etcd3';
export type { ComparatorBuilder, IEvent, IKeyValue, IOptions } from 'etcd3';

/**
 * What counts against a member in its circuit breaker: etcd3's recoverable errors
 * (unavailable, connection reset…) but not DEADLINE_EXCEEDED — every call carries a
 * deadline of ours, and a member that answers slowly under load is busy, not gone: three
 * slow answers in a row shut it out for a second, refusing every call to it (on a
 * one-member cluster, all of them). A member that never answers is left by hedging
 * (members.ts), which moves the next calls to another member.
 */
export const countsAgainstMember = (err: Error): boolean => isRecoverableError(err) && !(err instanceof GRPCDeadlineExceededError);
