import { Module } from '@nestjs/common';
import { CanvasConfigurableModule } from './canvas.module-definition';
import { CanvasService } from './canvas.service';
import { VaultService } from './vault.service';

/**
 * JSON Canvas I/O confined to the vault: open, read node content, write results through per-canvas queues. Import
 * it with `forRoot({ vaultRoot })` (or `forRootAsync`).
 */
@Module({ providers: [VaultService, CanvasService], exports: [CanvasService, VaultService] })
export class CanvasModule extends CanvasConfigurableModule {}
