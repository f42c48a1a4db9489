import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';

/**
 * The import graph of src/ has no cycle, at two levels:
 *
 * - files, run-time imports only: a cycle there hands some module an `undefined` class while it is being decorated
 *   (Nest DI, `emitDecoratorMetadata`), however the cycle is routed (a barrel `index.ts` makes one easy to create).
 *   Type-only imports (`import type`, `import { type A }`, `export type`) are left out: the compiler erases them.
 * - folders (agent/, canvas/, …, with the files in src/ itself as one more node), every import, type-only ones
 *   included: the folders are layers, and a folder that needs another's types depends on it as much as one that
 *   calls it. The one allowance is `TYPE_ONLY_FOLDER_EDGES` below.
 *
 * Spec files are left out of both graphs (nothing imports them, so they close no cycle); they and every other file
 * obey the folder boundaries checked by `npm run lint` (eslint.config.mjs, `local/folder-boundaries`).
 */

const SRC = __dirname;

/**
 * Folder edges allowed although they close a cycle, as long as every import behind them is type-only. None today:
 * `CanvasBatchOptions`, which carries the host's own agent runner and memory store, lives in orchestrator/, and each
 * feature module owns its options (issue 19 item 3).
 */
const TYPE_ONLY_FOLDER_EDGES: ReadonlyArray<readonly [string, string]> = [];

interface Import {
  from: string;
  to: string;
  typeOnly: boolean;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [full] : [];
  });
}

