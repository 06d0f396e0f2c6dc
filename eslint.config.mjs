import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// The benchmark harness (bench/), the network lab (netlab/) and the helper scripts tests run in
// child processes are plain Node ESM/CJS: they are linted with the JavaScript rules only (lab.mjs is
// type-checked by tsc through its JSDoc, via allowJs and @ts-check).
const nodeGlobals = Object.fromEntries(
  ['process', 'console', 'Buffer', 'URL', 'performance', 'fetch', 'AbortSignal', 'global', 'require', 'module', '__dirname',
    'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate', 'structuredClone'].map((name) => [name, 'readonly']),
);

export default tseslint.config(
  { ignores: ['dist/**', '.scratch/**', 'node_modules/**', 'coverage/**', 'bench/results/**', 'client/dist/**', 'client/dist.*/**', '*.js', '*.mjs', 'client/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/unbound-method': 'off',
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      '@typescript-eslint/no-extraneous-class': 'off',
    },
  },
  {
    files: ['bench/**/*.mjs', 'scripts/**/*.mjs', 'bench/**/*.cjs', 'netlab/**/*.mjs', 'test/**/*.mjs', 'test/**/*.cjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: nodeGlobals },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // Tests read untyped JSON bodies and socket payloads all the time; src/ gets the full checks.
    files: ['test/**/*.ts', '**/*.spec.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
);
