// Lint: typescript-eslint's recommended rules, plus the type-aware rules
// that catch what breaks an event pipeline quietly (a promise nobody awaits,
// a promise passed where a callback's result is ignored).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'bench/results/**', '.nx/**', '.data/**', 'coverage/**', '**/*.js', '**/*.mjs', '**/*.cjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      // Sources by their own projects; tests (excluded from those) by tsconfig.spec.json.
      parserOptions: { project: ['./tsconfig.spec.json', './bench/tsconfig.json'], tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/await-thenable': 'error',
      // Flags initial values that a later branch always overwrites; TypeScript's
      // definite-assignment analysis already catches a value used unset.
      'no-useless-assignment': 'off',
      // `_name`: deliberately unused (a destructured field left out, a callback's argument).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
    },
  },
);
