import { DefinitionError, DuplicateNameError } from './errors';
import { defineHandler, handlerTakes, registry, type HandlerDefinition } from './handler';

const handle = () => undefined;
const define = (over: Partial<HandlerDefinition>) => defineHandler({ name: 'enrich-order', types: ['order.created'], handle, ...over });

describe('defineHandler', () => {
  it('gives back a well-formed definition unchanged', () => {
    const definition = { name: 'enrich_order-2', types: ['order.created', 'order.*', 'invoice.>'], handle };
    expect(defineHandler(definition)).toBe(definition);
  });

  it.each(['Enrich', 'enrich order', '-enrich', '_enrich', '', 'enrich.order', 'x'.repeat(65)])('refuses the name %j, saying what a name may be', (name) => {
    expect(() => define({ name })).toThrow(DefinitionError);
    expect(() => define({ name })).toThrow(`handler '${name}': name must be 1 to 64 lowercase letters, digits, '-' or '_', starting with a letter or digit`);
  });

  it('accepts a name of 64 characters', () => {
    expect(() => define({ name: 'x'.repeat(64) })).not.toThrow();
  });

  it('refuses a handler that takes no event types', () => {
    expect(() => define({ types: [] })).toThrow(
      'handler \'enrich-order\': types must list at least one event type pattern, such as "order.created" or "order.*"',
    );
  });

  it('refuses a malformed type pattern, quoting it and saying what is wrong', () => {
    expect(() => define({ types: ['order.created', 'order.>.line'] })).toThrow(
      `handler 'enrich-order': type pattern "order.>.line" '>' may only be the last token`,
    );
    expect(() => define({ types: ['order created'] })).toThrow(DefinitionError);
  });

  it('refuses a definition without a handle function', () => {
    expect(() => define({ handle: 'handle' as unknown as HandlerDefinition['handle'] })).toThrow("handler 'enrich-order': handle must be a function");
  });
});

describe('registry', () => {
  it('lists definitions by name, in the order given', () => {
    const a = define({ name: 'a' });
    const b = define({ name: 'b' });
    const byName = registry('handler', [b, a]);
    expect([...byName.keys()]).toEqual(['b', 'a']);
    expect(byName.get('a')).toBe(a);
  });

  it('fails on two definitions with the same name, naming it', () => {
    const definitions = [define({ name: 'enrich' }), define({ name: 'other' }), define({ name: 'enrich', types: ['invoice.*'] })];
    expect(() => registry('handler', definitions)).toThrow(DuplicateNameError);
    expect(() => registry('handler', definitions)).toThrow("two handlers are named 'enrich'");
  });
});

describe('handlerTakes', () => {
  const definition = { types: ['order.created', 'invoice.*', 'payment.>'] };

  it('takes a type that any of its patterns matches', () => {
    expect(handlerTakes(definition, 'order.created')).toBe(true);
    expect(handlerTakes(definition, 'invoice.sent')).toBe(true);
    expect(handlerTakes(definition, 'payment.card.captured')).toBe(true);
  });

  it('does not take a type none of its patterns matches', () => {
    expect(handlerTakes(definition, 'order.updated')).toBe(false);
    expect(handlerTakes(definition, 'invoice.line.added')).toBe(false);
    expect(handlerTakes(definition, 'payment')).toBe(false);
  });
});
