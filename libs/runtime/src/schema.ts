/**
 * A handler's schema for `data`: either the small built-in one, field name to
 * expected kind (`?` for optional), whose problems name the field, what was
 * given and what is accepted:
 *
 *   fields({ orderId: 'string', amount: 'number', note: 'string?' })
 *
 * or any Standard Schema (https://standardschema.dev: zod, valibot, ArkType,
 * ...): `z.object({ orderId: z.string(), amount: z.number() })`. A Standard
 * Schema's output (with its defaults and coercions) is the `data` the
 * handler sees; the event stored upstream is not changed.
 */
import type { StandardSchemaV1 } from '@standard-schema/spec';

export type FieldKind = 'string' | 'number' | 'integer' | 'boolean' | 'object' | 'array';
export type FieldSpec = FieldKind | `${FieldKind}?`;

export interface DataSchema<T> {
  /** Problems with `data`; empty when it is acceptable. */
  problems(data: unknown): string[];
  /** Only for typing: the shape `data` has once accepted. */
  readonly _type?: T;
}

type KindType<K> = K extends 'string'
  ? string
  : K extends 'number' | 'integer'
    ? number
    : K extends 'boolean'
      ? boolean
      : K extends 'array'
        ? unknown[]
        : Record<string, unknown>;
type Shape<S extends Record<string, FieldSpec>> = {
  [F in keyof S as S[F] extends `${string}?` ? never : F]: KindType<S[F]>;
} & {
  [F in keyof S as S[F] extends `${string}?` ? F : never]?: KindType<S[F] extends `${infer K}?` ? K : never>;
};

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number' && Number.isInteger(value)) return 'integer';
  return typeof value;
}

function matches(kind: FieldKind, value: unknown): boolean {
  switch (kind) {
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'array':
      return Array.isArray(value);
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
    default:
      return typeof value === kind;
  }
}

export function fields<S extends Record<string, FieldSpec>>(spec: S): DataSchema<Shape<S>> {
  return {
    problems(data: unknown): string[] {
      if (typeof data !== 'object' || data === null || Array.isArray(data)) return [`data must be a JSON object, got ${kindOf(data)}`];
      const record = data as Record<string, unknown>;
      const out: string[] = [];
      for (const [name, s] of Object.entries(spec)) {
        const optional = s.endsWith('?');
        const kind = (optional ? s.slice(0, -1) : s) as FieldKind;
        const value = Object.hasOwn(record, name) ? record[name] : undefined;
        if (value === undefined) {
          if (!optional) out.push(`data.${name} is required (${kind})`);
        } else if (!matches(kind, value)) {
          out.push(`data.${name} must be ${/^[aeiou]/.test(kind) ? 'an' : 'a'} ${kind}, got ${kindOf(value)}`);
        }
      }
      return out;
    },
  };
}

/** What a handler's `schema` may be. */
export type HandlerSchema<T> = DataSchema<T> | StandardSchemaV1<unknown, T>;

export type DataCheck = { ok: true; data: unknown } | { ok: false; problems: string[] };

function isStandard(schema: HandlerSchema<unknown>): schema is StandardSchemaV1 {
  return typeof (schema as Partial<StandardSchemaV1>)['~standard']?.validate === 'function';
}

/** `data.items[2].sku`: where an issue of a Standard Schema points. */
function issuePath(path: StandardSchemaV1.Issue['path']): string {
  let out = 'data';
  for (const step of path ?? []) {
    const key = typeof step === 'object' && step !== null ? step.key : step;
    out += typeof key === 'number' ? `[${key}]` : `.${String(key)}`;
  }
  return out;
}

/**
 * Checks `data` against a handler's schema. The built-in schema answers at
 * once (no promise on the hot path); a Standard Schema may be asynchronous.
 */
export function checkData(schema: HandlerSchema<unknown>, data: unknown): DataCheck | Promise<DataCheck> {
  if (!isStandard(schema)) {
    const problems = schema.problems(data);
    return problems.length > 0 ? { ok: false, problems } : { ok: true, data };
  }
  const settle = (result: StandardSchemaV1.Result<unknown>): DataCheck =>
    result.issues ? { ok: false, problems: result.issues.map((i) => `${issuePath(i.path)}: ${i.message}`) } : { ok: true, data: result.value };
  const result = schema['~standard'].validate(data);
  return result instanceof Promise ? result.then(settle) : settle(result);
}

/** Whether a handler's `schema` is one the runtime can use, and what is wrong if not. */
export function schemaProblem(schema: unknown): string | undefined {
  if (schema === undefined) return undefined;
  if (typeof schema !== 'object' || schema === null) return 'schema must be fields({...}) or a Standard Schema (zod, valibot, ...)';
  if (isStandard(schema as HandlerSchema<unknown>)) return undefined;
  if (typeof (schema as Partial<DataSchema<unknown>>).problems === 'function') return undefined;
  return 'schema must be fields({...}) or a Standard Schema (an object with ~standard.validate, as zod and valibot schemas are)';
}
