import { DefinitionError, DuplicateNameError, PermanentError, RetryableError, isRetryable } from './errors';

describe('isRetryable', () => {
  it('is true for a RetryableError', () => {
    expect(isRetryable(new RetryableError('busy'))).toBe(true);
  });

  it('is false for a PermanentError and for any other error', () => {
    expect(isRetryable(new PermanentError('bad data'))).toBe(false);
    expect(isRetryable(new Error('oops'))).toBe(false);
    expect(isRetryable(new TypeError('x is undefined'))).toBe(false);
  });

  it('is true for any error that carries retryable: true, such as one of another library', () => {
    expect(isRetryable(Object.assign(new Error('timeout'), { retryable: true }))).toBe(true);
  });

  it('takes only the boolean true as retryable', () => {
    expect(isRetryable({ retryable: 'yes' })).toBe(false);
    expect(isRetryable({ retryable: 1 })).toBe(false);
  });

  it.each([undefined, null, 'retry', 42])('is false for the thrown non-object %j', (thrown) => {
    expect(isRetryable(thrown)).toBe(false);
  });
});

describe('handler errors', () => {
  it('keep their cause and their own name', () => {
    const cause = new Error('socket hang up');
    const err = new RetryableError('enrichment service busy', { cause });
    expect(err.cause).toBe(cause);
    expect(err.name).toBe('RetryableError');
    expect(new PermanentError('bad').name).toBe('PermanentError');
  });
});

describe('start-up errors', () => {
  it('name the duplicate and say what is needed', () => {
    expect(new DuplicateNameError('handler', 'enrich').message).toBe("two handlers are named 'enrich'; each handler needs a unique name");
  });

  it('name the definition and its problem', () => {
    expect(new DefinitionError('aggregation', 'per-minute', 'window.sizeMs must be positive').message).toBe(
      "aggregation 'per-minute': window.sizeMs must be positive",
    );
  });
});
