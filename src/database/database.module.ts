import { Module } from '@nestjs/common';
import { DatabaseConfigurableModule } from './database.module-definition';
import { SqliteDatabase } from './sqlite-database';

/**
 * Owns the embedded SQLite handle shared by the task store and the memory outbox. Import it with
 * `forRoot({ dataDir })` (or `forRootAsync`) once, and hand that same module to the modules that need the handle
 * (`SessionModule.forRoot({ imports: [database] })`): one handle per process, since the file is locked exclusively.
 */
@Module({ providers: [SqliteDatabase], exports: [SqliteDatabase] })
export class DatabaseModule extends DatabaseConfigurableModule {}
