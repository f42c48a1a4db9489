import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { clusterDocuments, silhouette } from './clustering';
import { tokenize } from './tokenize';

const VAULT = path.join(__dirname, '..', '..', 'examples', 'vault');

/** The text nodes of a bundled canvas, in file order. */
function textNodes(rel: string): { id: string; text: string }[] {
  const doc = JSON.parse(readFileSync(path.join(VAULT, rel), 'utf8')) as {
    nodes: { id: string; type: string; text?: string }[];
  };
  return doc.nodes
    .filter((n) => n.type === 'text' && n.text?.trim())
    .map((n) => ({ id: n.id, text: n.text! }));
}

describe('tokenize', () => {
  it('segments Chinese into words and drops stopwords, numbers, formula fragments and short tokens', () => {
    expect(tokenize('导数定义：几何意义是曲线在该点切线的斜率。')).toEqual([
      '导数',
      '定义',
      '几何',
      '意义',
      '曲线',
      '切线',
      '斜率',
    ]);
    expect(tokenize("The cell's nucleus, e.g. DNA in 2nd x_0 $\\lim$ of 3.5 https://x.org/a")).toEqual([
      'cell',
      'nucleus',
      'dna',
    ]);
  });
});

describe('clusterDocuments', () => {
  const topics = [
    'mitochondria produce energy atp respiration mitochondria',
    'atp energy respiration mitochondria cells',
    'respiration mitochondria atp glucose energy',
    'newton force mass acceleration law',
    'force acceleration newton mass inertia',
    'mass force newton law momentum',
    'revolution britain factory coal steam',
    'steam engine coal factory britain',
    'factory britain coal revolution industrial',
  ];

  it('finds the three topics of a fixed set, with a good silhouette, the same every time', async () => {
    const docs = topics.map(tokenize);
    const a = await clusterDocuments(docs);
    expect(a.k).toBe(3);
    expect(a.assignments).toEqual([0, 0, 0, 1, 1, 1, 2, 2, 2]);
    expect(a.silhouette).toBeGreaterThan(0.3);
    expect(a.warning).toBeUndefined();
    expect(a.topTerms[0]).toEqual(expect.arrayContaining(['mitochondria']));
    expect(await clusterDocuments(docs)).toEqual(a);
  });

  it('keeps to max_groups, and max_groups 1 is one group', async () => {
    const docs = topics.map(tokenize);
    const two = await clusterDocuments(docs, { maxGroups: 2 });
    expect(two.k).toBeLessThanOrEqual(2);
    const one = await clusterDocuments(docs, { maxGroups: 1 });
    expect(one).toMatchObject({ k: 1, silhouette: null, warning: 'max_groups is 1: one group' });
  });

  it('makes one group of fewer than four nodes, or of nodes that all say the same', async () => {
    expect(await clusterDocuments([['alpha'], ['beta']])).toMatchObject({ k: 1, silhouette: null });
    const same = await clusterDocuments([
      ['same', 'words'],
      ['same', 'words'],
      ['same', 'words'],
      ['same', 'words'],
    ]);
    expect(same).toMatchObject({ k: 1, warning: 'every node has the same words: one group' });
  });

  it('groups the Chinese canvas (微积分) deterministically, with a warning for its weak separation', async () => {
    const nodes = textNodes('数学/微积分.canvas');
    const c = await clusterDocuments(nodes.map((n) => tokenize(n.text)));
    expect(c.k).toBe(3);
    // 极限 / 导数定义 / 定积分 share their words (极限, 定义, 几何意义); 链式法则 and 基本定理 stand alone
    expect(c.assignments).toEqual([0, 0, 1, 0, 2]);
    expect(c.topTerms[0][0]).toBe('极限');
    expect(c.warning).toMatch(/below 0.3/);
  });

  it('groups the Biology canvas by topic', async () => {
    const nodes = textNodes('Biology/cells.canvas');
    const c = await clusterDocuments(nodes.map((n) => tokenize(n.text)));
    expect(c.assignments).toEqual([0, 1, 2, 1, 2]);
  });

  it('clusters a sample of large inputs, every node joining its nearest centroid', async () => {
    const docs = Array.from({ length: 1500 }, (_, i) =>
      tokenize(topics[i % topics.length] + ` extra${i % 7}`),
    );
    const c = await clusterDocuments(docs, { pause: () => Promise.resolve() });
    expect(c.assignments).toHaveLength(1500);
    expect(new Set(c.assignments).size).toBe(c.k);
    // nodes of one topic land together
    expect(c.assignments[0]).toBe(c.assignments[9]);
    expect(c.assignments[3]).toBe(c.assignments[12]);
  });
});

describe('silhouette', () => {
  it('is the mean of (b − a) / max(a, b), singletons 0, one cluster 0', () => {
    const d = [
      [0, 0.1, 0.9, 0.9],
      [0.1, 0, 0.9, 0.9],
      [0.9, 0.9, 0, 0.1],
      [0.9, 0.9, 0.1, 0],
    ];
    expect(silhouette(d, [0, 0, 1, 1])).toBeCloseTo((0.9 - 0.1) / 0.9, 6);
    expect(silhouette(d, [0, 0, 0, 0])).toBe(0);
    expect(silhouette(d, [0, 1, 2, 2])).toBeCloseTo(((0.9 - 0.1) / 0.9) * 0.5, 6);
    expect(
      silhouette(
        [
          [0, 0],
          [0, 0],
        ],
        [0, 1],
      ),
    ).toBe(0);
  });
});
