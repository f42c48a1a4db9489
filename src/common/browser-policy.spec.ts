import { corsOptions } from './browser-policy';

describe('browser policy', () => {
  it('allows exactly the configured CORS origins', () => {
    const { origin } = corsOptions(['app://obsidian.md']);
    const ask = (o: string | undefined): boolean | undefined => {
      let allowed: boolean | undefined;
      origin(o, (_, a) => (allowed = a));
      return allowed;
    };
    expect([ask('app://obsidian.md'), ask('app://obsidian.md.evil'), ask(undefined)]).toEqual([
      true,
      false,
      false,
    ]);
  });
});