/** The file a relative specifier names (`./x`, `./x.js`, `./dir` → `./dir/index.ts`); `undefined` for packages. */
function resolveImport(fromFile: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const base = path.resolve(path.dirname(fromFile), specifier);
  const stem = base.replace(/\.js$/, '');
  for (const candidate of [`${stem}.ts`, path.join(stem, 'index.ts'), base]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  throw new Error(`${path.relative(SRC, fromFile)}: cannot resolve '${specifier}'`);
}

function isTypeOnly(node: ts.ImportDeclaration | ts.ExportDeclaration): boolean {
  if (ts.isImportDeclaration(node)) {
    const clause = node.importClause;
    if (!clause) return false; // `import './x'`: run for its effects
    if (clause.isTypeOnly) return true;
    const bindings = clause.namedBindings;
    return (
      !clause.name &&
      bindings !== undefined &&
      ts.isNamedImports(bindings) &&
      bindings.elements.length > 0 &&
      bindings.elements.every((e) => e.isTypeOnly)
    );
  }
  if (node.isTypeOnly) return true;
  const clause = node.exportClause;
  return (
    clause !== undefined &&
    ts.isNamedExports(clause) &&
    clause.elements.length > 0 &&
    clause.elements.every((e) => e.isTypeOnly)
  );
}

/** Every import of a file: declarations, `export … from`, `import x = require()`, `import()` and `require()`. */
function importsOf(file: string): Import[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const found: Import[] = [];
  const add = (specifier: string, typeOnly: boolean): void => {
    const to = resolveImport(file, specifier);
    if (to?.startsWith(SRC + path.sep)) found.push({ from: file, to, typeOnly });
  };
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) {
      if (ts.isStringLiteral(node.moduleSpecifier)) add(node.moduleSpecifier.text, isTypeOnly(node));
    } else if (
      ts.isImportEqualsDeclaration(node) &&
      ts.isExternalModuleReference(node.moduleReference) &&
      ts.isStringLiteral(node.moduleReference.expression)
    ) {
      add(node.moduleReference.expression.text, node.isTypeOnly);
    } else if (
      ts.isCallExpression(node) &&
      (node.expression.kind === ts.SyntaxKind.ImportKeyword ||
        (ts.isIdentifier(node.expression) && node.expression.text === 'require')) &&
      node.arguments.length === 1 &&
      ts.isStringLiteralLike(node.arguments[0])
    ) {
      add(node.arguments[0].text, false);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** A cycle of `graph` (its nodes in order, the first repeated at the end), or `undefined` when there is none. */
function findCycle(graph: ReadonlyMap<string, ReadonlySet<string>>): string[] | undefined {
  const done = new Set<string>();
  const onPath: string[] = [];
  const walk = (node: string): string[] | undefined => {
    const at = onPath.indexOf(node);
    if (at >= 0) return [...onPath.slice(at), node];
    if (done.has(node)) return undefined;
    onPath.push(node);
    for (const next of [...(graph.get(node) ?? [])].sort()) {
      const cycle = walk(next);
      if (cycle) return cycle;
    }
    onPath.pop();
    done.add(node);
    return undefined;
  };
  for (const node of [...graph.keys()].sort()) {
    const cycle = walk(node);
    if (cycle) return cycle;
  }
  return undefined;
}

const folderOf = (file: string): string => {
  const parts = path.relative(SRC, file).split(path.sep);
  return parts.length > 1 ? parts[0] : '(src)';
};
const rel = (file: string): string => path.relative(SRC, file);
const isAllowed = (from: string, to: string): boolean =>
  TYPE_ONLY_FOLDER_EDGES.some(([a, b]) => a === from && b === to);

describe('architecture: the import graph of src/', () => {
  const files = sourceFiles(SRC).filter((f) => !f.endsWith('.spec.ts'));
  const imports = files.flatMap(importsOf);
  const crossFolder = imports.filter((i) => folderOf(i.from) !== folderOf(i.to));

  it('reads a realistic graph (the walker and resolver see the imports)', () => {
    expect(files.length).toBeGreaterThan(50);
    expect(crossFolder.filter((i) => !i.typeOnly).length).toBeGreaterThan(30);
    expect(crossFolder.some((i) => i.typeOnly)).toBe(true);
  });

  it('has no cycle between files (run-time imports)', () => {
    const graph = new Map<string, Set<string>>(files.map((f) => [rel(f), new Set<string>()]));
    for (const i of imports) if (!i.typeOnly) graph.get(rel(i.from))?.add(rel(i.to));
    expect(findCycle(graph)?.join(' → ')).toBeUndefined();
  });

  it('has no cycle between folders (type-only imports included)', () => {
    const graph = new Map<string, Set<string>>();
    for (const { from, to } of crossFolder) {
      const [a, b] = [folderOf(from), folderOf(to)];
      if (isAllowed(a, b)) continue;
      graph.set(a, (graph.get(a) ?? new Set()).add(b));
    }
    const cycle = findCycle(graph);
    // the imports behind each edge of the cycle, to say where to cut it
    const because = (cycle ?? []).slice(1).map((to, k) => {
      const from = cycle![k];
      const lines = crossFolder.filter((i) => folderOf(i.from) === from && folderOf(i.to) === to);
      return `${from} → ${to}: ${[...new Set(lines.map((i) => `${rel(i.from)} → ${rel(i.to)}`))].join(', ')}`;
    });
    expect(because).toEqual([]);
  });

  it('allows the folder edges of TYPE_ONLY_FOLDER_EDGES for type-only imports alone, and only while they are used', () => {
    for (const [a, b] of TYPE_ONLY_FOLDER_EDGES) {
      const edge = crossFolder.filter((i) => folderOf(i.from) === a && folderOf(i.to) === b);
      expect({ edge: `${a} → ${b}`, used: edge.length > 0 }).toEqual({ edge: `${a} → ${b}`, used: true });
      expect(edge.filter((i) => !i.typeOnly).map((i) => `${rel(i.from)} → ${rel(i.to)}`)).toEqual([]);
    }
  });
});

describe('architecture: findCycle', () => {
  const graphOf = (edges: string[]): Map<string, Set<string>> => {
    const graph = new Map<string, Set<string>>();
    for (const edge of edges) {
      const [a, b] = edge.split('>');
      graph.set(a, (graph.get(a) ?? new Set()).add(b));
      if (!graph.has(b)) graph.set(b, new Set());
    }
    return graph;
  };

  it('finds a cycle and names it in order', () => {
    expect(findCycle(graphOf(['a>b', 'b>c', 'c>d', 'd>b']))).toEqual(['b', 'c', 'd', 'b']);
    expect(findCycle(graphOf(['a>a']))).toEqual(['a', 'a']);
  });

  it('finds none in a DAG with shared descendants', () => {
    expect(findCycle(graphOf(['a>b', 'a>c', 'b>d', 'c>d', 'd>e']))).toBeUndefined();
  });
});
