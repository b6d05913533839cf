/**
 * Subjects of the JetStream and KV protocols (nats-server 2.9), as the v3
 * client sends them. The mesh never publishes to these by hand (the client
 * does); they are named here for the per-service permissions, which must
 * grant exactly what the client sends. Any argument may be `*` (one token)
 * and a filter may end in `>`.
 */

/** The stream behind a KV bucket. */
export function kvStream(bucket: string): string {
  return `KV_${bucket}`;
}

/** The subject a KV key is stored under (put, create, update, delete, purge publish here). */
export function kvSubject(bucket: string, key: string): string {
  return `$KV.${bucket}.${key}`;
}

export const JsApi = {
  /** Account info: every JetStream client asks it once when it starts. */
  info: '$JS.API.INFO',
  streamCreate: (stream: string) => `$JS.API.STREAM.CREATE.${stream}`,
  streamUpdate: (stream: string) => `$JS.API.STREAM.UPDATE.${stream}`,
  streamDelete: (stream: string) => `$JS.API.STREAM.DELETE.${stream}`,
  streamInfo: (stream: string) => `$JS.API.STREAM.INFO.${stream}`,
  streamPurge: (stream: string) => `$JS.API.STREAM.PURGE.${stream}`,
  /** Read one message by sequence or last-by-subject; the subject is in the body, so it cannot be scoped by key. */
  streamMsgGet: (stream: string) => `$JS.API.STREAM.MSG.GET.${stream}`,
  streamMsgDelete: (stream: string) => `$JS.API.STREAM.MSG.DELETE.${stream}`,
  /** Direct get of the last message on a subject (allow_direct streams): scoped by subject. */
  directGetLast: (stream: string, subject: string) => `$JS.API.DIRECT.GET.${stream}.${subject}`,
  /** List the consumers of a stream (with their state). */
  consumerList: (stream: string) => `$JS.API.CONSUMER.LIST.${stream}`,
  consumerInfo: (stream: string, consumer: string) => `$JS.API.CONSUMER.INFO.${stream}.${consumer}`,
  /** Create or update a consumer with one filter subject (the 2.9 API the v3 client uses). */
  consumerCreate: (stream: string, consumer: string, filter: string) => `$JS.API.CONSUMER.CREATE.${stream}.${consumer}.${filter}`,
  consumerDelete: (stream: string, consumer: string) => `$JS.API.CONSUMER.DELETE.${stream}.${consumer}`,
  /** A pull request. */
  consumerNext: (stream: string, consumer: string) => `$JS.API.CONSUMER.MSG.NEXT.${stream}.${consumer}`,
  /** Acks, naks and terms of a consumer's messages (the reply subject of each delivered message). */
  ack: (stream: string, consumer: string) => `$JS.ACK.${stream}.${consumer}.>`,
  /** Flow-control answers of the push consumers on a stream (KV watches and key listings). */
  flowControl: (stream: string) => `$JS.FC.${stream}.>`,
} as const;
