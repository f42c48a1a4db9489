export { DatabaseModule } from './database.module';
export { SqliteDatabase, DatabaseOpenError, DatabaseLockedError, DATABASE_FILE } from './sqlite-database';
