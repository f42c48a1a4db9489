import { http, startServer, type TestServer } from './support/harness';

describe('smoke', () => {
  let server: TestServer;
  beforeAll(async () => (server = await startServer()));
  afterAll(() => server.close());
  it('serves /health', async () => {
    const res = await http('GET', `${server.url}/health`);
    expect(res.status).toBe(200);
  });
});
