import { Test } from '@nestjs/testing';
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { CanvasModule } from './canvas.module';
import { CanvasService } from './canvas.service';
import { VaultService } from './vault.service';

describe('CanvasModule', () => {
  let vaultRoot: string;
  beforeEach(() => {
    vaultRoot = mkdtempSync(path.join(tmpdir(), 'canvas-module-'));
  });
  afterEach(() => rmSync(vaultRoot, { recursive: true, force: true }));

  it('confines its services to the vault it is given', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [CanvasModule.forRoot({ vaultRoot })],
    }).compile();
    expect(moduleRef.get(VaultService).root).toBe(realpathSync(vaultRoot));
    expect(moduleRef.get(CanvasService)).toBeInstanceOf(CanvasService);
    await moduleRef.close();
  });
});
