import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  { ignores: ['dist/', 'node_modules/', '.tools/', '.stack/', '.engine/', '.kubernetes/', '.kubernetes-test/'] },
  js.configs.recommended,
  tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['eslint.config.js'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
    },
  },
  {
    files: ['service/test/**/*.ts'],
    rules: {
      // chai's `expect(x).to.be.true` style is an expression statement by design
      '@typescript-eslint/no-unused-expressions': 'off',
    },
  },
);
