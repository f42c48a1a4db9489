import { Module } from '@nestjs/common';
import { SqliteDatabase } from './sqlite-database';

/** Owns the embedded SQLite handle shared by the task store and the memory outbox. */
@Module({ providers: [SqliteDatabase], exports: [SqliteDatabase] })
export class DatabaseModule {}
