/**
 * A small schema for a handler's `data`: field name to expected kind, `?`
 * for optional. Problems name the field, what was given and what is accepted.
 *
 *   fields({ orderId: 'string', amount: 'number', note: 'string?' })
 */
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
