// The one door to the etcd3 package for the layers above this one: the client class the
// public face builds (`locker.client`, for the application's own fenced writes), its
// error test, and the types that appear in the public API (`IOptions` of `options.etcd`,
// `ComparatorBuilder` of `leadership.fence()`). Everything else of etcd3 stays in etcd/.
export { Etcd3, isRecoverableError } from 'etcd3';
export type { ComparatorBuilder, IEvent, IKeyValue, IOptions } from 'etcd3';
