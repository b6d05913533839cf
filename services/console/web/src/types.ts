/** What the console's API answers (services/console/src: mesh-picture.ts, console-api.ts). */

export interface InstanceView {
  id: string;
  service: string;
  status: 'up' | 'down';
  http: string | null;
  version: string;
  firstSeen: string;
  lastSeen: string;
  partitions: number[];
}

export interface ServiceView {
  name: string;
  column: string;
  inRate: number | null;
  outRate: number | null;
  retryRate: number | null;
  lag: number | null;
  retrying: number | null;
  deadLetters: number | null;
  instances: InstanceView[];
}

export interface PartitionRow {
  stage: string;
  partition: number;
  stream: string;
  consumer: string;
  exists: boolean;
  lag: number | null;
  pending: number | null;
  ackPending: number | null;
  ackFloor: number | null;
  owner: string | null;
  retrying: number | null;
}

export interface OwnershipMove {
  at: string;
  stage: string;
  partition: number;
  from: string | null;
  to: string | null;
}

export interface MeshPicture {
  at: string;
  nats: { connected: boolean; server: string };
  services: ServiceView[];
  partitions: PartitionRow[] | null;
  moves: OwnershipMove[];
  deadLetters: { total: number; byStage: Record<string, number> } | null;
  problems: string[];
}

export interface DeadLetterSummary {
  seq: number;
  time: string;
  subject: string;
  stage: string | null;
  partition: number | null;
  handler: string | null;
  error: string | null;
  errorKind: string | null;
  attempts: number | null;
  originalSubject: string | null;
  events: { id: string; source: string; type: string }[] | null;
  malformed: string | null;
  bytes: number;
}

export interface DeadLetterDetail extends DeadLetterSummary {
  headers: Record<string, string[]>;
  body: unknown[] | null;
  bodyText: string | null;
  bodyBase64: string | null;
  redrivable: boolean;
  redriveProblem: string | null;
}

export interface RedriveOutcome {
  redriven: { seq: number; subject: string; stream: string; streamSeq: number; duplicate: boolean }[];
  refused: { seq: number; problem: string }[];
}

export interface RouteEntry {
  kind: 'handler' | 'rule';
  name: string;
  value: unknown;
  problems: string[];
  revision: number;
}

export interface WindowResult {
  name: string;
  key: string;
  windows: { start: string; end: string; closed: boolean; [field: string]: unknown }[];
}
