// @ts-check
// A local ESLint rule: the folders of src/ (agent/, canvas/, …) are modules, and another folder (or a file of src/
// itself) imports one only through its index.ts: `import { CanvasService } from '../canvas'`, never
// '../canvas/canvas.service'. Inside a folder, files import each other directly, never through their own index.ts
// (that is how a barrel closes a cycle), and no folder imports the app's wiring in src/ itself (main.ts, …).
//
// Checked: `import … from`, `export … from`, `import x = require()`, `import()` and `require()`. Not checked: the
// module paths handed to `jest.mock()`/`jest.requireActual()` in spec files (a mock must name the file it replaces).
import { statSync } from 'node:fs';
import path from 'node:path';

/** @type {Map<string, boolean>} */
const directories = new Map();
/** @param {string} p */
function isDirectory(p) {
  let known = directories.get(p);
  if (known === undefined) {
    try {
      known = statSync(p).isDirectory();
    } catch {
      known = false;
    }
    directories.set(p, known);
  }
  return known;
}

/** @type {import('eslint').Rule.RuleModule} */
export const folderBoundaries = {
  meta: {
    type: 'problem',
    docs: { description: "Cross-folder imports in src/ go through the folder's index.ts" },
    schema: [
      {
        type: 'object',
        properties: { srcDir: { type: 'string' } },
        required: ['srcDir'],
        additionalProperties: false,
      },
    ],
    messages: {
      deep: "Import '{{folder}}/' through its index: '{{suggestion}}', not '{{source}}' (export what you need from {{folder}}/index.ts).",
      ownIndex:
        "'{{source}}' is this folder's own index.ts: import the file itself (a folder importing its own barrel makes a cycle).",
      rootFile: "'{{source}}' is the app's wiring in src/: a folder must not import it.",
    },
  },
  create(context) {
    const { srcDir } = /** @type {{ srcDir: string }} */ (context.options[0]);
    const file = context.filename;
    if (!file.startsWith(srcDir + path.sep)) return {};
    const fromParts = path.relative(srcDir, file).split(path.sep);
    const fromFolder = fromParts.length > 1 ? fromParts[0] : undefined;

    /** @param {import('estree').Node} node @param {unknown} source */
    function check(node, source) {
      if (typeof source !== 'string' || !source.startsWith('.')) return;
      const target = path.resolve(path.dirname(file), source.replace(/\.js$/, ''));
      if (!target.startsWith(srcDir + path.sep)) return; // e.g. a spec's ../../test/support helper
      const parts = path.relative(srcDir, target).split(path.sep);
      const toFolder = parts.length > 1 || isDirectory(path.join(srcDir, parts[0])) ? parts[0] : undefined;
      const viaIndex = parts.length === 1 || (parts.length === 2 && parts[1] === 'index');
      if (toFolder === undefined) {
        if (fromFolder !== undefined) context.report({ node, messageId: 'rootFile', data: { source } });
      } else if (toFolder === fromFolder) {
        if (viaIndex) context.report({ node, messageId: 'ownIndex', data: { source } });
      } else if (parts.length > 1) {
        let suggestion = path
          .relative(path.dirname(file), path.join(srcDir, toFolder))
          .split(path.sep)
          .join('/');
        if (!suggestion.startsWith('.')) suggestion = `./${suggestion}`;
        context.report({ node, messageId: 'deep', data: { folder: toFolder, suggestion, source } });
      }
    }

    return {
      ImportDeclaration: (node) => check(node, node.source.value),
      ExportNamedDeclaration: (node) => node.source && check(node, node.source.value),
      ExportAllDeclaration: (node) => check(node, node.source.value),
      ImportExpression: (node) => node.source.type === 'Literal' && check(node, node.source.value),
      CallExpression: (node) => {
        const [first] = node.arguments;
        if (
          node.callee.type === 'Identifier' &&
          node.callee.name === 'require' &&
          first?.type === 'Literal'
        ) {
          check(node, first.value);
        }
      },
      /** @param {any} node TSImportEqualsDeclaration (not in ESTree's types) */
      TSImportEqualsDeclaration: (node) => {
        if (node.moduleReference.type === 'TSExternalModuleReference')
          check(node, node.moduleReference.expression.value);
      },
    };
  },
};
